"""DELETE /api/v1/jobs/<id>: the job, its result, label, deliveries, outbox rows and audio go."""

from __future__ import annotations

import io
from typing import Any

import redis
from sqlalchemy import func, select

from shared.lifecycle.classification import run_classification
from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.db import make_engine, session_scope
from shared.store.orm import Job, JobLabel, StoredPrediction, WebhookDelivery, WebhookOutbox
from tests.web.conftest import make_key, wav_bytes
from tests.web.helpers import assert_problem
from tests.web.test_jobs import finish_job, upload

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


def upload_as(client: Any, data: bytes, headers: dict[str, str]) -> Any:
    payload = {"file": (io.BytesIO(data), "song.wav")}
    return client.post("/api/v1/jobs", data=payload, headers=headers)


def _count(settings: Settings, model: Any, job_id: str) -> int:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        n = session.scalar(select(func.count()).select_from(model).where(model.job_id == job_id))
    engine.dispose()
    return int(n or 0)


def _add_delivery_and_label(settings: Settings, job_id: str) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        session.add(
            WebhookDelivery(
                job_id=job_id,
                event_type="job.completed",
                message_id="msg_1",
                url="https://hooks.example/x",
                status_code=200,
                succeeded=True,
            )
        )
        session.add(WebhookOutbox(job_id=job_id, event_type="job.completed", closed_at=utcnow()))
        session.add(JobLabel(job_id=job_id, genre="jazz", status="approved"))
    engine.dispose()


def test_delete_removes_the_job_its_rows_and_its_audio(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    job = upload(client, wav_bytes()).get_json()
    finish_job(settings, job["id"], active_model)
    _add_delivery_and_label(settings, job["id"])
    audio = next(settings.upload_dir.glob("*.wav"))

    response = client.delete(f"/api/v1/jobs/{job['id']}")

    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.get_data() == b""
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}"), 404, "job_not_found")
    assert_problem(client.delete(f"/api/v1/jobs/{job['id']}"), 404, "job_not_found")
    for model in (StoredPrediction, WebhookDelivery, WebhookOutbox, JobLabel):
        assert _count(settings, model, job["id"]) == 0, model.__name__
    assert not audio.exists()
    assert list(settings.upload_dir.iterdir()) == []


def test_audio_shared_by_another_job_is_kept_until_the_last_one_goes(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    first = upload(client, wav_bytes()).get_json()
    finish_job(settings, first["id"], active_model)
    second = upload(client, wav_bytes()).get_json()  # same bytes: a done copy, one file
    (audio,) = settings.upload_dir.glob("*.wav")

    assert client.delete(f"/api/v1/jobs/{first['id']}").status_code == 204
    assert audio.exists()
    assert client.get(f"/api/v1/jobs/{second['id']}/audio").status_code == 200

    assert client.delete(f"/api/v1/jobs/{second['id']}").status_code == 204
    assert not audio.exists()


def test_only_who_may_read_a_job_may_delete_it(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    owner = {"Authorization": f"Bearer {make_key(settings, 'classify', name='owner')}"}
    other = {"Authorization": f"Bearer {make_key(settings, 'classify', name='other')}"}
    admin = {"Authorization": f"Bearer {make_key(settings, 'admin', name='admin')}"}
    mine = upload_as(client, wav_bytes(), owner).get_json()
    theirs = upload_as(client, wav_bytes(freq=330.0), owner).get_json()
    anonymous = upload(client, wav_bytes(freq=550.0)).get_json()

    assert_problem(client.delete(f"/api/v1/jobs/{mine['id']}", headers=other), 404)
    assert_problem(client.delete(f"/api/v1/jobs/{anonymous['id']}", headers=other), 404)
    assert_problem(client.delete(f"/api/v1/jobs/{mine['id']}", environ_base=REMOTE), 401)
    assert client.delete(f"/api/v1/jobs/{mine['id']}", headers=owner).status_code == 204
    assert client.delete(f"/api/v1/jobs/{theirs['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/jobs/{anonymous['id']}").status_code == 204  # loopback


def test_a_job_being_classified_is_409_and_a_queued_one_is_dropped_by_its_worker(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    busy = upload(client, wav_bytes()).get_json()
    queued = upload(client, wav_bytes(freq=330.0)).get_json()
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        row = session.get(Job, busy["id"])
        row.status, row.heartbeat_at = "processing", utcnow()

    body = assert_problem(client.delete(f"/api/v1/jobs/{busy['id']}"), 409, "job_in_progress")
    assert "being classified" in body["detail"]
    assert client.get(f"/api/v1/jobs/{busy['id']}").status_code == 200

    assert client.delete(f"/api/v1/jobs/{queued['id']}").status_code == 204

    def no_model(_session: Any) -> Any:
        raise AssertionError("a deleted job must not load the model")

    with session_scope(engine) as session:  # its message reaches a worker: nothing to do
        assert run_classification(session, queued["id"], no_model, settings) is None
        assert session.get(Job, queued["id"]) is None
    engine.dispose()
    response = client.delete(f"/api/v1/jobs/{busy['id']}")
    assert response.status_code == 409
    assert int(response.headers["Retry-After"]) > 0


def test_delete_is_documented(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/jobs/{job_id}"]["delete"]
    assert {"204", "404", "409"} <= set(operation["responses"])


def test_expired_audio_is_404_but_the_result_stays(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    job = upload(client, wav_bytes()).get_json()
    finish_job(settings, job["id"], active_model)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        session.get(Job, job["id"]).audio_expired_at = utcnow()
    engine.dispose()

    body = assert_problem(client.get(f"/api/v1/jobs/{job['id']}/audio"), 404, "job_not_found")
    assert "GENREFLOW_AUDIO_RETENTION_DAYS" in body["detail"]
    shown = client.get(f"/api/v1/jobs/{job['id']}").get_json()
    assert shown["result"]["genre"] == "rock"
    assert shown["audio_expired_at"].endswith("Z")
