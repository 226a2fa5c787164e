import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.signals import before_task_publish
from sqlalchemy.orm import Session

from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.db import make_engine, session_scope
from shared.store.orm import Job, StoredPrediction, WebhookDelivery
from shared.store.registry import register_model
from tests.web.conftest import wav_bytes, write_model_files
from tests.web.helpers import assert_problem, queued_tasks
from worker.tasks import sync_registry

RESULT = {
    "genre": "rock",
    "confidence": 0.71,
    "uncertain": True,
    "uncertain_reason": "low_confidence",
    "model_version": "m-2026-01-01",
    "duration_s": 3.0,
    "n_segments": 1,
    "probabilities": {"blues": 0.1, "classical": 0.19, "rock": 0.71},
    "votes": {"blues": 0, "classical": 0, "rock": 1},
    "segments": [
        {
            "index": 0,
            "start": 0.0,
            "end": 3.0,
            "genre": "rock",
            "probabilities": {"blues": 0.1, "classical": 0.19, "rock": 0.71},
        }
    ],
    "sounds_like": [
        {"name": "Rock music", "score": 0.61},
        {"name": "Heavy metal", "score": 0.45},
        {"name": "Punk rock", "score": 0.25},
    ],
}


def upload(client: Any, data: bytes, filename: str = "song.wav", **form: Any) -> Any:
    payload = {"file": (io.BytesIO(data), filename), **form}
    return client.post("/api/v1/jobs", data=payload, content_type="multipart/form-data")


def finish_job(settings: Settings, job_id: str, model_version: str) -> None:
    """Write what the worker writes when it classifies a job."""
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        job.status, job.progress, job.model_version = "done", 1.0, model_version
        job.started_at = job.finished_at = utcnow()
        session.add(StoredPrediction.from_result(job_id, RESULT))
    engine.dispose()


# --- accepted uploads ------------------------------------------------------------------------


def test_upload_stores_the_file_commits_the_job_then_enqueues(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    data = wav_bytes()
    seen_at_publish: list[Any] = []

    def check_row_is_committed(sender: str, body: Any, **_: Any) -> None:
        # A separate connection sees the row at the moment the message is published.
        engine = make_engine(settings.database_url)
        with session_scope(engine) as session:
            job = session.get(Job, body[0][0])
            seen_at_publish.append(None if job is None else job.status)
        engine.dispose()

    before_task_publish.connect(check_row_is_committed, weak=False)
    try:
        response = upload(client, data, "My Song.WAV", webhook_url="https://hooks.example/x?a=1")
    finally:
        before_task_publish.disconnect(check_row_is_committed)

    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["progress"] == 0.0
    assert job["filename"] == "My Song.WAV"
    assert job["size_bytes"] == len(data)
    assert job["webhook_url"] == "https://hooks.example/x?a=1"
    assert job["result"] is None
    assert job["error"] is None
    assert job["created_at"].endswith("Z")
    assert job["links"] == {
        "self": f"/api/v1/jobs/{job['id']}",
        "audio": f"/api/v1/jobs/{job['id']}/audio",
        "deliveries": f"/api/v1/jobs/{job['id']}/deliveries",
        "label": f"/api/v1/jobs/{job['id']}/label",
    }
    assert job["label"] is None
    assert job["audio_expired_at"] is None
    assert seen_at_publish == ["queued"]

    digest = hashlib.sha256(data).hexdigest()
    stored = settings.upload_dir / f"{digest}.wav"
    assert stored.read_bytes() == data
    assert [p.name for p in settings.upload_dir.iterdir()] == [stored.name]  # no temp files left

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        row = session.get(Job, job["id"])
        assert row.upload_path == str(stored)
        assert row.content_sha256 == digest
    engine.dispose()

    tasks = queued_tasks(redis_client, "predict")
    assert [(t["task"], t["args"]) for t in tasks] == [("genreflow.classify_song", [job["id"]])]


def test_identical_bytes_are_stored_once(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    data = wav_bytes()
    first = upload(client, data, "a.wav").get_json()
    second = upload(client, data, "b.wav").get_json()
    assert first["id"] != second["id"]
    assert len(list(settings.upload_dir.iterdir())) == 1
    assert len(queued_tasks(redis_client, "predict")) == 2  # the first is not done yet


def test_identical_done_upload_answers_200_with_a_done_copy(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    data = wav_bytes()
    first = upload(client, data).get_json()
    finish_job(settings, first["id"], active_model)
    redis_client.delete("predict")

    response = upload(client, data, "again.wav", webhook_url="http://hooks.example/done")
    assert response.status_code == 200
    copy = response.get_json()
    assert copy["id"] != first["id"]
    assert response.headers["Location"] == f"/api/v1/jobs/{copy['id']}"
    assert copy["status"] == "done"
    assert copy["progress"] == 1.0
    assert copy["filename"] == "again.wav"
    assert copy["model_version"] == active_model
    assert copy["result"] == RESULT
    assert copy["finished_at"] is not None
    assert queued_tasks(redis_client, "predict") == []
    webhooks = queued_tasks(redis_client, "webhooks")
    assert [(t["task"], t["args"]) for t in webhooks] == [
        ("genreflow.deliver_webhook", [copy["id"], "job.completed"])
    ]
    assert client.get(f"/api/v1/jobs/{copy['id']}").get_json()["result"] == RESULT


def test_identical_upload_under_another_model_is_classified_again(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str
) -> None:
    data = wav_bytes()
    first = upload(client, data).get_json()
    finish_job(settings, first["id"], active_model)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        register_model(session, write_model_files(settings.model_dir, "m-2"), activate=True)
    engine.dispose()
    response = upload(client, data)
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"


def test_filename_paths_are_stripped(client: Any, active_model: str) -> None:
    response = upload(client, wav_bytes(), "C:\\Users\\me\\..\\evil/../../x.wav")
    assert response.status_code == 202
    assert response.get_json()["filename"] == "x.wav"


def test_extension_may_come_from_the_content_type(client: Any, active_model: str) -> None:
    payload = {"file": (io.BytesIO(wav_bytes()), "recording", "audio/wav")}
    response = client.post("/api/v1/jobs", data=payload, content_type="multipart/form-data")
    assert response.status_code == 202


@pytest.mark.usefixtures("no_shipped_model")
def test_an_active_model_trained_by_the_cli_is_found(
    client: Any, settings: Settings, redis_client: redis.Redis
) -> None:
    write_model_files(settings.model_dir, "from-cli")  # genreflow train DIR --out model_dir
    assert_problem(upload(client, wav_bytes()), 503, "no_active_model")  # the view only reads
    sync_registry(settings)  # what worker start-up and beat's genreflow.sync_models run
    response = upload(client, wav_bytes())
    assert response.status_code == 202
    assert client.get("/api/v1/models").get_json()["active_version"] == "from-cli"


# --- refused uploads -------------------------------------------------------------------------


def test_missing_file_is_400(client: Any, active_model: str) -> None:
    response = client.post("/api/v1/jobs", data={}, content_type="multipart/form-data")
    assert_problem(response, 400, "missing_file")
    response = client.post("/api/v1/jobs", data={"other": (io.BytesIO(b"x"), "a.wav")})
    assert_problem(response, 400, "missing_file")
    response = client.post("/api/v1/jobs", json={"file": "song.wav"})
    assert_problem(response, 400, "missing_file")


def test_empty_filename_is_400(client: Any, active_model: str) -> None:
    assert_problem(upload(client, wav_bytes(), ""), 400, "missing_file")


@pytest.mark.parametrize(
    "url",
    ["ftp://hooks.example/x", "/relative/path", "hooks.example/x", "http://", "http://a b/", "x"],
)
def test_bad_webhook_url_is_400(
    client: Any, settings: Settings, active_model: str, url: str
) -> None:
    body = assert_problem(upload(client, wav_bytes(), webhook_url=url), 400, "invalid_webhook_url")
    assert "http" in body["detail"]
    assert list(settings.upload_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"just some text", "notes.txt", "text/plain"),
        (b"RIFF....WAVE", "song.wav", "text/plain"),
        (b"\x89PNG\r\n\x1a\n....", "cover.mp3", "application/octet-stream"),
        (b"%PDF-1.7 ...", "score.flac", "audio/flac"),
        (b"<html><body>hi</body></html>", "page.ogg", "audio/ogg"),
        (b"RIFF....WAVE", "song", "application/octet-stream"),
    ],
)
def test_not_audio_is_415(
    client: Any,
    settings: Settings,
    active_model: str,
    data: bytes,
    filename: str,
    content_type: str,
) -> None:
    payload = {"file": (io.BytesIO(data), filename, content_type)}
    response = client.post("/api/v1/jobs", data=payload, content_type="multipart/form-data")
    assert_problem(response, 415, "unsupported_media_type")
    assert list(settings.upload_dir.iterdir()) == []


def test_empty_file_is_422(client: Any, active_model: str) -> None:
    assert_problem(upload(client, b""), 422, "empty_audio")


def test_request_over_the_size_limit_is_413(
    client: Any, settings: Settings, active_model: str
) -> None:
    body = assert_problem(upload(client, b"\0" * (3 * 1024 * 1024)), 413, "upload_too_large")
    assert "1 MiB" in body["detail"]
    assert list(settings.upload_dir.iterdir()) == []


def test_file_just_over_the_size_limit_is_413(
    client: Any, settings: Settings, active_model: str
) -> None:
    # Fits MAX_CONTENT_LENGTH (which leaves room for the multipart envelope) but not the limit.
    data = wav_bytes() + b"\0" * settings.max_upload_bytes
    assert len(data) < settings.max_content_length
    assert_problem(upload(client, data), 413, "upload_too_large")
    assert list(settings.upload_dir.iterdir()) == []


def test_file_at_the_size_limit_is_accepted(
    client: Any, settings: Settings, active_model: str
) -> None:
    data = wav_bytes()
    data += b"\0" * (settings.max_upload_bytes - len(data))
    assert upload(client, data).status_code == 202


def test_no_active_model_is_503_with_a_way_out(
    client: Any, settings: Settings, redis_client: redis.Redis
) -> None:
    body = assert_problem(upload(client, wav_bytes()), 503, "no_active_model")
    assert "genreflow train" in body["detail"]
    assert f"--out {settings.model_dir}" in body["detail"]  # the folder, not a variable name
    assert "GENREFLOW_MODEL_DIR" not in body["detail"]
    assert "POST /api/v1/models/train" in body["detail"]
    assert "genreflow demo-data" in body["detail"]
    assert list(settings.upload_dir.iterdir()) == []
    assert queued_tasks(redis_client, "predict") == []


def test_broker_down_is_503_and_keeps_the_file_and_row(
    settings: Settings, dead_redis_url: str, active_model: str
) -> None:
    from web import create_app

    app = create_app(settings.replace(redis_url=dead_redis_url), config={"TESTING": True})
    data = wav_bytes()
    response = upload(app.test_client(), data)
    body = assert_problem(response, 503, "queue_unavailable")
    assert response.headers["Retry-After"]
    assert "upload it again" in body["detail"]
    assert "from REDIS_URL" in body["detail"]  # these settings did set REDIS_URL
    stored = settings.upload_dir / f"{hashlib.sha256(data).hexdigest()}.wav"
    assert stored.read_bytes() == data
    job = app.test_client().get(f"/api/v1/jobs/{body['job_id']}").get_json()
    assert job["status"] == "failed"
    assert job["error"]["code"] == "queue_unavailable"
    assert job["finished_at"] is not None
    app.extensions["genreflow"]["engine"].dispose()


# --- reading jobs ----------------------------------------------------------------------------


def test_get_job_and_404(client: Any, active_model: str) -> None:
    job = upload(client, wav_bytes()).get_json()
    assert client.get(f"/api/v1/jobs/{job['id']}").get_json() == job
    assert_problem(client.get("/api/v1/jobs/no-such-job"), 404, "job_not_found")


def test_failed_job_shows_its_error(client: Any, settings: Settings, db_session: Session) -> None:
    job = Job(filename="a.wav", upload_path="/x", content_sha256="1" * 64, size_bytes=1)
    job.set_error("invalid_audio", "Not a readable audio file", "a.wav is not audio.")
    db_session.add(job)
    db_session.commit()
    body = client.get(f"/api/v1/jobs/{job.id}").get_json()
    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "invalid_audio",
        "title": "Not a readable audio file",
        "detail": "a.wav is not audio.",
    }


def test_list_jobs_pages_and_filters(client: Any, settings: Settings, active_model: str) -> None:
    ids = [upload(client, wav_bytes(freq=200 + i)).get_json()["id"] for i in range(5)]
    finish_job(settings, ids[0], active_model)
    page = client.get("/api/v1/jobs?per_page=2").get_json()
    assert page["page"] == 1
    assert page["per_page"] == 2
    assert page["total"] == 5
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    page3 = client.get("/api/v1/jobs?per_page=2&page=3").get_json()
    assert [j["id"] for j in page3["items"]] == [ids[0]]
    done = client.get("/api/v1/jobs?status=done").get_json()
    assert [j["id"] for j in done["items"]] == [ids[0]]
    assert done["items"][0]["result"]["genre"] == "rock"
    assert client.get("/api/v1/jobs?status=queued").get_json()["total"] == 4
    assert client.get("/api/v1/jobs?page=9").get_json()["items"] == []


@pytest.mark.parametrize(
    "query", ["status=exploded", "page=0", "page=abc", "per_page=0", "per_page=1000"]
)
def test_list_jobs_bad_query_is_400(client: Any, query: str) -> None:
    assert_problem(client.get(f"/api/v1/jobs?{query}"), 400, "invalid_request")


def test_audio_is_served_with_ranges(client: Any, settings: Settings, active_model: str) -> None:
    data = wav_bytes()
    job = upload(client, data, "tune.wav").get_json()
    response = client.get(job["links"]["audio"])
    assert response.status_code == 200
    assert response.data == data
    assert response.mimetype in {"audio/wav", "audio/x-wav"}
    assert response.headers["Accept-Ranges"] == "bytes"
    partial = client.get(job["links"]["audio"], headers={"Range": "bytes=0-3"})
    assert partial.status_code == 206
    assert partial.data == b"RIFF"
    assert_problem(client.get("/api/v1/jobs/nope/audio"), 404, "job_not_found")
    for path in settings.upload_dir.iterdir():
        path.unlink()
    assert_problem(client.get(job["links"]["audio"]), 404, "job_not_found")


def test_deliveries(client: Any, settings: Settings, active_model: str) -> None:
    job = upload(client, wav_bytes(), webhook_url="https://hooks.example/x").get_json()
    assert client.get(job["links"]["deliveries"]).get_json() == {"items": []}
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        for attempt, code in ((1, 500), (2, 204)):
            session.add(
                WebhookDelivery(
                    job_id=job["id"], event_type="job.completed", message_id="msg_1",
                    attempt=attempt, url="https://hooks.example/x", status_code=code,
                    duration_ms=12.5, succeeded=code < 300,
                )
            )  # fmt: skip
    engine.dispose()
    items = client.get(job["links"]["deliveries"]).get_json()["items"]
    assert [(d["attempt"], d["status_code"], d["succeeded"]) for d in items] == [
        (1, 500, False),
        (2, 204, True),
    ]
    assert set(items[0]) == {
        "id", "job_id", "event_type", "message_id", "attempt", "url", "status_code", "error",
        "duration_ms", "succeeded", "created_at",
    }  # fmt: skip
    assert_problem(client.get("/api/v1/jobs/nope/deliveries"), 404, "job_not_found")


def test_uploads_dir_is_created_if_missing(
    client: Any, settings: Settings, active_model: str
) -> None:
    settings.upload_dir.rmdir()
    assert upload(client, wav_bytes()).status_code == 202
    assert Path(settings.upload_dir).is_dir()


@pytest.mark.parametrize(
    ("url_set", "private", "says", "never"),
    [
        (False, True, "the Redis server that genreflow run started", "REDIS_URL"),
        (True, False, "Redis at 127.0.0.1:1, from REDIS_URL", "genreflow run"),
        (False, False, "set REDIS_URL to use another", "genreflow run"),
    ],
)
def test_broker_down_message_speaks_of_what_the_user_set(
    settings: Settings,
    active_model: str,
    url_set: bool,
    private: bool,
    says: str,
    never: str,
) -> None:
    from web import create_app

    dead = "redis://:s3cret@127.0.0.1:1/0"
    app = create_app(
        settings.replace(redis_url=dead, redis_url_set=url_set or private, private_redis=private),
        config={"TESTING": True},
    )
    body = assert_problem(upload(app.test_client(), wav_bytes()), 503, "queue_unavailable")
    assert says in body["detail"]
    assert never not in body["detail"]
    assert "s3cret" not in body["detail"]
    app.extensions["genreflow"]["engine"].dispose()


def test_a_page_number_past_any_listing_is_a_400_not_a_500(client: Any) -> None:
    # schemathesis found this one: the SQL offset overflowed a 64-bit integer.
    response = client.get("/api/v1/jobs?page=4992681003377523744047104")
    assert_problem(response, 400, "invalid_request")
    assert client.get("/api/v1/jobs?page=1000000").status_code == 200
