"""Heartbeats: a running job or training run shows it is alive by writing ``heartbeat_at``.

A task beats from a background thread (:func:`heartbeat`) while it works; the recovery sweep
(:mod:`shared.lifecycle.recovery`) takes a row whose beat is older than ``JOB_STALE_S`` (a job)
or ``RUN_STALE_S`` (a training run) to have lost its task.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Final

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.store.columns import utcnow
from shared.store.orm import Job, JobStatus, RunStatus, TrainingRun

log = logging.getLogger(__name__)

#: A running job or training run writes its ``heartbeat_at`` this often.
HEARTBEAT_INTERVAL_S: Final = 3.0
#: A ``processing`` job with no heartbeat for this long has lost its task.
JOB_STALE_S: Final = 15.0


class WorkInProgress(Exception):
    """Another live task (its heartbeat is fresh) is working on this job; try again later."""


def beat_once(session: Session, row_type: type[Job] | type[TrainingRun], row_id: str) -> bool:
    """Write one heartbeat on a job or training run that is still in progress.

    Returns
    -------
    bool
        Whether the row was still ``processing`` / ``running`` (and got the heartbeat).
    """
    status = JobStatus.PROCESSING.value if row_type is Job else RunStatus.RUNNING.value
    result = session.execute(
        update(row_type)
        .where(row_type.id == row_id, row_type.status == status)
        .values(heartbeat_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@contextlib.contextmanager
def heartbeat(
    database_url: str,
    row_type: type[Job] | type[TrainingRun],
    row_id: str,
    *,
    interval_s: float = HEARTBEAT_INTERVAL_S,
) -> Iterator[None]:
    """Beat on a job or training run from a background thread while the block runs.

    The thread has its own database session, so the beats go on while the task's own session
    is busy (decoding, scoring, training). Database trouble is logged and retried next beat.
    """
    from shared.store.db import session_scope

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval_s):
            try:
                with session_scope(database_url) as session:
                    beat_once(session, row_type, row_id)
            except Exception as exc:  # the next beat may succeed; the sweep has slack
                log.warning("heartbeat of %s %s failed: %s", row_type.__name__, row_id, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat-{row_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval_s + 5)


def is_alive(heartbeat_at: datetime | None, *, now: datetime | None = None) -> bool:
    """Whether a heartbeat is recent enough that its task is taken to be alive."""
    if heartbeat_at is None:
        return False
    return ((now or utcnow()) - heartbeat_at).total_seconds() < JOB_STALE_S
