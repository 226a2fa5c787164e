"""The retention sweep on a real SQLite database and upload folder (and the workers' timer)."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.lifecycle.retention import ORPHAN_GRACE_S, sweep_expired
from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.db import session_scope
from shared.store.orm import Job, JobLabel, RetentionSweep, StoredPrediction
from tests.conftest import stored_result
from worker import retention_timer

DAY = timedelta(days=1)


def stored_job(
    session: Session,
    settings: Settings,
    name: str,
    *,
    age: timedelta,
    status: str = "done",
    label: str | None = None,
    data: bytes | None = None,
) -> Job:
    """Add a job created ``age`` ago whose audio file was written just before it."""
    path = settings.upload_dir / f"{name}.wav"
    if data is not None or not path.exists():
        path.write_bytes(data or name.encode() * 100)
    created = utcnow() - age
    stamp = created.timestamp() - 1
    os.utime(path, (stamp, stamp))
    job = Job(
        filename=f"{name}.wav",
        upload_path=str(path),
        content_sha256=name,
        size_bytes=path.stat().st_size,
        status=status,
        created_at=created,
        finished_at=created if status in {"done", "failed"} else None,
    )
    session.add(job)
    session.flush()
    if status == "done":
        session.add(stored_result(job.id, "rock"))
    if label:
        session.add(JobLabel(job_id=job.id, genre="jazz", status=label))
    session.commit()
    return job


def test_audio_expires_after_its_days_unless_a_label_keeps_it(
    db_session: Session, settings: Settings
) -> None:
    old = stored_job(db_session, settings, "old", age=8 * DAY)
    recent = stored_job(db_session, settings, "recent", age=2 * DAY)
    approved = stored_job(db_session, settings, "approved", age=30 * DAY, label="approved")
    pending = stored_job(db_session, settings, "pending", age=30 * DAY, label="pending")
    rejected = stored_job(db_session, settings, "rejected", age=30 * DAY, label="rejected")
    queued = stored_job(db_session, settings, "queued", age=30 * DAY, status="queued")
    shared_old = stored_job(db_session, settings, "shared", age=9 * DAY)
    shared_new = stored_job(db_session, settings, "shared", age=1 * DAY)
    sizes = Path(old.upload_path).stat().st_size + Path(rejected.upload_path).stat().st_size

    sweep = sweep_expired(db_session, settings)

    assert sweep.n_audio_expired == 3  # old, rejected, shared_old
    assert sweep.n_files_removed == 2  # old and rejected; "shared" is still held
    assert sweep.bytes_freed == sizes
    for job in (old, rejected):
        db_session.refresh(job)
        assert job.audio_expired_at is not None
        assert not Path(job.upload_path).exists()
        assert job.prediction is not None  # the result stays
    for job in (recent, approved, pending, queued, shared_new):
        db_session.refresh(job)
        assert job.audio_expired_at is None
        assert Path(job.upload_path).exists()
    db_session.refresh(shared_old)
    assert shared_old.audio_expired_at is not None
    assert Path(shared_old.upload_path).exists()

    assert sweep_expired(db_session, settings).n_audio_expired == 0  # nothing left to expire


def test_results_are_kept_forever_by_default_and_removed_after_their_days_when_set(
    db_session: Session, settings: Settings
) -> None:
    ancient = stored_job(db_session, settings, "ancient", age=400 * DAY)
    labelled = stored_job(db_session, settings, "labelled", age=400 * DAY, label="approved")
    young = stored_job(db_session, settings, "young", age=10 * DAY)
    ids = {ancient.id, labelled.id, young.id}

    assert sweep_expired(db_session, settings).n_results_expired == 0
    assert set(db_session.scalars(select(Job.id))) == ids

    sweep = sweep_expired(db_session, settings.replace(result_retention_days=30.0))

    assert sweep.n_results_expired == 1
    assert set(db_session.scalars(select(Job.id))) == {labelled.id, young.id}
    assert db_session.scalars(select(StoredPrediction.job_id)).all().count(ancient.id) == 0


def test_orphan_files_go_once_they_are_old(db_session: Session, settings: Settings) -> None:
    stale = settings.upload_dir / ("a" * 64 + ".mp3")
    fresh = settings.upload_dir / ("b" * 64 + ".mp3")
    half_written = settings.upload_dir / ".upload-x.mp3"
    for path in (stale, fresh, half_written):
        path.write_bytes(b"\0" * 1000)
    old = time.time() - ORPHAN_GRACE_S - 60
    os.utime(stale, (old, old))
    os.utime(half_written, (old, old))

    sweep = sweep_expired(db_session, settings)

    assert sweep.n_files_removed == 2
    assert sweep.bytes_freed == 2000
    assert not stale.exists()
    assert not half_written.exists()
    assert fresh.exists()  # may be an upload whose job is not committed yet


def test_each_sweep_is_recorded(db_session: Session, settings: Settings) -> None:
    stored_job(db_session, settings, "old", age=8 * DAY)
    sweep_expired(db_session, settings)
    sweep_expired(db_session, settings)
    rows = db_session.scalars(select(RetentionSweep).order_by(RetentionSweep.id)).all()
    assert [(r.n_audio_expired, r.n_files_removed) for r in rows] == [(1, 1), (0, 0)]


def test_the_workers_timer_sweeps_without_beat_once_per_interval(
    settings: Settings, redis_client: redis.Redis, engine: Any
) -> None:
    with session_scope(engine) as session:
        stored_job(session, settings, "old", age=8 * DAY)

    assert retention_timer.sweep_once(settings, redis_client, interval_s=60) is True
    assert retention_timer.sweep_once(settings, redis_client, interval_s=60) is False  # taken
    assert redis_client.ttl(retention_timer.LOCK_KEY) > 0

    redis_client.delete(retention_timer.LOCK_KEY)
    retention_timer._started.clear()
    thread = retention_timer.start(
        lambda: settings, lambda: redis_client, interval_s=1.0, first_delay_s=0.05
    )
    assert thread is not None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                if len(session.scalars(select(RetentionSweep)).all()) >= 4:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the timer did not sweep three times")
    finally:
        retention_timer._stop.set()
        thread.join(timeout=5)
        retention_timer._stop.clear()
        retention_timer._started.clear()

    with session_scope(engine) as session:
        times = session.scalars(select(RetentionSweep.started_at).order_by(RetentionSweep.id)).all()
    timer_sweeps = times[1:]  # the first is sweep_once's, above
    gaps = [(b - a).total_seconds() for a, b in pairwise(timer_sweeps)]
    assert len(gaps) >= 2
    assert all(gap >= 0.9 for gap in gaps), gaps  # one sweep per interval, again and again


def test_a_ready_worker_sweeps_at_the_interval_its_settings_give(
    settings: Settings, redis_client: redis.Redis, engine: Any
) -> None:
    """GENREFLOW_RETENTION_SWEEP_S sets the timer (it was an hour whatever retention said)."""
    from celery.signals import worker_ready

    quick = settings.replace(retention_sweep_s=1.0)
    redis_client.delete(retention_timer.LOCK_KEY)
    retention_timer._started.clear()
    with session_scope(engine) as session:
        before = len(session.scalars(select(RetentionSweep)).all())
    receiver = retention_timer.connect_signals(lambda: quick, lambda: redis_client)
    try:
        receiver()  # what worker_ready calls (not sent: worker.tasks, once imported, listens too)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                if len(session.scalars(select(RetentionSweep)).all()) >= before + 2:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("a 1-s interval did not give two sweeps in 15 s")
    finally:
        worker_ready.disconnect(receiver)
        retention_timer._stop.set()
        for thread in threading.enumerate():
            if thread.name == "retention-sweep":
                thread.join(timeout=5)
        retention_timer._stop.clear()
        retention_timer._started.clear()


def test_old_sweep_records_fold_into_one_with_their_totals(
    db_session: Session, settings: Settings
) -> None:
    """A sweep every minute added a row a minute, forever; rows past a day now fold into one."""
    now = utcnow()
    for k in range(5):
        db_session.add(RetentionSweep(started_at=now - 3 * DAY + k * timedelta(minutes=1),
                                      n_audio_expired=1, n_files_removed=2,
                                      n_results_expired=3, bytes_freed=100))  # fmt: skip
    db_session.add(RetentionSweep(started_at=now - timedelta(hours=1), n_audio_expired=1,
                                  n_files_removed=0, n_results_expired=0,
                                  bytes_freed=7))  # fmt: skip
    db_session.commit()

    sweep_expired(db_session, settings, now=now)

    rows = db_session.scalars(select(RetentionSweep).order_by(RetentionSweep.started_at)).all()
    assert len(rows) == 3  # the folded one, the hour-old one, this sweep
    assert rows[0].started_at.replace(tzinfo=None) == (now - 3 * DAY + 4 * timedelta(minutes=1)
                                                       ).replace(tzinfo=None)  # fmt: skip
    assert (rows[0].n_audio_expired, rows[0].n_files_removed, rows[0].n_results_expired,
            rows[0].bytes_freed) == (5, 10, 15, 500)  # fmt: skip
    assert rows[1].bytes_freed == 7
