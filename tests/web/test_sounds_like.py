"""The API's ``sounds_like``: stored with the answer, served with the job, documented."""

from __future__ import annotations

from typing import Any

from shared.store.config import Settings
from shared.store.db import make_engine, session_scope
from shared.store.orm import Job, StoredPrediction
from tests.web.conftest import wav_bytes
from tests.web.test_jobs import RESULT, finish_job, upload


def test_a_done_job_shows_what_it_sounds_like(
    client: Any, settings: Settings, active_model: str
) -> None:
    job = upload(client, wav_bytes()).get_json()
    finish_job(settings, job["id"], active_model)
    result = client.get(f"/api/v1/jobs/{job['id']}").get_json()["result"]
    assert result["sounds_like"] == RESULT["sounds_like"]
    listed = client.get("/api/v1/jobs").get_json()
    assert any(item["result"] and item["result"]["sounds_like"] for item in listed["items"])


def test_an_answer_stored_without_it_shows_null(
    client: Any, settings: Settings, active_model: str
) -> None:
    job = upload(client, wav_bytes(seconds=4.0)).get_json()
    finish_job(settings, job["id"], active_model)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:  # as an answer stored before migration 0006
        session.get(Job, job["id"]).prediction.sounds_like = None
    engine.dispose()
    assert client.get(f"/api/v1/jobs/{job['id']}").get_json()["result"]["sounds_like"] is None
    assert StoredPrediction.from_result("x", {**RESULT, "sounds_like": None}).sounds_like is None


def test_openapi_documents_sounds_like_as_a_second_opinion(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    field = schemas["PredictionOut"]["properties"]["sounds_like"]
    assert "AudioSet" in field["description"]
    assert "not one of the model's genres" in field["description"]
    assert set(schemas["SoundsLikeOut"]["properties"]) == {"name", "score"}
