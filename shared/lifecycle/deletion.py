"""Deleting a job: its row, result, label, webhook deliveries and outbox rows, and its audio.

Uploads are content-addressed (``<sha256><ext>``), so one file may serve several jobs: the file
goes only when no other job still holds it (:func:`release_audio`). The row is deleted and
committed first and the file removed after, so a crash leaves at worst an orphan file, which the
retention sweep removes (:mod:`shared.lifecycle.retention`). A file rewritten after the job that
held it was created is kept: it is a newer upload of the same bytes, whose job row may not be
committed yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import JobInProgress
from shared.lifecycle.heartbeats import JOB_STALE_S, is_alive
from shared.store.orm import Job, JobStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deleted:
    """What a deletion removed: the job's id, and the bytes its audio freed (0: kept)."""

    job_id: str
    bytes_freed: int


def audio_held(session: Session, upload_path: str) -> bool:
    """Whether some job still holds the file at ``upload_path`` (its audio not expired)."""
    count = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.upload_path == upload_path, Job.audio_expired_at.is_(None))
    )
    return bool(count)


def release_audio(session: Session, upload_path: str, *, held_since: datetime) -> int:
    """Remove the file at ``upload_path`` unless a job holds it or it was rewritten since.

    Call after the rows that held the file are deleted or expired (flushed or committed).

    Parameters
    ----------
    session : Session
    upload_path : str
    held_since : datetime
        When the newest of those rows was created; a file written later belongs to a newer
        upload of the same bytes and is kept.

    Returns
    -------
    int
        The bytes freed (0 when the file was kept or already gone).
    """
    if audio_held(session, upload_path):
        return 0
    path = Path(upload_path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0
    if stat.st_mtime > held_since.timestamp():
        log.info("audio %s was stored again since; kept", path.name)
        return 0
    path.unlink(missing_ok=True)
    log.info("audio %s removed (%d bytes)", path.name, stat.st_size)
    return stat.st_size


def delete_job(session: Session, job: Job) -> Deleted:
    """Delete ``job`` with everything that hangs on it, commit, then release its audio.

    A ``queued`` job is deleted: when its message reaches a worker, the worker finds no job and
    drops it. A job a live task is classifying is refused, since the task would write its
    result to a row that is gone; the client deletes it once it ends (a few seconds).

    Raises
    ------
    JobInProgress
        The job is ``processing`` and its heartbeat is fresh.
    """
    if job.status == JobStatus.PROCESSING.value and is_alive(job.heartbeat_at):
        raise JobInProgress(
            f"Job {job.id} is being classified right now; delete it when it has ended.",
            retry_after_s=int(JOB_STALE_S),
        )
    job_id, upload_path, created_at = job.id, job.upload_path, job.created_at
    session.delete(job)  # the prediction, label and deliveries by the ORM; outbox by its FK
    session.commit()
    freed = release_audio(session, upload_path, held_since=created_at)
    log.info("job %s deleted (%d bytes of audio freed)", job_id, freed)
    return Deleted(job_id=job_id, bytes_freed=freed)
