"""Training runs end to end through the real ``train`` queue, and the scheduled retrain."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.lifecycle.queues import TASK_RETRAIN_IF_CHANGED
from shared.store.config import Settings
from shared.store.db import session_scope
from shared.store.orm import TrainingRun
from tests.integration.helpers import poll, upload, wait_for_job, wait_for_run, write_song
from web.api.model_schemas import TrainingRunOut
from worker.celery_app import make_celery

pytestmark = pytest.mark.slow


@pytest.fixture
def active_before(client: Any, admin_headers: dict[str, str]) -> Iterator[str]:
    """Yield the active version, and make it active again after the test.

    These tests train and activate models; the other integration tests expect the small MFCC
    model, whatever order the tests run in.
    """
    before = client.get("/api/v1/models").get_json()["active_version"]
    yield before
    client.post(f"/api/v1/models/{before}/activate", headers=admin_headers)


def test_training_run_registers_and_activates_a_model(
    client: Any, tmp_path: Path, admin_headers: dict[str, str], active_before: str
) -> None:
    before = client.get("/api/v1/models").get_json()

    response = client.post("/api/v1/models/train", headers=admin_headers)

    assert response.status_code == 202, response.get_data(as_text=True)
    run = wait_for_run(client, response.get_json()["id"])
    assert run["status"] == "done", run
    assert run["progress"] == 1.0
    assert run["activated"] is True  # GENREFLOW_ACTIVATE_POLICY=always in these tests
    version = run["model_version"]
    assert version
    assert version != before["active_version"]
    metrics = run["metrics"]
    assert 0.0 <= metrics["track_accuracy_vote"] <= 1.0
    comparison = metrics["comparison"]
    assert comparison["active_version"] == before["active_version"]
    assert comparison["active_metrics"]["n_test_tracks"] == metrics["n_test_tracks"]
    assert comparison["policy"] == "always"
    assert comparison["activated"] is True

    models = client.get("/api/v1/models").get_json()
    assert models["active_version"] == version
    assert version in {m["version"] for m in models["items"]}
    # The predict worker swaps to the new model on its next job.
    song = write_song(tmp_path / "after-training.wav", style="reggae", seed=301)
    job = wait_for_job(client, upload(client, song).get_json()["id"])[-1]
    assert job["status"] == "done"
    assert job["model_version"] == version


def _scheduled_runs(settings: Settings) -> list[dict[str, Any]]:
    with session_scope(settings.database_url) as session:
        rows = session.query(TrainingRun).filter_by(trigger="schedule").all()
        return sorted((TrainingRunOut().dump(r) for r in rows), key=lambda r: r["created_at"])


def test_scheduled_retrain_skips_unchanged_data_and_trains_on_changed_data(
    client: Any,
    integration_settings: Settings,
    train_data_dir: Path,
    admin_headers: dict[str, str],
    active_before: str,
) -> None:
    # Make the active model one trained on the current data (this test may run alone).
    started = client.post("/api/v1/models/train", headers=admin_headers).get_json()
    assert wait_for_run(client, started["id"])["status"] == "done"
    celery = make_celery(integration_settings)
    n_before = len(_scheduled_runs(integration_settings))

    celery.send_task(TASK_RETRAIN_IF_CHANGED)
    runs = poll(
        lambda: {"runs": _scheduled_runs(integration_settings)},
        done=lambda page: (
            len(page["runs"]) > n_before
            and page["runs"][-1]["status"] in {"done", "failed", "skipped"}
        ),
        timeout_s=30,
        interval_s=0.2,
    )[-1]["runs"]
    skipped = runs[-1]
    assert skipped["status"] == "skipped"
    assert skipped["error"]["code"] == "data_unchanged"

    # A new track changes the dataset fingerprint: the next check trains.
    extra = train_data_dir / "metal" / "metal.00099.wav"
    shutil.copy(train_data_dir / "metal" / "metal.00000.wav", extra)
    try:
        celery.send_task(TASK_RETRAIN_IF_CHANGED)
        runs = poll(
            lambda: {"runs": _scheduled_runs(integration_settings)},
            done=lambda page: (
                len(page["runs"]) > n_before + 1
                and page["runs"][-1]["status"] in {"done", "failed", "skipped"}
            ),
            timeout_s=120,
            interval_s=0.3,
        )[-1]["runs"]
    finally:
        extra.unlink()
    trained = runs[-1]
    assert trained["status"] == "done", trained
    assert trained["model_version"]
    assert client.get("/api/v1/models").get_json()["active_version"] == trained["model_version"]


def test_training_run_with_the_musicnn_recipe_trains_and_serves_a_musicnn_model(
    client: Any,
    tmp_path: Path,
    admin_headers: dict[str, str],
    integration_settings: Settings,
    active_before: str,
) -> None:
    before = active_before
    response = client.post(
        "/api/v1/models/train", json={"recipe": "musicnn-pool"}, headers=admin_headers
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    run = wait_for_run(client, response.get_json()["id"], timeout_s=600)
    assert run["status"] == "done", run
    assert run["metrics"]["recipe"]["name"] == "musicnn-pool"
    assert run["metrics"]["recipe_source"] == "request"
    version = run["model_version"]
    card = json.loads((integration_settings.model_dir / f"{version}.json").read_text())
    assert card["feature_config"]["musicnn"] is True
    assert card["recipe"] == run["metrics"]["recipe"]
    assert card["served"]["format"] == "onnx"  # musicnn and the head in one served graph
    comparison = run["metrics"]["comparison"]
    assert comparison["active_version"] == before
    assert comparison["candidate_metrics"]["n_test_tracks"] == run["metrics"]["n_test_tracks"]
    assert comparison["active_metrics"]["n_test_tracks"] == run["metrics"]["n_test_tracks"]
    assert run["activated"] is True  # same genres, GENREFLOW_ACTIVATE_POLICY=always

    # the predict worker answers with it (musicnn runs inside the served model)
    song = write_song(tmp_path / "musicnn.wav", style="metal", seed=302)
    job = wait_for_job(client, upload(client, song).get_json()["id"])[-1]
    assert job["status"] == "done", job
    assert job["model_version"] == version
