"""Classify one uploaded song: the logic behind the ``genreflow.classify_song`` task.

:func:`run_classification` is idempotent, so a redelivered task (``acks_late``) is harmless: a
job already ``done`` or ``failed`` is left alone. Errors a file causes (bad audio, too long) fail
the job at once with the error's code, title and detail; database trouble is raised as
:class:`~shared.errors.TransientError` so the task retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from shared.errors import GenreflowError, TransientError
from shared.models import Job, JobStatus, Prediction, utcnow
from shared.webhooks import event_for_status

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.model import GenreModel

log = logging.getLogger(__name__)

ModelProvider = Callable[[Session], "GenreModel"]

#: A job whose task started this many times without finishing (e.g. the worker was killed by
#: the kernel on every try) is failed instead of being tried again.
MAX_JOB_ATTEMPTS: Final = 3
PROGRESS_STARTED: Final = 0.05
PROGRESS_MODEL_READY: Final = 0.1
_FINAL_STATUSES: Final = frozenset({JobStatus.DONE.value, JobStatus.FAILED.value})


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
        Returns the active model (see :func:`shared.worker_model.get_active_model`).
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
    TransientError
        When the database fails in a way worth retrying.
    """
    try:
        return _classify(session, job_id, model_provider, settings)
    except DBAPIError as exc:
        if not is_transient_db_error(exc):
            raise
        session.rollback()
        raise TransientError(f"Database unavailable while classifying job {job_id}: {exc}") from exc


def is_transient_db_error(exc: DBAPIError) -> bool:
    """Whether a database error is worth retrying (lost connection, lock timeout, ...)."""
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


@contextmanager
def transient_db_errors(what: str) -> Iterator[None]:
    """Re-raise retryable database errors inside the block as :class:`TransientError`."""
    try:
        yield
    except DBAPIError as exc:
        if not is_transient_db_error(exc):
            raise
        raise TransientError(f"Database unavailable while {what}: {exc}") from exc


def _classify(
    session: Session, job_id: str, model_provider: ModelProvider, settings: Settings
) -> str | None:
    job = session.get(Job, job_id)
    if job is None:
        log.warning("job %s does not exist (deleted?); nothing to do", job_id)
        return None
    if job.status in _FINAL_STATUSES:
        log.info("job %s is already %s; nothing to do", job_id, job.status)
        return None
    if job.attempts >= MAX_JOB_ATTEMPTS:
        _fail(
            job,
            code="too_many_attempts",
            title="Classification kept failing",
            detail=f"The worker stopped {job.attempts} times while classifying this file.",
        )
        return _event(job)

    job.status = JobStatus.PROCESSING.value
    job.attempts += 1
    job.started_at = utcnow()
    job.progress = PROGRESS_STARTED
    session.commit()  # pollers see "processing" before the model loads

    try:
        model = model_provider(session)
        job.model_version = model.version
        job.progress = PROGRESS_MODEL_READY
        session.commit()

        from shared.predict import predict_file

        prediction = predict_file(
            _upload_path(job, settings),
            model,
            max_duration_s=settings.max_duration_s,
            progress=_progress_writer(session, job),
            name=job.filename,
        )
    except TransientError:
        raise
    except GenreflowError as exc:
        _fail(job, code=exc.code, title=exc.title, detail=exc.detail)
        return _event(job)
    except DBAPIError:
        raise
    except Exception as exc:  # a job must end; the traceback goes to the log
        log.exception("job %s failed unexpectedly", job_id)
        _fail(
            job,
            code="internal_error",
            title="Classification failed",
            detail=f"An unexpected error stopped the classification ({type(exc).__name__}).",
        )
        return _event(job)

    if job.prediction is None:
        session.add(Prediction.from_result(job.id, prediction.to_dict()))
    job.status = JobStatus.DONE.value
    job.progress = 1.0
    job.finished_at = utcnow()
    job.error_code = job.error_title = job.error_detail = None
    session.flush()
    log.info("job %s done: %s (%.2f)", job_id, prediction.genre, prediction.confidence)
    return _event(job)


def _upload_path(job: Job, settings: Settings) -> Path:
    path = Path(job.upload_path)
    return path if path.is_absolute() else settings.upload_dir / path


def _progress_writer(session: Session, job: Job) -> Callable[[float], None]:
    """Return a callback mapping predict_file's 0..1 onto the job's remaining progress."""
    last = {"t": 0.0}

    def write(fraction: float) -> None:
        value = PROGRESS_MODEL_READY + (0.99 - PROGRESS_MODEL_READY) * min(1.0, max(0.0, fraction))
        now = time.monotonic()
        if value <= job.progress or (now - last["t"] < 0.25 and fraction < 1.0):
            return
        job.progress = round(value, 4)
        session.commit()
        last["t"] = now

    return write


def _fail(job: Job, *, code: str, title: str, detail: str) -> None:
    job.set_error(code, title, detail)
    job.finished_at = utcnow()
    log.info("job %s failed: %s: %s", job.id, code, detail)


def _event(job: Job) -> str | None:
    return event_for_status(job.status) if job.webhook_url else None


def fail_job_after_retries(session: Session, job_id: str, exc: BaseException) -> str | None:
    """Fail a job whose task gave up retrying (the last retry raised ``exc``).

    Returns
    -------
    str or None
        The webhook event to announce, as for :func:`run_classification`.
    """
    job = session.get(Job, job_id)
    if job is None or job.status in _FINAL_STATUSES:
        return None
    detail = exc.detail if isinstance(exc, GenreflowError) else str(exc)
    _fail(job, code=TransientError.code, title="Service unavailable", detail=detail)
    return _event(job)
