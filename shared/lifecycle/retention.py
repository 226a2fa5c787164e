"""The retention sweep: let go of audio and results that have passed their time.

- Audio: a job's audio expires ``GENREFLOW_AUDIO_RETENTION_DAYS`` after the job was created
  (``jobs.audio_expired_at`` is set; the result stays). The file goes once no job holds it.
- Results: with ``GENREFLOW_RESULT_RETENTION_DAYS`` set, a job that ended longer ago than that is
  deleted with its result, deliveries and outbox rows (default: kept forever).
- A job whose label is pending or approved is training data: neither expires until the label is
  rejected or removed. Jobs still queued or processing never expire.
- Files in the upload folder that no job holds (left by a crash between a deletion's commit and
  its unlink, or a half-written upload) go once they are :data:`ORPHAN_GRACE_S` old.

Each sweep is recorded as a :class:`~shared.store.orm.RetentionSweep` row (``/metrics`` sums
them); rows older than :data:`SWEEP_RECORDS_KEPT` are folded into one, totals kept, so the table
does not grow with every sweep. The sweep needs no scheduler: the workers run it on a timer
(:mod:`worker.retention_timer`) and ``genreflow jobs expire`` runs it at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from shared.lifecycle.deletion import release_audio
from shared.store.columns import utcnow
from shared.store.config import SHARE_MARKER
from shared.store.orm import JOB_FINAL_STATUSES, Job, JobLabel, LabelStatus, RetentionSweep

if TYPE_CHECKING:
    from shared.store.config import Settings

log = logging.getLogger(__name__)

#: How often the workers run the sweep.
RETENTION_INTERVAL_S: Final = 3600.0
#: A file in the upload folder that no job holds is removed once it is this old.
ORPHAN_GRACE_S: Final = 3600.0
#: Sweep records older than this are folded into one row that carries their totals.
SWEEP_RECORDS_KEPT: Final = timedelta(days=1)
#: Labels that keep a job's audio and result (training data, or waiting to become it).
KEEPING_LABELS: Final = (LabelStatus.PENDING.value, LabelStatus.APPROVED.value)


def _labelled() -> object:
    return exists(
        select(JobLabel.id).where(JobLabel.job_id == Job.id, JobLabel.status.in_(KEEPING_LABELS))
    )


def sweep_expired(
    session: Session, settings: Settings, *, now: datetime | None = None
) -> RetentionSweep:
    """Expire audio and results past their retention, remove the files, record the sweep.

    Parameters
    ----------
    session : Session
        Committed here (before any file is removed).
    settings : Settings
        ``audio_retention_days``, ``result_retention_days`` and ``upload_dir``.
    now : datetime, optional
        The sweep's clock (tests move it forward).

    Returns
    -------
    RetentionSweep
        The recorded sweep, committed.
    """
    now = now or utcnow()
    sweep = RetentionSweep(
        started_at=now, n_audio_expired=0, n_files_removed=0, n_results_expired=0, bytes_freed=0
    )
    released: dict[str, datetime] = {}  # file -> the newest creation time of a job it served

    def let_go(job: Job) -> None:
        held = released.get(job.upload_path)
        released[job.upload_path] = max(held, job.created_at) if held else job.created_at

    final = Job.status.in_(sorted(JOB_FINAL_STATUSES))
    if settings.result_retention_days is not None:
        cutoff = now - timedelta(days=settings.result_retention_days)
        for job in session.scalars(
            select(Job).where(final, Job.finished_at < cutoff, ~_labelled())
        ):
            let_go(job)
            session.delete(job)
            sweep.n_results_expired += 1
    audio_cutoff = now - timedelta(days=settings.audio_retention_days)
    for job in session.scalars(
        select(Job).where(
            final, Job.audio_expired_at.is_(None), Job.created_at < audio_cutoff, ~_labelled()
        )
    ):
        let_go(job)
        job.audio_expired_at = now
        sweep.n_audio_expired += 1
    session.add(sweep)
    session.commit()

    for upload_path, held_since in released.items():
        freed = release_audio(session, upload_path, held_since=held_since)
        sweep.n_files_removed += int(freed > 0)
        sweep.bytes_freed += freed
    n_orphans, orphan_bytes = _remove_orphans(session, settings.upload_dir)
    sweep.n_files_removed += n_orphans
    sweep.bytes_freed += orphan_bytes
    _fold_old_sweeps(session, now - SWEEP_RECORDS_KEPT)
    session.commit()
    if sweep.n_audio_expired or sweep.n_results_expired or sweep.n_files_removed:
        log.info(
            "retention: audio of %d job(s) expired, %d job(s) removed, %d file(s) (%d bytes) freed",
            sweep.n_audio_expired,
            sweep.n_results_expired,
            sweep.n_files_removed,
            sweep.bytes_freed,
        )
    return sweep


def _fold_old_sweeps(session: Session, cutoff: datetime) -> None:
    """Fold the sweep records older than ``cutoff`` into the newest of them (sums kept)."""
    old = session.scalars(
        select(RetentionSweep)
        .where(RetentionSweep.started_at < cutoff)
        .order_by(RetentionSweep.started_at, RetentionSweep.id)
    ).all()
    if len(old) < 2:
        return
    keep = old[-1]
    for row in old[:-1]:
        keep.n_audio_expired += row.n_audio_expired
        keep.n_files_removed += row.n_files_removed
        keep.n_results_expired += row.n_results_expired
        keep.bytes_freed += row.bytes_freed
        session.delete(row)


def _remove_orphans(session: Session, upload_dir: Path) -> tuple[int, int]:
    """Remove old files of ``upload_dir`` that no job holds; return their count and bytes."""
    if not upload_dir.is_dir():
        return 0, 0
    held = set(session.scalars(select(Job.upload_path).where(Job.audio_expired_at.is_(None))))
    return _unlink_old(
        (
            p
            for p in upload_dir.iterdir()
            if p.is_file() and str(p) not in held and p.name != SHARE_MARKER
        ),
        older_than=time.time() - ORPHAN_GRACE_S,
    )


def _unlink_old(paths: Iterable[Path], *, older_than: float) -> tuple[int, int]:
    n_files = n_bytes = 0
    for path in paths:
        try:
            stat = path.stat()
            if stat.st_mtime >= older_than:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        n_files += 1
        n_bytes += stat.st_size
        log.info("retention: removed %s, which no job holds (%d bytes)", path.name, stat.st_size)
    return n_files, n_bytes
