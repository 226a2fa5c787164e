"""Labels through the API: PUT a genre, pending until an admin approves, review, remove."""

from __future__ import annotations

import io
from typing import Any

import redis

from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.db import make_engine, session_scope
from shared.store.orm import Job
from tests.web.conftest import make_key, wav_bytes
from tests.web.helpers import assert_problem
from tests.web.test_jobs import finish_job


def _done_job(client: Any, settings: Settings, model: str, headers: dict[str, str] | None = None):
    data = {"file": (io.BytesIO(wav_bytes(freq=300.0 + len(headers or {}))), "song.wav")}
    job = client.post("/api/v1/jobs", data=data, headers=headers or {}).get_json()
    finish_job(settings, job["id"], model)  # the model said "rock"
    return job["id"]


def _label(client: Any, job_id: str, genre: Any, headers: dict[str, str] | None = None) -> Any:
    return client.put(f"/api/v1/jobs/{job_id}/label", json={"genre": genre}, headers=headers or {})


def test_a_keyless_label_waits_for_an_admin_who_approves_it(
    client: Any,
    settings: Settings,
    redis_client: redis.Redis,
    active_model: str,
    admin_headers: Any,
) -> None:
    job_id = _done_job(client, settings, active_model)

    response = _label(client, job_id, "  Jazz ")

    assert response.status_code == 200, response.get_json()
    label = response.get_json()
    assert (label["genre"], label["status"], label["predicted_genre"]) == (
        "jazz",
        "pending",
        "rock",
    )
    assert label["decided_at"] is None
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["label"]["status"] == "pending"
    assert_problem(client.get("/api/v1/labels?status=pending"), 401)  # review is for admins

    pending = client.get("/api/v1/labels?status=pending", headers=admin_headers).get_json()
    assert [(i["job_id"], i["genre"], i["filename"]) for i in pending["items"]] == [
        (job_id, "jazz", "song.wav")
    ]
    assert pending["items"][0]["links"]["audio"] == f"/api/v1/jobs/{job_id}/audio"

    approved = client.post(f"/api/v1/labels/{job_id}/approve", headers=admin_headers)
    assert approved.status_code == 200
    assert approved.get_json()["status"] == "approved"
    assert approved.get_json()["decided_at"]
    assert (
        client.get("/api/v1/labels?status=pending", headers=admin_headers).get_json()["total"] == 0
    )
    assert client.get(f"/api/v1/jobs/{job_id}/label").get_json()["status"] == "approved"


def test_an_admins_label_counts_at_once_and_an_admin_can_reject_any(
    client: Any,
    settings: Settings,
    redis_client: redis.Redis,
    active_model: str,
    admin_headers: Any,
) -> None:
    job_id = _done_job(client, settings, active_model, admin_headers)

    label = _label(client, job_id, "bossa nova", admin_headers).get_json()
    assert (label["genre"], label["status"]) == ("bossa nova", "approved")

    rejected = client.post(f"/api/v1/labels/{job_id}/reject", headers=admin_headers)
    assert rejected.get_json()["status"] == "rejected"
    listed = client.get("/api/v1/labels?status=rejected", headers=admin_headers).get_json()
    assert [item["job_id"] for item in listed["items"]] == [job_id]


def test_a_classify_key_labels_its_own_jobs_only_and_its_label_is_pending(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    owner = {"Authorization": f"Bearer {make_key(settings, 'classify', name='owner')}"}
    other = {"Authorization": f"Bearer {make_key(settings, 'classify', name='other')}"}
    job_id = _done_job(client, settings, active_model, owner)

    assert_problem(_label(client, job_id, "jazz", other), 404, "job_not_found")
    assert _label(client, job_id, "jazz", owner).get_json()["status"] == "pending"
    assert_problem(client.post(f"/api/v1/labels/{job_id}/approve", headers=owner), 403)


def test_bad_labels_are_refused_clearly(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    job_id = _done_job(client, settings, active_model)
    for bad in ("", "   ", "a/b", "x" * 65, "../etc"):
        assert_problem(_label(client, job_id, bad), 422, "invalid_label")
    assert_problem(client.put(f"/api/v1/jobs/{job_id}/label", json={}), 400, "invalid_request")
    assert_problem(client.post("/api/v1/labels/nope/approve", headers={}), 401)

    queued = client.post(
        "/api/v1/jobs", data={"file": (io.BytesIO(wav_bytes(freq=777.0)), "q.wav")}
    ).get_json()
    body = assert_problem(_label(client, queued["id"], "jazz"), 409, "label_not_allowed")
    assert "no result" in body["detail"]

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        session.get(Job, job_id).audio_expired_at = utcnow()
    engine.dispose()
    body = assert_problem(_label(client, job_id, "jazz"), 409, "label_not_allowed")
    assert "no longer stored" in body["detail"]


def test_removing_a_label(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    job_id = _done_job(client, settings, active_model)
    _label(client, job_id, "jazz")

    assert client.delete(f"/api/v1/jobs/{job_id}/label").status_code == 204

    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["label"] is None
    assert_problem(client.get(f"/api/v1/jobs/{job_id}/label"), 404, "label_not_found")
    assert_problem(client.delete(f"/api/v1/jobs/{job_id}/label"), 404, "label_not_found")


def test_labels_show_in_metrics(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    _label(client, _done_job(client, settings, active_model), "jazz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'genreflow_labels{status="pending"} 1.0' in text
    assert 'genreflow_labels{status="approved"} 0.0' in text
    assert "genreflow_retention_files_removed_total 0.0" in text
