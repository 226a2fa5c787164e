"""Fixtures of the integration tests: real Redis, a real Celery worker process, the real app.

One session-wide home holds a migrated SQLite database, a tiny trained model (active) and a tiny
synthetic training folder. The worker process consumes every queue (``predict``, ``webhooks``,
``train``) with the settings of that home; the tests drive the app through Flask's test client
and poll, as a user would.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.store.config import Settings
from shared.store.db import dispose_engines, upgrade_database
from tests.integration.helpers import WorkerProcess
from tests.redis_server import running_redis

WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DEMO_GENRES = ("classical", "disco", "metal")  # the genres of the core's tiny_model_path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the worker's log tail to the report of a failed test that used the worker."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    worker = getattr(item, "funcargs", {}).get("worker")
    if report.when == "call" and report.failed and isinstance(worker, WorkerProcess):
        report.sections.append(("celery worker log (tail)", worker.log()[-6000:]))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def integration_redis_url() -> Iterator[str]:
    """Yield the URL of a Redis server started for this test session."""
    with running_redis() as url:
        yield url


@pytest.fixture(scope="session")
def train_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a tiny GTZAN-layout folder: 3 synthetic genres, 6 tracks of 6 s each."""
    from shared.core.learning.demo_data import write_demo_dataset

    root = tmp_path_factory.mktemp("train-data")
    write_demo_dataset(root, genres=DEMO_GENRES, tracks_per_genre=6, seconds=6.0)
    return root


@pytest.fixture(scope="session")
def integration_model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, train_data_dir: Path
) -> Path:
    """Return a small trained ``.keras`` model (the core's ``tiny_model_path`` if any)."""
    try:
        return Path(request.getfixturevalue("tiny_model_path"))
    except pytest.FixtureLookupError:
        pass
    from shared.core.learning.training import TrainOptions, train_from_folder

    out = tmp_path_factory.mktemp("tiny-model")
    options = TrainOptions(epochs=3, progress_bar=False, cache_dir=str(out / "cache"))
    return train_from_folder(train_data_dir, out, options=options).model_path


@pytest.fixture(scope="session")
def worker_env(
    tmp_path_factory: pytest.TempPathFactory,
    integration_redis_url: str,
    integration_model: Path,
    train_data_dir: Path,
) -> dict[str, str]:
    """Return the worker's environment (also the app's settings): one home per session."""
    from shared.cli.home import prepare_home

    home = tmp_path_factory.mktemp("home")
    models = home / "models"
    models.mkdir()
    for sibling in integration_model.parent.glob(f"{integration_model.stem}.*"):
        shutil.copy(sibling, models / sibling.name)
    env = {
        "GENREFLOW_HOME": str(home),
        "REDIS_URL": integration_redis_url,
        "GENREFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GENREFLOW_WEBHOOK_BACKOFF_S": "0.5",
        "GENREFLOW_WEBHOOK_MAX_ATTEMPTS": "3",
        "GENREFLOW_TRAIN_DATA_DIR": str(train_data_dir),
        "GENREFLOW_TRAIN_EPOCHS": "2",
        "GENREFLOW_ACTIVATE_POLICY": "always",
        "GENREFLOW_MAX_UPLOAD_MB": "20",
        "GENREFLOW_WEBHOOK_ALLOW_PRIVATE": "1",  # the receivers listen on 127.0.0.1
        "GENREFLOW_LOG_FORMAT": "json",  # test_observability reads the worker's JSON lines
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    settings = Settings.from_env(env)
    upgrade_database(settings.database_url)
    # the shipped model is registered and active on first start; these tests use the tiny one
    assert prepare_home(settings) is not None, "the shipped model should be active"
    from shared.store.db import session_scope
    from shared.store.registry import activate_version

    with session_scope(settings.database_url) as session:
        activate_version(session, integration_model.stem)
    return env


@pytest.fixture(scope="session")
def integration_settings(worker_env: dict[str, str]) -> Settings:
    """Return the settings the worker process runs with."""
    return Settings.from_env(worker_env)


@pytest.fixture(scope="session")
def worker(
    worker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """Yield a real Celery worker process consuming every genreflow queue."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    process = WorkerProcess(worker_env, log_path, queues="predict,webhooks,train")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
        dispose_engines()


@pytest.fixture
def client(integration_settings: Settings, worker: WorkerProcess) -> Iterator[Any]:
    """Flask test client of the real app, on the worker's database and Redis."""
    from web import create_app

    app = create_app(integration_settings, config={"TESTING": True})
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture(scope="session")
def admin_headers(integration_settings: Settings) -> dict[str, str]:
    """Return an ``Authorization`` header with an admin key of the session's database."""
    from shared.store.db import session_scope
    from shared.store.keys import create_key

    with session_scope(integration_settings.database_url) as session:
        token = create_key(session, name="integration admin", scope="admin").token
    return {"Authorization": f"Bearer {token}"}
