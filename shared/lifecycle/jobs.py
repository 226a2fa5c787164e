"""A classification job's life: submit (web), start, progress, finish, fail (worker).

:func:`submit_job` commits the job row before its message is sent, answers an identical upload
under the same active model with a copy of the earlier result, and fails the job (keeping the
row and the file) when the broker is down. :func:`run_classification` is idempotent, so a
redelivered task (``acks_late``) is harmless: a job already ``done`` or ``failed`` is left alone.
Errors a file causes (bad audio, too long) fail the job at once with the error's code, title and
detail. Database trouble propagates; the task turns it into a retry.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from shared.errors import (
    GenreflowError,
    NoActiveModel,
    QueueUnavailable,
    StorageFull,
    TransientError,
    UploadMissing,
)
from shared.lifecycle.base import mark_failed, progress_writer
from shared.lifecycle.queues import (
    QUEUE_PREDICT,
    QUEUE_WEBHOOKS,
    TASK_CLASSIFY_SONG,
    TASK_DELIVER_WEBHOOK,
)
from shared.lifecycle.recovery import WorkInProgress, is_alive, record_webhook_due
from shared.lifecycle.webhooks import EVENT_COMPLETED, event_for_status
from shared.logs import set_job_id
from shared.store.disk import is_disk_full
from shared.store.orm import (
    JOB_FINAL_STATUSES,
    Job,
    JobStatus,
    ModelVersion,
    StoredPrediction,
    utcnow,
)
from shared.store.registry import active_model

if TYPE_CHECKING:
    from shared.core.nets.genre_model import GenreModel
    from shared.store.config import Settings

log = logging.getLogger(__name__)

ModelProvider = Callable[[Session], "GenreModel"]

#: A job whose task started this many times without finishing (e.g. the worker was killed by
#: the kernel on every try) is failed instead of being tried again.
MAX_JOB_ATTEMPTS: Final = 3
PROGRESS_STARTED: Final = 0.05
PROGRESS_MODEL_READY: Final = 0.1
#: predict_file's 0..1 maps onto what is left of the job's progress bar.
_PREDICT_SPAN: Final = {"predicting": (PROGRESS_MODEL_READY, 0.99)}
_PROGRESS_INTERVAL_S: Final = 0.25


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
        _event(session, job)  # the outbox owes its webhook, if any, from this commit on
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


def run_classification(
    session: Session, job_id: str, model_provider: ModelProvider, settings: Settings
) -> str | None:
    """Classify the song of job ``job_id`` and store the result on the job.

    Parameters
    ----------
    session : Session
        Progress is committed as it goes; the caller's ``session_scope`` commits the end.
    job_id : str
    model_provider : callable(session) -> GenreModel
        Returns the active model (see :func:`worker.model_cache.get_active_model`).
    settings : Settings
        For ``max_duration_s`` and ``upload_dir``.

    Returns
    -------
    str or None
        The webhook event to announce (``"job.completed"`` or ``"job.failed"``) when this call
        ended the job and the job has a ``webhook_url``; otherwise ``None``. The caller enqueues
        the delivery after committing.

    Raises
    ------
    sqlalchemy.exc.DBAPIError
        When the database fails (the task retries the transient ones).
    WorkInProgress
        When the job is ``processing`` and its heartbeat is fresh: another task holds it.
    """
    try:
        return _classify(session, job_id, model_provider, settings)
    except StaleDataError:  # the job was deleted under the task (DELETE /api/v1/jobs/<id>)
        session.rollback()
        if session.get(Job, job_id) is not None:
            raise
        log.info("job %s was deleted while it was being classified; dropped", job_id)
        return None


def _classify(
    session: Session, job_id: str, model_provider: ModelProvider, settings: Settings
) -> str | None:
    job = session.get(Job, job_id)
    if job is None:
        log.warning("job %s does not exist (deleted?); nothing to do", job_id)
        return None
    if job.status in JOB_FINAL_STATUSES:
        log.info("job %s is already %s; nothing to do", job_id, job.status)
        return None
    if job.status == JobStatus.PROCESSING and is_alive(job.heartbeat_at):
        raise WorkInProgress(f"job {job_id} is being classified by a live task")
    if job.attempts >= MAX_JOB_ATTEMPTS:
        mark_failed(
            job,
            code="too_many_attempts",
            title="Classification kept failing",
            detail=f"The worker stopped {job.attempts} times while classifying this file.",
        )
        return _event(session, job)

    job.status = JobStatus.PROCESSING.value
    job.attempts += 1
    attempt = job.attempts
    job.started_at = job.heartbeat_at = utcnow()
    job.progress = PROGRESS_STARTED
    session.commit()  # pollers see "processing" before the model loads

    try:
        model = model_provider(session)
        job.model_version = model.version
        job.progress = PROGRESS_MODEL_READY
        session.commit()
        upload_path = _upload_path(job, settings)
        if not upload_path.is_file():  # a file error, never retried: this host would not see it
            raise UploadMissing(
                f"The worker on {socket.gethostname()} cannot find this job's file "
                f"({upload_path}). Every host must mount the uploads folder "
                f"(GENREFLOW_UPLOAD_DIR, {settings.upload_dir}) at the same path; upload the "
                "song again once it does."
            )

        from shared.core.serving.predict import predict_file

        prediction = predict_file(
            upload_path,
            model,
            max_duration_s=settings.max_duration_s,
            progress=_predict_progress(session, job),
            name=job.filename,
        )
    except TransientError:
        raise
    except GenreflowError as exc:
        if not _still_ours(session, job, attempt):
            return None
        mark_failed(job, code=exc.code, title=exc.title, detail=exc.detail)
        return _event(session, job)
    except DBAPIError:
        raise
    except Exception as exc:  # a job must end; the traceback goes to the log
        if is_disk_full(exc):  # not the file's fault: the task tries again later
            raise StorageFull(f"The disk is full while classifying job {job_id}: {exc}") from exc
        log.exception("job %s failed unexpectedly", job_id)
        if not _still_ours(session, job, attempt):
            return None
        mark_failed(
            job,
            code="internal_error",
            title="Classification failed",
            detail=f"An unexpected error stopped the classification ({type(exc).__name__}).",
        )
        return _event(session, job)

    if not _still_ours(session, job, attempt):
        return None
    if job.prediction is None:
        session.add(StoredPrediction.from_result(job.id, prediction.to_dict()))
    job.status = JobStatus.DONE.value
    job.progress = 1.0
    job.finished_at = utcnow()
    job.error_code = job.error_title = job.error_detail = None
    session.flush()
    log.info("job %s done: %s (%.2f)", job_id, prediction.genre, prediction.confidence)
    return _event(session, job)


def _still_ours(session: Session, job: Job, attempt: int) -> bool:
    """Whether this task's attempt still owns ``job`` (read from the database, not the session).

    A worker cut off from the others (frozen, or its network down) past the heartbeat's
    staleness finds, when it comes back, that the sweep gave its job to another worker, which
    may have ended it. Its late result is dropped, so a job never ends twice.
    """
    status, attempts = session.execute(
        select(Job.status, Job.attempts).where(Job.id == job.id)
    ).one()
    if status == JobStatus.PROCESSING.value and attempts == attempt:
        return True
    session.rollback()  # nothing of this attempt's end is written
    log.warning(
        "job %s: another worker took it over while this one was cut off (now %s, attempt %d); "
        "this late result is dropped",
        job.id, status, attempts,
    )  # fmt: skip
    return False


def _upload_path(job: Job, settings: Settings) -> Path:
    path = Path(job.upload_path)
    return path if path.is_absolute() else settings.upload_dir / path


def _predict_progress(session: Session, job: Job) -> Callable[[float], None]:
    """Return predict_file's ``progress(fraction)`` callback, committing the job's progress."""
    write = progress_writer(session, job, spans=_PREDICT_SPAN, min_interval_s=_PROGRESS_INTERVAL_S)
    return lambda fraction: write("predicting", fraction)


def _event(session: Session, job: Job) -> str | None:
    """Return the webhook event a job that just ended owes, and record it in the outbox.

    The outbox row commits with the job's end, so the delivery survives a crash before the
    caller queues it (:mod:`shared.lifecycle.recovery`).
    """
    event = event_for_status(job.status) if job.webhook_url else None
    if event:
        record_webhook_due(session, job.id, event)
    return event


def requeue_after_storage_full(session: Session, job_id: str) -> None:
    """Put a job whose try hit a full disk back to ``queued``, not counting that try.

    Best effort (the disk may still be full): the task's retry finds the job either way.
    """
    job = session.get(Job, job_id)
    if job is None or job.status in JOB_FINAL_STATUSES:
        return
    if job.status == JobStatus.PROCESSING.value:  # the try's start was committed: uncount it
        job.attempts = max(0, job.attempts - 1)
    job.status, job.progress = JobStatus.QUEUED.value, 0.0
    job.heartbeat_at = utcnow()


def abandon_job(session: Session, job_id: str, exc: BaseException) -> str | None:
    """Fail a job whose task gave up retrying (the last retry raised ``exc``).

    Returns
    -------
    str or None
        The webhook event to announce, as for :func:`run_classification`.
    """
    job = session.get(Job, job_id)
    if job is None or job.status in JOB_FINAL_STATUSES:
        return None
    detail = exc.detail if isinstance(exc, GenreflowError) else str(exc)
    mark_failed(job, code=TransientError.code, title="Service unavailable", detail=detail)
    return _event(session, job)
