"""What every lifecycle shares: failing a row, throttled progress, transient database errors.

A job and a training run end the same way (``failed`` with a code and a detail, or given up
after the task's last retry) and report progress the same way (committed at most every so
often). These helpers are their one home.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from shared.errors import GenreflowError, StorageFull, TransientError
from shared.store.columns import utcnow
from shared.store.disk import is_disk_full
from shared.store.orm import JobStatus

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


class Failable(Protocol):
    """A row with a lifecycle: a job or a training run."""

    id: str
    status: str
    progress: float
    error_code: str | None
    error_detail: str | None
    finished_at: object


def is_transient_db_error(exc: DBAPIError) -> bool:
    """Whether a database error is worth retrying (lost connection, lock timeout, ...)."""
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


@contextmanager
def transient_db_errors(what: str) -> Iterator[None]:
    """Re-raise retryable database errors inside the block as :class:`TransientError`.

    Tasks wrap their ``session_scope`` in this once, so the commit at the end is covered too.
    A full disk (the database's, or ``ENOSPC`` from a file write) is :class:`StorageFull`.
    """
    try:
        yield
    except DBAPIError as exc:
        if is_disk_full(exc):
            raise StorageFull(f"The database's disk is full while {what}: {exc}") from exc
        if not is_transient_db_error(exc):
            raise
        raise TransientError(f"Database unavailable while {what}: {exc}") from exc
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise StorageFull(f"The disk is full while {what}: {exc}") from exc


def mark_failed(row: Failable, *, code: str, detail: str, title: str | None = None) -> None:
    """End ``row`` as ``failed`` now, with an error code and detail (and title, for jobs)."""
    row.status = JobStatus.FAILED.value  # the same word in both lifecycles
    row.error_code, row.error_detail = code, detail
    if title is not None:
        row.error_title = title  # type: ignore[attr-defined]
    row.finished_at = utcnow()
    log.info("%s %s failed: %s: %s", type(row).__name__, row.id, code, detail)


def describe(exc: BaseException) -> str:
    """Return the sentence a row records for ``exc``."""
    return exc.detail if isinstance(exc, GenreflowError) else f"{type(exc).__name__}: {exc}"


def progress_writer(
    session: Session,
    row: Failable,
    *,
    spans: Mapping[str, tuple[float, float]],
    min_interval_s: float,
) -> Progress:
    """Return a ``progress(stage, fraction)`` callback that commits ``row.progress``.

    Parameters
    ----------
    session : Session
        Committed on each write, so pollers see the progress.
    row : job or training run
        Its ``stage`` is set too when it has one.
    spans : mapping of stage to (low, high)
        Where each stage sits on the row's 0..1 progress bar.
    min_interval_s : float >= 0
        Writes of the same stage closer together than this are skipped (except the last,
        ``fraction == 1``). Progress never goes backwards.
    """
    last = {"t": 0.0}
    has_stage = hasattr(row, "stage")

    def write(stage: str, fraction: float) -> None:
        low, high = spans.get(stage, (row.progress, row.progress))
        value = round(low + (high - low) * min(1.0, max(0.0, fraction)), 4)
        now = time.monotonic()
        same_stage = not has_stage or stage == row.stage  # type: ignore[attr-defined]
        too_soon = now - last["t"] < min_interval_s and fraction < 1.0
        if same_stage and (value <= row.progress or too_soon):
            return
        if has_stage:
            row.stage = stage  # type: ignore[attr-defined]
        row.progress = max(row.progress, value)
        session.commit()
        last["t"] = now

    return write
