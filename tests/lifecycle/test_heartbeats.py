"""Heartbeats: a live one keeps a redelivered task off its job; beats land only on live work."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from shared.lifecycle.classification import run_classification
from shared.lifecycle.heartbeats import WorkInProgress, beat_once
from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.orm import Job
from tests.lifecycle.test_jobs import make_job
from tests.lifecycle.test_recovery import ago


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
