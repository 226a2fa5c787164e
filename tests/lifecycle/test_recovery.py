"""The recovery sweep and the webhook outbox, on a real (SQLite) database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shared.lifecycle.classification import run_classification
from shared.lifecycle.heartbeats import JOB_STALE_S, WorkInProgress, beat_once
from shared.lifecycle.outbox import (
    OUTBOX_LEASE_S,
    claim_delivery,
    record_webhook_due,
    settle_delivery,
)
from shared.lifecycle.recovery import (
    QUEUED_STALE_S,
    RUN_STALE_S,
    SWEEP_LOCK_KEY,
    find_lost_work,
    sweep_lost_work,
)
from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.orm import Job, TrainingRun, WebhookOutbox
from tests.lifecycle.test_jobs import make_job


def ago(seconds: float) -> Any:
    return utcnow() - timedelta(seconds=seconds)


def test_sweep_requeues_orphaned_and_forgotten_jobs_only(db_session: Session) -> None:
    orphan = make_job(db_session, status="processing", started_at=ago(60),
                      heartbeat_at=ago(JOB_STALE_S + 5), attempts=1)  # fmt: skip
    busy = make_job(db_session, status="processing", started_at=ago(60), heartbeat_at=ago(1))
    forgotten = make_job(db_session, created_at=ago(QUEUED_STALE_S + 5))
    waiting = make_job(db_session, created_at=ago(5))
    done = make_job(db_session, status="done", created_at=ago(3600))

    found = find_lost_work(db_session)

    assert sorted(found.jobs) == sorted([orphan.id, forgotten.id])
    assert orphan.status == "queued"  # a live task finds it queued and takes it
    assert orphan.attempts == 1  # kept: a job that kills every worker still ends failed
    assert (busy.status, waiting.status, done.status) == ("processing", "queued", "done")
    assert find_lost_work(db_session).jobs == []  # re-enqueued just now: not again at once


def test_sweep_at_startup_requeues_every_queued_job(db_session: Session) -> None:
    young = make_job(db_session, created_at=ago(1))

    assert find_lost_work(db_session, startup=True).jobs == [young.id]


def test_a_redelivered_task_leaves_a_job_with_a_live_heartbeat_alone(
    db_session: Session, settings: Settings
) -> None:
    job = make_job(db_session, status="processing", started_at=ago(5), heartbeat_at=ago(1))

    with pytest.raises(WorkInProgress):
        run_classification(db_session, job.id, lambda _s: None, settings)  # type: ignore[arg-type]
    assert job.attempts == 0


def test_heartbeat_writes_only_on_work_in_progress(db_session: Session) -> None:
    running = make_job(db_session, status="processing", heartbeat_at=ago(100))
    finished = make_job(db_session, status="done")

    assert beat_once(db_session, Job, running.id) is True
    assert beat_once(db_session, Job, finished.id) is False
    db_session.expire_all()
    assert (utcnow() - running.heartbeat_at).total_seconds() < 5


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


def test_sweep_fails_interrupted_training_and_frees_the_lock(db_session: Session) -> None:
    dead = TrainingRun(status="running", started_at=ago(600), heartbeat_at=ago(RUN_STALE_S + 5))
    waiting = TrainingRun(status="queued", created_at=ago(3600))
    db_session.add_all([dead, waiting])
    db_session.flush()

    found = find_lost_work(db_session)

    assert found.runs_failed == [dead.id]
    assert (dead.status, dead.error_code) == ("failed", "interrupted")
    assert found.release_training_lock is True
    assert found.runs_requeued == [waiting.id]


def test_sweep_keeps_a_live_training_and_its_lock(db_session: Session) -> None:
    live = TrainingRun(status="running", started_at=ago(600), heartbeat_at=ago(2))
    waiting = TrainingRun(status="queued", created_at=ago(3600))
    db_session.add_all([live, waiting])
    db_session.flush()

    found = find_lost_work(db_session)

    assert (found.runs_failed, found.runs_requeued, found.release_training_lock) == ([], [], False)
    assert live.status == "running"


def test_one_sweep_per_interval_across_sweepers(engine: Engine, redis_client: redis.Redis) -> None:
    with Session(engine) as session:
        orphan = make_job(session, status="processing", started_at=ago(60),
                          heartbeat_at=ago(JOB_STALE_S + 5), attempts=1)  # fmt: skip
        session.commit()
        orphan_id = orphan.id
    sent: list[tuple[str, list[Any], str]] = []

    def send(name: str, args: list[Any], queue: str) -> None:
        sent.append((name, args, queue))

    first = sweep_lost_work(engine, redis_client, send, holder="host-a:1", every_s=30)
    # A second host tries at once: the first one's lock stands, so it does not sweep.
    second = sweep_lost_work(engine, redis_client, send, holder="host-b:2", every_s=30)

    assert first is not None
    assert first.jobs == [orphan_id]
    assert second is None
    assert sent == [("genreflow.classify_song", [orphan_id], "predict")]
    assert redis_client.get(SWEEP_LOCK_KEY) == b"host-a:1"
    assert 0 < redis_client.pttl(SWEEP_LOCK_KEY) <= 30_000  # it expires: a dead sweeper frees it
    with Session(engine) as session:  # the marks were committed before the message was sent
        assert session.get(Job, orphan_id).status == "queued"


def test_a_sweeper_that_dies_before_sending_loses_nothing(
    engine: Engine, redis_client: redis.Redis
) -> None:
    with Session(engine) as session:
        orphan = make_job(session, status="processing", started_at=ago(60),
                          heartbeat_at=ago(JOB_STALE_S + 5), attempts=1)  # fmt: skip
        session.commit()
        orphan_id = orphan.id

    def die(*_: Any) -> None:
        raise SystemExit("the sweeper's host went away between its commit and its send")

    with pytest.raises(SystemExit):
        sweep_lost_work(engine, redis_client, die, holder="host-a:1", every_s=30)

    # The job is queued (not half-processing), and a later sweep, past the queued-stale age,
    # sends it again from another host.
    later = utcnow() + timedelta(seconds=QUEUED_STALE_S + 1)
    with Session(engine) as session:
        assert session.get(Job, orphan_id).status == "queued"
        assert find_lost_work(session, now=later).jobs == [orphan_id]
