"""Classification through the whole system: app → Redis → Celery worker process → database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.core.nets.audioset import music_genres
from shared.lifecycle.classification import run_classification
from shared.lifecycle.queues import TASK_CLASSIFY_SONG
from shared.store.config import Settings
from shared.store.db import session_scope
from shared.store.orm import Job, StoredPrediction
from tests.integration.helpers import submit_past_the_door, upload, wait_for_job, write_song
from worker.celery_app import make_celery

RESULT_KEYS = {
    "genre", "confidence", "model_version", "duration_s", "n_segments", "probabilities", "votes",
    "segments", "uncertain", "uncertain_reason", "sounds_like",
}  # fmt: skip


def test_upload_is_queued_then_processed_then_done(client: Any, tmp_path: Path) -> None:
    song = write_song(tmp_path / "long-song.wav", style="reggae", seconds=90.0, seed=101)

    response = upload(client, song)

    assert response.status_code == 202, response.get_data(as_text=True)
    created = response.get_json()
    assert created["status"] == "queued"
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{created['id']}")
    states = wait_for_job(client, created["id"], timeout_s=90)
    statuses = [state["status"] for state in states]
    # Statuses only move forward, and the worker's "processing" is visible to a poller.
    order = ["queued", "processing", "done"]
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    assert "processing" in statuses, statuses
    progress = [state["progress"] for state in states]
    assert progress == sorted(progress)
    job = states[-1]
    assert job["status"] == "done", job
    assert job["progress"] == 1.0
    assert job["error"] is None
    assert job["started_at"]
    assert job["finished_at"]
    assert job["finished_at"] >= job["started_at"]
    result = job["result"]
    assert set(result) >= RESULT_KEYS
    assert result["model_version"] == job["model_version"]
    assert result["genre"] in result["probabilities"]
    assert result["n_segments"] == len(result["segments"]) == 30
    assert sum(result["votes"].values()) == result["n_segments"]
    assert result["duration_s"] == pytest.approx(90.0, abs=0.1)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    # a second opinion in AudioSet's words, whatever the model's genres
    assert len(result["sounds_like"]) == 3
    assert {item["name"] for item in result["sounds_like"]} <= set(music_genres())
    assert all(0.0 <= item["score"] <= 1.0 for item in result["sounds_like"])


def test_unreadable_file_is_refused_at_the_door(client: Any, tmp_path: Path) -> None:
    bad = tmp_path / "not-really.mp3"
    bad.write_bytes(bytes(range(256)) * 64)

    response = upload(client, bad)

    assert response.status_code == 415, response.get_data(as_text=True)
    assert response.get_json()["detail"].startswith("not-really.mp3 is not an audio file")


def test_worker_keeps_its_own_checks_of_unreadable_files(
    client: Any, tmp_path: Path, integration_settings: Settings
) -> None:
    bad = tmp_path / "not-really.mp3"
    bad.write_bytes(bytes(range(256)) * 64)

    job = wait_for_job(client, submit_past_the_door(integration_settings, bad))[-1]
    assert job["status"] == "failed"
    assert job["result"] is None
    assert job["error"]["code"] == "invalid_audio"
    assert job["error"]["title"] == "Not a readable audio file"
    # The reason names the file as the user sent it, not its stored content-hash name.
    assert job["error"]["detail"].startswith("not-really.mp3 is not a readable audio file")


def test_too_short_audio_fails_with_its_own_code(
    client: Any, tmp_path: Path, integration_settings: Settings
) -> None:
    short = write_song(tmp_path / "short.wav", seconds=1.0, seed=102)
    assert upload(client, short).status_code == 422  # at the door

    job = wait_for_job(client, submit_past_the_door(integration_settings, short))[-1]

    assert job["status"] == "failed"
    assert job["error"]["code"] == "audio_too_short"


def test_redelivered_classification_of_a_done_job_does_nothing(
    client: Any, tmp_path: Path, integration_settings: Settings
) -> None:
    song = write_song(tmp_path / "once.wav", style="classical", seed=103)
    job_id = upload(client, song).get_json()["id"]
    before = wait_for_job(client, job_id)[-1]
    assert before["status"] == "done"

    # In process: the model is never even asked for, nothing changes.
    def no_model(_session: Any) -> Any:
        raise AssertionError("a done job must not load a model")

    with session_scope(integration_settings.database_url) as session:
        assert run_classification(session, job_id, no_model, integration_settings) is None

    # Through the real worker: a duplicate message, then a marker job queued behind it.
    celery = make_celery(integration_settings)
    celery.send_task(TASK_CLASSIFY_SONG, args=[job_id])
    marker = write_song(tmp_path / "marker.wav", style="metal", seed=104)
    assert wait_for_job(client, upload(client, marker).get_json()["id"])[-1]["status"] == "done"

    after = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert after == before
    with session_scope(integration_settings.database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.attempts == 1
        assert session.query(StoredPrediction).filter_by(job_id=job_id).count() == 1
