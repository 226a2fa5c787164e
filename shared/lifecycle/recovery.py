"""Recovery: the database is the source of truth, and lost queue messages are rebuilt from it.

A message on the queue can be lost (Redis lost its last second of writes, a worker's process
died holding it, the web died between its commit and its enqueue). A row in the database cannot.
So every piece of owed work has a row with a sign of life, and :func:`find_lost_work` finds the
rows whose sign of life is too old:

- a job ``processing`` whose task stopped beating (:mod:`shared.lifecycle.heartbeats`) for
  ``JOB_STALE_S``: its process died; the job goes back to ``queued`` and is enqueued again;
- a job ``queued`` that was not (re-)enqueued for ``QUEUED_STALE_S``: its message may be lost;
  it is enqueued again (the task is idempotent, so a duplicate is harmless);
- a webhook event owed (a :class:`~shared.store.orm.WebhookOutbox` row, written in the transaction
  that ended the job) that is due and has no live message: it is enqueued again;
- a training run ``running`` whose task stopped beating for ``RUN_STALE_S``: it is failed, and
  the training lock is released when no live training holds it; a run ``queued`` too long while
  nothing trains is enqueued again.

Every genreflow worker runs the sweep (:func:`sweep_lost_work`, from a thread of its main
process: :mod:`worker.sweeper`), whatever started the worker; no scheduler is needed. A lock in
Redis (``SET NX`` with an expiry of ``RECOVERY_INTERVAL_S``) lets one sweep run per interval
across every host. ``genreflow run`` also runs it once at start-up (then every queued job is
enqueued again).

The functions mark the rows and return what to send; the caller commits, then sends. A sweeper
that dies mid-sweep leaves nothing half-done: the marks are one transaction (all or none), and
rows marked but never sent look like work queued at that moment, which the next sweeps send
again once ``QUEUED_STALE_S`` has passed (the tasks are idempotent, so a duplicate is harmless).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from shared.lifecycle.base import mark_failed
from shared.lifecycle.heartbeats import JOB_STALE_S
from shared.lifecycle.outbox import OUTBOX_LEASE_S
from shared.lifecycle.queues import (
    QUEUE_PREDICT,
    QUEUE_TRAIN,
    QUEUE_WEBHOOKS,
    RECOVERY_INTERVAL_S,
    TASK_CLASSIFY_SONG,
    TASK_DELIVER_WEBHOOK,
    TASK_TRAIN_MODEL,
)
from shared.store.columns import utcnow
from shared.store.orm import Job, JobStatus, RunStatus, TrainingRun, WebhookOutbox

log = logging.getLogger(__name__)

#: A ``queued`` job not (re-)enqueued for this long may have lost its message.
QUEUED_STALE_S: Final = 60.0
#: A ``running`` training run with no heartbeat for this long has lost its worker.
RUN_STALE_S: Final = 60.0
#: A ``queued`` training run waits this long (while nothing trains) before it is sent again.
RUN_QUEUED_STALE_S: Final = 300.0

#: The Redis key whose holder may sweep: one sweep per ``RECOVERY_INTERVAL_S`` across hosts.
SWEEP_LOCK_KEY: Final = "genreflow:recovery:sweep"

Send = Callable[[str, list[Any], str], Any]


@dataclass
class LostWork:
    """What a sweep found; send it with :meth:`send` after committing the session."""

    jobs: list[str] = field(default_factory=list)
    deliveries: list[tuple[str, str]] = field(default_factory=list)
    runs_requeued: list[str] = field(default_factory=list)
    runs_failed: list[str] = field(default_factory=list)
    release_training_lock: bool = False

    def __bool__(self) -> bool:
        """Whether anything was found."""
        return bool(self.jobs or self.deliveries or self.runs_requeued or self.runs_failed)

    def summary(self) -> str:
        """Return a one-line account, for the logs."""
        return (
            f"{len(self.jobs)} job(s) re-enqueued, {len(self.deliveries)} webhook delivery(ies) "
            f"re-sent, {len(self.runs_requeued)} training run(s) re-enqueued, "
            f"{len(self.runs_failed)} interrupted training run(s) failed"
        )

    def send(self, send: Send) -> None:
        """Enqueue the found work with ``send(task_name, args, queue)``."""
        for job_id in self.jobs:
            send(TASK_CLASSIFY_SONG, [job_id], QUEUE_PREDICT)
        for job_id, event_type in self.deliveries:
            send(TASK_DELIVER_WEBHOOK, [job_id, event_type], QUEUE_WEBHOOKS)
        for run_id in self.runs_requeued:
            send(TASK_TRAIN_MODEL, [run_id], QUEUE_TRAIN)


def find_lost_work(
    session: Session,
    *,
    startup: bool = False,
    now: datetime | None = None,
    job_stale_s: float = JOB_STALE_S,
    queued_stale_s: float = QUEUED_STALE_S,
    run_stale_s: float = RUN_STALE_S,
    run_queued_stale_s: float = RUN_QUEUED_STALE_S,
) -> LostWork:
    """Find owed work that has no live task or message, and mark it as sent again.

    Parameters
    ----------
    session : Session
        The rows are updated here; the caller commits, then calls :meth:`LostWork.send`.
    startup : bool
        The service is starting: every ``queued`` job and training run is sent again, whatever
        its age (the queue may have been lost with the previous run).
    now : datetime, optional
        The current time (UTC); for tests.
    job_stale_s, queued_stale_s, run_stale_s, run_queued_stale_s : float >= 0
        The ages past which a sign of life is too old (see the module constants).

    Returns
    -------
    LostWork
    """
    now = now or utcnow()
    found = LostWork()

    def older(column: Any, created: Any, seconds: float) -> Any:
        cutoff = now - timedelta(seconds=seconds)
        return or_(column < cutoff, column.is_(None) & (created < cutoff))

    queued_age = 0.0 if startup else queued_stale_s
    stale_jobs = session.scalars(
        select(Job)
        .where(
            or_(
                (Job.status == JobStatus.PROCESSING.value)
                & older(Job.heartbeat_at, Job.started_at, job_stale_s),
                (Job.status == JobStatus.QUEUED.value)
                & older(Job.heartbeat_at, Job.created_at, queued_age),
            )
        )
        .order_by(Job.created_at)
    ).all()
    for job in stale_jobs:
        if job.status == JobStatus.PROCESSING.value:
            log.warning("job %s: its task stopped (no heartbeat); queued again", job.id)
        job.status, job.heartbeat_at = JobStatus.QUEUED.value, now
        found.jobs.append(job.id)

    due = session.scalars(
        select(WebhookOutbox).where(
            WebhookOutbox.closed_at.is_(None),
            WebhookOutbox.next_attempt_at <= now,
            or_(
                WebhookOutbox.enqueued_at.is_(None),
                WebhookOutbox.enqueued_at < now - timedelta(seconds=OUTBOX_LEASE_S),
            ),
        )
    ).all()
    for row in due:
        row.enqueued_at = now
        found.deliveries.append((row.job_id, row.event_type))

    _find_lost_runs(session, found, now=now, startup=startup, run_stale_s=run_stale_s,
                    run_queued_stale_s=run_queued_stale_s)  # fmt: skip
    session.flush()
    return found


def _find_lost_runs(
    session: Session,
    found: LostWork,
    *,
    now: datetime,
    startup: bool,
    run_stale_s: float,
    run_queued_stale_s: float,
) -> None:
    cutoff = now - timedelta(seconds=run_stale_s)
    running = session.scalars(
        select(TrainingRun).where(TrainingRun.status == RunStatus.RUNNING.value)
    ).all()
    alive = 0
    for run in running:
        last = run.heartbeat_at or run.started_at or run.created_at
        if last >= cutoff:
            alive += 1
            continue
        mark_failed(
            run,
            code="interrupted",
            detail=(
                f"The training worker stopped during this run (no sign of life for "
                f"{int((now - last).total_seconds())} s). Start a new run to train again."
            ),
        )
        found.runs_failed.append(run.id)
        log.warning("training run %s: its worker stopped; marked failed", run.id)
    found.release_training_lock = bool(found.runs_failed) and alive == 0
    if alive:
        return
    queued_cutoff = now - timedelta(seconds=0.0 if startup else run_queued_stale_s)
    for run in session.scalars(
        select(TrainingRun).where(TrainingRun.status == RunStatus.QUEUED.value)
    ).all():
        if (run.heartbeat_at or run.created_at) <= queued_cutoff:
            run.heartbeat_at = now
            found.runs_requeued.append(run.id)


def sweep_lost_work(
    database: str | Engine,
    redis: Any,
    send: Send,
    *,
    holder: str,
    every_s: float = RECOVERY_INTERVAL_S,
) -> LostWork | None:
    """Run one recovery sweep, unless another sweeper (on any host) ran one in the last ``every_s``.

    Parameters
    ----------
    database : str or Engine
        Where the rows live (a URL, or an engine such as the sweeper thread's own).
    redis : redis.Redis
        The broker's Redis: it holds :data:`SWEEP_LOCK_KEY` (and the training lock).
    send : callable(task_name, args, queue)
        Enqueues the found work, after the marks are committed.
    holder : str
        Who sweeps (``host:pid``), written as the lock's value for the curious.
    every_s : float > 0
        The lock's expiry: at most one sweep per this many seconds runs, cluster-wide.

    Returns
    -------
    LostWork or None
        What was found and sent; ``None`` when another sweeper holds the lock.
    """
    from shared.store.db import session_scope

    if not redis.set(SWEEP_LOCK_KEY, holder, nx=True, px=max(1, int(every_s * 1000))):
        return None
    with session_scope(database) as session:
        found = find_lost_work(session)
    if found.release_training_lock:
        release_training_lock(redis)
    if found:
        log.warning("recovery: %s", found.summary())
        found.send(send)
    return found


def release_training_lock(redis: Any) -> None:
    """Delete the training lock (only when no live training holds it: see the sweep)."""
    from shared.lifecycle.training_lock import TRAINING_LOCK_NAME

    redis.delete(TRAINING_LOCK_NAME)
