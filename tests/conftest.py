"""Fixtures every test folder shares, each defined once here.

``settings`` (a fresh home with a copy of one migrated SQLite template and the session's real
Redis), ``engine``, ``db_session``, ``redis_url``/``redis_client``, ``postgres_url``, synthetic
audio and a tiny trained model.

The audio is generated (tones, beats, distorted chords), so the suite runs on any machine and
never needs GTZAN. The tiny model is trained once per test session on such audio: it proves the
training + voting path, not accuracy on music.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shared.core.learning.demo_data import synth_track, write_audio, write_demo_dataset
from shared.store.config import Settings
from shared.store.db import dispose_engines, make_engine, session_scope, upgrade_database
from tests.ci_skips import (  # noqa: F401 (hooks: on CI, an unexpected skip fails the run)
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from tests.redis_server import free_port, running_redis
from tests.scheduling import ServiceGroupScheduling, slow_first
from tests.shared_build import build_once

TINY_GENRES = ("classical", "disco", "metal")
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
POSTGRES_FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# TensorFlow's C++ start-up logging drowns pytest's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup``, keep each service group on one worker (tests/scheduling.py)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return ServiceGroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the slow tests first, so that none of them is left to run alone at the end."""
    slow_first(items)


def stored_result(job_id: str, genre: str = "rock") -> Any:
    """Return the result row a worker stores for a job: one 3-second segment of ``genre``."""
    from shared.store.orm import StoredPrediction

    return StoredPrediction.from_result(
        job_id,
        {
            "genre": genre,
            "confidence": 0.8,
            "probabilities": {genre: 0.8},
            "votes": {genre: 1},
            "segments": [],
            "duration_s": 3.0,
            "n_segments": 1,
        },
    )


@pytest.fixture
def make_audio(tmp_path: Path) -> Callable[..., Path]:
    """Return ``make(style="disco", seconds=9.0, ext=".wav", seed=0, name=None) -> Path``."""

    def make(
        style: str = "disco",
        *,
        seconds: float = 9.0,
        ext: str = ".wav",
        seed: int = 0,
        sr: int = 22_050,
        name: str | None = None,
    ) -> Path:
        y = synth_track(style, seconds=seconds, sr=sr, seed=seed)
        return write_audio(tmp_path / (name or f"{style}-{seed}-{seconds:g}s{ext}"), y, sr=sr)

    return make


@pytest.fixture
def no_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hide the shipped model from this process's registry (as if a deployment removed it).

    For tests of "no model is active yet, so the newest trained one is activated".
    """
    from shared.store import registry

    empty = tmp_path / "no-shipped-model"
    empty.mkdir()
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", empty)
    return empty


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a GTZAN-layout folder: 3 synthetic genres x 5 tracks x 9 s (3 segments each).

    Written once per test run, whatever the number of xdist workers; tests only read it.
    """

    def write(root: Path) -> Path:
        write_demo_dataset(root, genres=TINY_GENRES, tracks_per_genre=5, seconds=9.0, seed=7)
        return root

    return build_once(tmp_path_factory, "tiny-dataset", write)


@pytest.fixture(scope="session")
def tiny_training(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    """Train the baseline LSTM on :func:`tiny_dataset`; return the TrainingReport.

    Trained once per test run (the first xdist worker trains, the others wait and read it).
    """

    def train(out: Path) -> Any:
        from shared.core.learning.training import TrainOptions, train_from_folder

        options = TrainOptions(
            epochs=25,
            patience=25,
            valid_fraction=0.2,
            test_fraction=0.2,
            cache_dir=str(out / "cache"),
            progress_bar=False,
        )
        return train_from_folder(tiny_dataset, out, options=options)

    return build_once(tmp_path_factory, "tiny-model", train)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_training) -> Path:
    """Path of a small trained ``.keras`` model (genres classical, disco, metal)."""
    return tiny_training.model_path


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Yield the URL of a Redis server started for this test session."""
    with running_redis() as url:
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """Yield a client on the session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def dead_redis_url() -> str:
    """Return a Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file at ``alembic upgrade head`` (each test copies it)."""
    path = tmp_path_factory.mktemp("template") / "genreflow.sqlite3"
    upgrade_database(f"sqlite:///{path}")
    return path


def make_settings(home: Path, **env: str) -> Settings:
    """Build settings for a test home (1 MiB uploads, a fixed webhook secret, 2 s backoff).

    ``GENREFLOW_MIN_FREE_MB`` is 1, so answers do not depend on the free space of the disk.
    """
    environ = {
        "GENREFLOW_HOME": str(home),
        "GENREFLOW_MAX_UPLOAD_MB": "1",
        "GENREFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GENREFLOW_WEBHOOK_BACKOFF_S": "2",
        "GENREFLOW_MIN_FREE_MB": "1",  # the tests' answers do not depend on this disk's space
        **env,
    }
    return Settings.from_env(environ)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, migrated_sqlite: Path) -> Iterator[Settings]:
    """Return settings for a fresh home with a migrated SQLite database and real Redis."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(migrated_sqlite, home / "genreflow.sqlite3")
    result = make_settings(home, REDIS_URL=redis_url)
    result.ensure_dirs()
    yield result
    dispose_engines()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """Yield an engine on the test's database, disposed at the end."""
    result = make_engine(settings.database_url)
    yield result
    result.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """Yield a session on the test database, committed at the end (like a worker's)."""
    with session_scope(engine) as session:
        yield session


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Yield the admin URL of a PostgreSQL server for this test session; skip with the reason.

    The server of ``DATABASE_URL`` when that is a PostgreSQL URL; else a private server started
    here from the machine's binaries (:mod:`tests.postgres_server`, which installs Debian's
    package when root); else ``postgresql://postgres@127.0.0.1:5432``.
    """
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    from tests.postgres_server import PostgresUnavailable, PrivatePostgres

    # Placeholder secrets keep Settings from writing secret files into the default home.
    environ = {**os.environ, "GENREFLOW_WEBHOOK_SECRET": "-", "GENREFLOW_SECRET_KEY": "-"}
    configured = Settings.from_env(environ).database_url
    if configured.startswith("postgres"):
        yield configured
        return
    # Not under pytest's temporary root: any other pytest process (a test that runs pytest, a
    # second run) makes that root 0700 again, and the server, run as the postgres user, would
    # lose its data folder mid-run.
    root = Path(tempfile.mkdtemp(prefix="genreflow-test-postgres-"))
    url: str | None = None
    failure: PostgresUnavailable | None = None
    for attempt in range(3):  # another xdist worker may take the free port first
        server = PrivatePostgres(root / f"attempt{attempt}", free_port())
        try:
            url = server.start()
            break
        except PostgresUnavailable as exc:
            failure = exc
            if not str(exc).startswith("pg_ctl failed"):
                break
    try:
        if url is None:
            url = make_url(POSTGRES_FALLBACK_URL).render_as_string(hide_password=False)
            try:
                psycopg.connect(url, connect_timeout=3).close()
            except psycopg.OperationalError:
                pytest.skip(f"no PostgreSQL: {failure}; and none answers at 127.0.0.1:5432")
        yield url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """Yield a throwaway database on :func:`postgres_server`, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    admin = make_url(postgres_server).set(drivername="postgresql")
    admin_dsn = admin.set(database="postgres").render_as_string(hide_password=False)
    conn = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5)
    name = f"genreflow_test_{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        conn.close()
        pytest.skip(f"cannot create a PostgreSQL test database: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
