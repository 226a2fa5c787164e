"""A classification job's run on a worker: start, progress, finish, fail.

:func:`run_classification` is idempotent, so a redelivered task (``acks_late``) is harmless: a
job already ``done`` or ``failed`` is left alone. Errors a file causes (bad audio, too long) fail
the job at once with the error's code, title and detail. Database trouble propagates; the task
turns it into a retry. A worker that was cut off while another took its job over writes nothing
onto that job: neither progress nor its late result.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from shared.errors import GenreflowError, StorageFull, TransientError, UploadMissing
from shared.lifecycle.base import mark_failed
from shared.lifecycle.heartbeats import WorkInProgress, is_alive
from shared.lifecycle.outbox import owe_job_event
from shared.store.columns import utcnow
from shared.store.disk import is_disk_full
from shared.store.orm import JOB_FINAL_STATUSES, Job, JobStatus, StoredPrediction

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
_PREDICT_SPAN: Final = (PROGRESS_MODEL_READY, 0.99)
_PROGRESS_INTERVAL_S: Final = 0.25


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
        return owe_job_event(session, job)

    job.status = JobStatus.PROCESSING.value
    job.attempts += 1
    attempt = job.attempts
    job.started_at = job.heartbeat_at = utcnow()
    job.progress = PROGRESS_STARTED
    session.commit()  # pollers see "processing" before the model loads

    try:
        model = model_provider(session)
        _write_if_ours(session, job, attempt, model_version=model.version,
                       progress=PROGRESS_MODEL_READY)  # fmt: skip
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
            progress=_predict_progress(session, job, attempt),
            name=job.filename,
        )
    except TransientError:
        raise
    except GenreflowError as exc:
        return _fail_if_ours(session, job, attempt, code=exc.code, title=exc.title,
                             detail=exc.detail)  # fmt: skip
    except DBAPIError:
        raise
    except Exception as exc:  # a job must end; the traceback goes to the log
        if is_disk_full(exc):  # not the file's fault: the task tries again later
            raise StorageFull(f"The disk is full while classifying job {job_id}: {exc}") from exc
        log.exception("job %s failed unexpectedly", job_id)
        return _fail_if_ours(
            session,
            job,
            attempt,
            code="internal_error",
            title="Classification failed",
            detail=f"An unexpected error stopped the classification ({type(exc).__name__}).",
        )

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
    return owe_job_event(session, job)


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


def _fail_if_ours(
    session: Session, job: Job, attempt: int, *, code: str, title: str, detail: str
) -> str | None:
    """Mark the job failed, if this try still holds it; return the event owed, or None."""
    if not _still_ours(session, job, attempt):
        return None
    mark_failed(job, code=code, title=title, detail=detail)
    return owe_job_event(session, job)


def _upload_path(job: Job, settings: Settings) -> Path:
    path = Path(job.upload_path)
    return path if path.is_absolute() else settings.upload_dir / path


def _write_if_ours(session: Session, job: Job, attempt: int, **values: object) -> bool:
    """Write ``values`` onto the job and commit, only while this attempt still owns it.

    Returns
    -------
    bool
        Whether the row was written (``False``: the job was taken over, or it ended).
    """
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.PROCESSING.value, Job.attempts == attempt)
        .values(**values)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _predict_progress(session: Session, job: Job, attempt: int) -> Callable[[float], None]:
    """Return predict_file's ``progress(fraction)`` callback, committing the job's progress.

    Writes are at least ``_PROGRESS_INTERVAL_S`` apart (except the last), never go backwards,
    and stop once the job is no longer this attempt's.
    """
    low, high = _PREDICT_SPAN
    last_t, last_value, ours = 0.0, job.progress, True

    def write(fraction: float) -> None:
        nonlocal last_t, last_value, ours
        value = round(low + (high - low) * min(1.0, max(0.0, fraction)), 4)
        now = time.monotonic()
        too_soon = now - last_t < _PROGRESS_INTERVAL_S and fraction < 1.0
        if not ours or value <= last_value or too_soon:
            return
        ours = _write_if_ours(session, job, attempt, progress=value)
        last_t, last_value = now, value

    return write


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
    return owe_job_event(session, job)
