"""A classification job's submission (web): the row committed, then its message sent.

:func:`submit_job` commits the job row before its message is sent, answers an identical upload
under the same active model with a copy of the earlier result, and fails the job (keeping the
row and the file) when the broker is down. The worker's side of the job's life is
:mod:`shared.lifecycle.classification`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import NoActiveModel, QueueUnavailable
from shared.lifecycle.base import mark_failed
from shared.lifecycle.outbox import owe_job_event
from shared.lifecycle.queues import (
    QUEUE_PREDICT,
    QUEUE_WEBHOOKS,
    TASK_CLASSIFY_SONG,
    TASK_DELIVER_WEBHOOK,
)
from shared.lifecycle.webhooks import EVENT_COMPLETED
from shared.logs import set_job_id
from shared.store.columns import utcnow
from shared.store.orm import Job, JobStatus, ModelVersion, StoredPrediction
from shared.store.registry import active_model

log = logging.getLogger(__name__)


class TaskSender(Protocol):
    """Sends a task by name (the web's :class:`web.queue.TaskQueue`)."""

    def send(self, name: str, args: list[Any], *, queue: str) -> str:
        """Send task ``name`` with ``args`` to ``queue``; raise ``QueueUnavailable``."""
        ...


@dataclass(frozen=True)
class Upload:
    """A stored upload, as :func:`web.uploads.store_upload` leaves it."""

    filename: str
    path: Path
    sha256: str
    size_bytes: int
    webhook_url: str | None = None
    api_key_id: str | None = None


def require_active_model(session: Session, *, model_dir: Path | None = None) -> ModelVersion:
    """Return the active model (a pure read).

    Parameters
    ----------
    session : Session
    model_dir : Path, optional
        The folder the service reads models from; the error's advice names it.

    Raises
    ------
    NoActiveModel
        When no model is active.
    """
    model = active_model(session)
    if model is None:
        raise NoActiveModel(NoActiveModel.for_model_dir(model_dir) if model_dir else None)
    return model


def submit_job(
    session: Session, upload: Upload, *, model_version: str, queue: TaskSender
) -> tuple[Job, bool]:
    """Create the job of an upload, commit it, then send it to the ``predict`` queue.

    When the same bytes already have a done job under ``model_version``, the new job is
    created ``done`` with a copy of that result (and its webhook, if any, is queued).

    Parameters
    ----------
    session : Session
        Committed here (before the message is sent).
    upload : Upload
    model_version : str
        The active model (see :func:`require_active_model`).
    queue : TaskSender

    Returns
    -------
    (Job, bool)
        The job, and whether it was answered from an earlier result.

    Raises
    ------
    QueueUnavailable
        When the broker is down; the job is kept, failed with that code (``job_id`` extra).
    """
    job = Job(
        filename=upload.filename,
        upload_path=str(upload.path),
        content_sha256=upload.sha256,
        size_bytes=upload.size_bytes,
        webhook_url=upload.webhook_url,
        status=JobStatus.QUEUED.value,
        progress=0.0,
        attempts=0,
        api_key_id=upload.api_key_id,
    )
    earlier = _earlier_result(session, upload.sha256, model_version)
    if earlier is not None:
        now = utcnow()
        job.status, job.progress, job.model_version = JobStatus.DONE.value, 1.0, model_version
        job.started_at = job.finished_at = now
        session.add(job)
        session.flush()
        set_job_id(job.id)  # the caller's later log lines carry the job id too
        job.prediction = _copy_prediction(earlier, job.id)
        owe_job_event(session, job)  # the outbox owes its webhook, if any, from this commit on
        session.commit()
        log.info("job %s: same bytes as job %s, result copied", job.id, earlier.job_id)
        if job.webhook_url:
            try:
                queue.send(TASK_DELIVER_WEBHOOK, [job.id, EVENT_COMPLETED], queue=QUEUE_WEBHOOKS)
            except QueueUnavailable:
                log.error("job %s: webhook not queued, broker unreachable", job.id)
        return job, True

    session.add(job)
    session.commit()  # the row exists before any worker can see the message
    set_job_id(job.id)  # the caller's later log lines carry the job id too
    log.info("job %s accepted: %s, %d bytes", job.id, job.filename, job.size_bytes)
    try:
        queue.send(TASK_CLASSIFY_SONG, [job.id], queue=QUEUE_PREDICT)
    except QueueUnavailable as exc:
        mark_failed(job, code=exc.code, title=exc.title, detail=exc.detail)
        session.commit()
        raise QueueUnavailable(
            f"{exc.detail} The file was kept; upload it again to retry.", job_id=job.id
        ) from exc
    return job, False


def _earlier_result(session: Session, sha256: str, model_version: str) -> StoredPrediction | None:
    query = (
        select(StoredPrediction)
        .join(Job, StoredPrediction.job_id == Job.id)
        .where(
            Job.content_sha256 == sha256,
            Job.model_version == model_version,
            Job.status == JobStatus.DONE.value,
        )
        .order_by(Job.finished_at.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def _copy_prediction(source: StoredPrediction, job_id: str) -> StoredPrediction:
    return StoredPrediction(
        job_id=job_id,
        genre=source.genre,
        confidence=source.confidence,
        probabilities=source.probabilities,
        votes=source.votes,
        segments=source.segments,
        duration_s=source.duration_s,
        n_segments=source.n_segments,
        uncertain=source.uncertain,
        uncertain_reason=source.uncertain_reason,
        sounds_like=source.sounds_like,
    )
