"""The webhook outbox: owed with the job's end, re-sent only when overdue, one claim at a time."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shared.lifecycle.classification import run_classification
from shared.lifecycle.outbox import (
    OUTBOX_LEASE_S,
    claim_delivery,
    record_webhook_due,
    settle_delivery,
)
from shared.lifecycle.recovery import find_lost_work
from shared.store.config import Settings
from shared.store.orm import WebhookOutbox
from tests.lifecycle.test_jobs import make_job
from tests.lifecycle.test_recovery import ago


def test_a_job_that_ends_owes_its_webhook_in_the_same_transaction(
    db_session: Session, settings: Settings
) -> None:
    job = make_job(db_session, webhook_url="http://example.test/h")

    def no_model(_session: Session) -> Any:
        from shared.errors import ModelError

        raise ModelError("No model is active.")

    assert run_classification(db_session, job.id, no_model, settings) == "job.failed"
    row = db_session.query(WebhookOutbox).one()
    assert (row.job_id, row.event_type, row.closed_at) == (job.id, "job.failed", None)


def test_outbox_row_is_resent_only_when_its_message_is_overdue(db_session: Session) -> None:
    job = make_job(db_session, status="done", webhook_url="http://example.test/h")
    record_webhook_due(db_session, job.id, "job.completed")
    record_webhook_due(db_session, job.id, "job.completed")  # once per job event
    db_session.flush()

    assert find_lost_work(db_session).deliveries == []  # its message was just queued
    row = db_session.query(WebhookOutbox).one()
    row.enqueued_at = ago(OUTBOX_LEASE_S + 1)  # ... and lost

    assert find_lost_work(db_session).deliveries == [(job.id, "job.completed")]


def test_claims_let_one_of_two_messages_deliver(db_session: Session) -> None:
    job = make_job(db_session, status="done", webhook_url="http://example.test/h")
    record_webhook_due(db_session, job.id, "job.completed")
    db_session.flush()

    assert claim_delivery(db_session, job.id, "job.completed") is True
    assert claim_delivery(db_session, job.id, "job.completed") is False
    assert find_lost_work(db_session).deliveries == []  # claimed: not due until the claim ends


def test_long_retries_wait_in_the_outbox_and_short_ones_in_celery(db_session: Session) -> None:
    job = make_job(db_session, status="done", webhook_url="http://example.test/h")
    record_webhook_due(db_session, job.id, "job.completed")
    db_session.flush()
    row = db_session.query(WebhookOutbox).one()

    assert settle_delivery(db_session, job.id, "job.completed", status="retry", retry_in=2) is True
    assert row.enqueued_at is not None
    assert (
        settle_delivery(db_session, job.id, "job.completed", status="retry", retry_in=600) is False
    )
    assert row.enqueued_at is None
    row.next_attempt_at = ago(1)  # the wait is over: the sweep sends it
    assert find_lost_work(db_session).deliveries == [(job.id, "job.completed")]

    settle_delivery(db_session, job.id, "job.completed", status="delivered", retry_in=None)
    row.next_attempt_at = ago(1)
    assert row.closed_at is not None
    assert find_lost_work(db_session).deliveries == []
