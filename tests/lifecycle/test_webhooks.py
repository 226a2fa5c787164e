"""Webhook signing, backoff and the delivery bookkeeping, with a fake HTTP transport."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from shared.lifecycle.job_shape import job_fields
from shared.lifecycle.webhooks import (
    AttemptResult,
    backoff_delay,
    build_event,
    deliver_job_event,
    encode_body,
    message_id_for,
    post_webhook,
    sign_headers,
)
from shared.store.config import Settings
from shared.store.orm import Job, StoredPrediction, WebhookDelivery
from web.api.schemas import dump_job


def make_job(db_session: Session, *, status: str = "done", url: str | None = "http://x/h") -> Job:
    job = Job(
        filename="song.wav", upload_path="/nowhere/song.wav", content_sha256="0" * 64,
        size_bytes=10, webhook_url=url, status=status, progress=1.0, attempts=1,
        finished_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )  # fmt: skip
    db_session.add(job)
    db_session.flush()
    return job


class FakeTransport:
    def __init__(self, *results: AttemptResult) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(
        self, url: str, body: bytes, headers: dict[str, str], *, address: str | None = None
    ) -> AttemptResult:
        self.calls.append((url, body, headers))
        return self.results.pop(0) if self.results else AttemptResult(204, None, 1.0)


def deliver(db_session: Session, settings: Settings, job: Job, transport: FakeTransport) -> object:
    return deliver_job_event(
        db_session, job.id, "job.completed", render_job=job_fields, secret=settings.webhook_secret,
        max_attempts=3,
        backoff_s=settings.webhook_backoff_s, http_post=transport,
    )  # fmt: skip


def test_signature_verifies_with_standard_webhooks(settings: Settings) -> None:
    body = encode_body({"type": "job.completed", "data": {"id": "j"}})

    headers = sign_headers(settings.webhook_secret, "msg_1", body)

    assert Webhook(settings.webhook_secret).verify(body, headers) == {
        "type": "job.completed",
        "data": {"id": "j"},
    }
    assert headers["webhook-id"] == "msg_1"
    assert headers["content-type"] == "application/json"


def test_message_id_is_stable_per_job_and_event() -> None:
    assert message_id_for("a", "job.completed") == message_id_for("a", "job.completed")
    assert message_id_for("a", "job.completed") != message_id_for("a", "job.failed")
    assert message_id_for("a", "job.completed") != message_id_for("b", "job.completed")


@pytest.mark.parametrize(("attempt", "expected"), [(1, 2.0), (2, 4.0), (3, 8.0), (30, 3600.0)])
def test_backoff_doubles_and_is_capped(attempt: int, expected: float) -> None:
    assert backoff_delay(attempt, base_s=2.0) == expected


def test_event_body_is_the_job_and_its_finish_time(db_session: Session) -> None:
    job = make_job(db_session)

    event = build_event(job, "job.completed", render_job=job_fields)

    assert event == {
        "type": "job.completed",
        "timestamp": "2026-01-02T03:04:05Z",
        "data": job_fields(job),
    }


@pytest.mark.parametrize("status", ["done", "failed"])
def test_the_webhook_body_is_the_api_shape(db_session: Session, status: str) -> None:
    # The worker renders webhook bodies without the web's code; the API's schema must agree.
    job = make_job(db_session, status=status)
    if status == "done":
        job.model_version = "m1"
        job.prediction = StoredPrediction.from_result(job.id, {
            "genre": "rock", "confidence": 0.75, "duration_s": 9.0, "n_segments": 3,
            "probabilities": {"rock": 0.75, "jazz": 0.25}, "votes": {"rock": 3, "jazz": 0},
            "segments": [{"index": 0, "start": 0.0, "end": 3.0, "genre": "rock",
                          "probabilities": {"rock": 0.75, "jazz": 0.25}}],
        })  # fmt: skip
    else:
        job.error_code, job.error_title, job.error_detail = "invalid_audio", "Bad", "Unreadable."
    db_session.flush()

    assert job_fields(job) == dump_job(job)
    assert job_fields(job)["result" if status == "done" else "error"] is not None


def test_failed_attempt_is_recorded_and_retried_later(
    db_session: Session, settings: Settings
) -> None:
    job = make_job(db_session)
    transport = FakeTransport(AttemptResult(503, "HTTP 503", 12.5))

    outcome = deliver(db_session, settings, job, transport)

    assert outcome.status == "retry"
    assert outcome.retry_in == 2.0
    (row,) = db_session.query(WebhookDelivery).all()
    assert (row.attempt, row.status_code, row.error, row.succeeded) == (1, 503, "HTTP 503", False)
    assert row.message_id == message_id_for(job.id, "job.completed")


def test_attempts_continue_until_success_then_stop(db_session: Session, settings: Settings) -> None:
    job = make_job(db_session)
    transport = FakeTransport(AttemptResult(None, "ConnectionError: refused", 3.0))

    outcomes = [deliver(db_session, settings, job, transport).status for _ in range(3)]

    assert outcomes == ["retry", "delivered", "skipped"]
    assert len(transport.calls) == 2
    first, second = (call[2] for call in transport.calls)
    assert first["webhook-id"] == second["webhook-id"]
    assert transport.calls[0][1] == transport.calls[1][1]
    rows = db_session.query(WebhookDelivery).order_by(WebhookDelivery.attempt).all()
    assert [(r.attempt, r.succeeded) for r in rows] == [(1, False), (2, True)]


def test_gives_up_after_the_last_attempt(db_session: Session, settings: Settings) -> None:
    job = make_job(db_session)
    failing = [AttemptResult(500, "HTTP 500", 1.0)] * 5
    transport = FakeTransport(*failing)

    outcomes = [deliver(db_session, settings, job, transport).status for _ in range(4)]

    assert outcomes == ["retry", "retry", "gave_up", "gave_up"]
    assert len(transport.calls) == 3
    assert db_session.query(WebhookDelivery).count() == 3


@pytest.mark.parametrize(("status", "url"), [("processing", "http://x/h"), ("done", None)])
def test_nothing_is_sent_for_running_jobs_or_jobs_without_url(
    db_session: Session, settings: Settings, status: str, url: str | None
) -> None:
    job = make_job(db_session, status=status, url=url)
    transport = FakeTransport()

    assert deliver(db_session, settings, job, transport).status == "skipped"
    assert transport.calls == []


def test_post_webhook_reports_network_errors_instead_of_raising() -> None:
    result = post_webhook("http://127.0.0.1:9/nothing", b"{}", {}, connect_timeout_s=0.5)

    assert result.status_code is None
    assert result.error is not None
    assert "Connection" in result.error
    assert not result.succeeded
