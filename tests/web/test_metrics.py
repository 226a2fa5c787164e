"""/metrics: request counts by route and status, and the service's state read at scrape time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.db import make_engine, session_scope
from shared.store.orm import Job, RunStatus, TrainingRun, WebhookDelivery
from tests.web.helpers import queued_tasks
from tests.web.test_auth import upload


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_a_finished_job_and_requests(
    client: Any, settings: Settings, redis_client: Any, active_model: str
) -> None:
    before = scrape(client)
    assert before[("genreflow_jobs_total", (("status", "done"),))] == 0
    job = upload(client).get_json()
    assert scrape(client)[("genreflow_queue_depth", (("queue", "predict"),))] == 1
    assert len(queued_tasks(redis_client, "predict")) == 1

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:  # what the worker writes when the job ends
        row = session.get(Job, job["id"])
        row.status, row.progress = "done", 1.0
        row.started_at = row.created_at + timedelta(seconds=2)
        row.finished_at = row.started_at + timedelta(seconds=3)
        session.add(
            WebhookDelivery(job_id=row.id, event_type="job.completed", message_id="m",
                            attempt=1, url="https://hooks.example/x", succeeded=True)
        )  # fmt: skip
        session.add(TrainingRun(status=RunStatus.DONE.value, trigger="api", started_at=utcnow(),
                                finished_at=utcnow() + timedelta(seconds=42)))  # fmt: skip
    engine.dispose()

    after = scrape(client)
    assert after[("genreflow_jobs_total", (("status", "done"),))] == 1
    assert after[("genreflow_jobs_total", (("status", "failed"),))] == 0
    assert after[("genreflow_job_duration_seconds_count", ())] == 1
    assert abs(after[("genreflow_job_duration_seconds_sum", ())] - 3.0) < 0.01
    assert after[("genreflow_job_duration_seconds_bucket", (("le", "2.5"),))] == 0
    assert after[("genreflow_job_duration_seconds_bucket", (("le", "5.0"),))] == 1
    assert abs(after[("genreflow_job_queue_wait_seconds_sum", ())] - 2.0) < 0.01
    assert after[("genreflow_active_model", (("version", active_model),))] == 1
    assert after[("genreflow_webhook_deliveries_total", (("outcome", "delivered"),))] == 1
    assert after[("genreflow_training_runs_total", (("status", "done"),))] == 1
    assert abs(after[("genreflow_training_duration_seconds_sum", ())] - 42.0) < 0.01

    uploads = [
        value
        for (name, labels), value in after.items()
        if name == "genreflow_http_request_duration_seconds_count"
        and ("url_rule", "/api/v1/jobs") in labels
        and ("status", "202") in labels
    ]
    assert uploads == [1.0]


def test_metrics_survive_a_broker_that_is_down(
    settings: Settings, dead_redis_url: str, redis_client: Any
) -> None:
    from web import create_app

    client = create_app(settings.replace(redis_url=dead_redis_url)).test_client()
    samples = scrape(client)
    assert ("genreflow_jobs_total", (("status", "done"),)) in samples
    assert not [key for key in samples if key[0] == "genreflow_queue_depth"]


def test_metrics_can_require_a_token(settings: Settings, redis_client: Any) -> None:
    from web import create_app

    client = create_app(settings.replace(metrics_token="s3cret-scrape")).test_client()

    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic s3cret-scrape"},
    ):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.get_json()["code"] == "unauthorized"
        assert "genreflow_jobs_total" not in refused.get_data(as_text=True)
    allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
    assert allowed.status_code == 200
    assert "genreflow_jobs_total" in allowed.get_data(as_text=True)
    # Without the setting, /metrics stays open (the default, as before).
    assert create_app(settings).test_client().get("/metrics").status_code == 200
