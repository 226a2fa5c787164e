"""The recovery sweep, on a real (SQLite) database and a real Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shared.lifecycle.heartbeats import JOB_STALE_S
from shared.lifecycle.recovery import (
    QUEUED_STALE_S,
    RUN_STALE_S,
    SWEEP_LOCK_KEY,
    find_lost_work,
    sweep_lost_work,
)
from shared.store.columns import utcnow
from shared.store.orm import Job, TrainingRun
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
