"""The workers' recovery sweeper: a real thread, a real Redis, a real (SQLite) database."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis

from shared.lifecycle.heartbeats import JOB_STALE_S
from shared.lifecycle.recovery import SWEEP_LOCK_KEY
from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.db import session_scope
from shared.store.orm import Job
from tests.lifecycle.test_jobs import make_job
from worker import sweeper as worker_sweeper
from worker.sweeper import Sweeper


def test_the_sweeper_requeues_an_orphaned_job_and_sends_it_once(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = utcnow() - timedelta(seconds=JOB_STALE_S + 5)
    with session_scope(settings.database_url) as session:
        job_id = make_job(session, status="processing", started_at=stale, heartbeat_at=stale,
                          attempts=1).id  # fmt: skip
    tries = []
    sweeper = Sweeper(settings, try_every_s=0.2)
    sweep = worker_sweeper.sweep_lost_work
    monkeypatch.setattr(worker_sweeper, "sweep_lost_work",
                        lambda *a, **k: tries.append(1) or sweep(*a, **k))  # fmt: skip
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while redis_client.llen("predict") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        sent_after = len(tries)
        while len(tries) < sent_after + 5 and time.monotonic() < deadline + 10:
            time.sleep(0.1)  # let it try again, and again
    finally:
        sweeper.stop()

    assert len(tries) >= sent_after + 5
    assert redis_client.llen("predict") == 1  # one message, though it tried many times
    assert redis_client.exists(SWEEP_LOCK_KEY)
    message = redis_client.lindex("predict", 0)
    assert job_id.encode() in message
    with session_scope(settings.database_url) as session:
        assert session.get(Job, job_id).status == "queued"
