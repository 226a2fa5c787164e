"""The scheduled retrain (beat's ``genreflow.retrain_if_changed``): train when the data changed.

A scheduled run is recorded ``skipped`` (with the reason) when no training folder is configured,
when the folder's fingerprint equals the active model's, or when another training holds the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import GenreflowError, TrainingBusy
from shared.lifecycle.base import mark_failed
from shared.lifecycle.labels import training_fingerprint
from shared.lifecycle.run_recipes import recipe_record
from shared.lifecycle.training_lock import training_lock
from shared.lifecycle.training_runs import run_training
from shared.store.columns import utcnow
from shared.store.orm import RunStatus, RunTrigger, TrainingRun
from shared.store.registry import active_model

if TYPE_CHECKING:
    from redis import Redis

    from shared.store.config import Settings

log = logging.getLogger(__name__)


def fail_interrupted_runs(session: Session) -> int:
    """Fail runs left ``running`` by a stopped worker; call only while holding the lock.

    Returns
    -------
    int
        How many runs were failed.
    """
    stale = session.scalars(
        select(TrainingRun).where(TrainingRun.status == RunStatus.RUNNING.value)
    ).all()
    for run in stale:
        mark_failed(run, code="interrupted", detail="The training worker stopped during this run.")
    return len(stale)


def plan_scheduled_run(session: Session, settings: Settings) -> TrainingRun:
    """Create the run of a scheduled retrain: ``queued`` if the data changed, else ``skipped``.

    The run is skipped (with the reason in ``error_detail``) when no training folder is
    configured, or when the fingerprint of what it would train on (the folder and the approved
    labels, :func:`shared.lifecycle.labels.training_fingerprint`) equals the active model's
    ``data_fingerprint``. A queued run keeps the active model's recipe in its ``metrics``
    (:func:`shared.lifecycle.run_recipes.recipe_record`).

    Returns
    -------
    TrainingRun
        Flushed, not committed.
    """
    run = TrainingRun(trigger=RunTrigger.SCHEDULE.value, status=RunStatus.QUEUED.value)
    session.add(run)
    if settings.train_data_dir is None:
        return _skip(session, run, "no_training_data", "GENREFLOW_TRAIN_DATA_DIR is not set.")
    run.data_dir = str(settings.train_data_dir)
    try:
        run.data_fingerprint = training_fingerprint(session, settings.train_data_dir)
    except GenreflowError as exc:
        return _skip(session, run, exc.code, exc.detail)
    active = active_model(session)
    if active is not None and active.data_fingerprint == run.data_fingerprint:
        return _skip(
            session,
            run,
            "data_unchanged",
            f"The training data has not changed since model {active.version} was trained.",
        )
    run.metrics = recipe_record(session)
    session.flush()
    return run


def record_skipped_run(session: Session, code: str, detail: str) -> TrainingRun:
    """Record a scheduled run that did not start (for example: another training was running)."""
    run = TrainingRun(trigger=RunTrigger.SCHEDULE.value, status=RunStatus.QUEUED.value)
    session.add(run)
    return _skip(session, run, code, detail)


def _skip(session: Session, run: TrainingRun, code: str, detail: str) -> TrainingRun:
    now = utcnow()
    run.status = RunStatus.SKIPPED.value
    run.error_code, run.error_detail = code, detail
    run.started_at = run.finished_at = now
    session.flush()
    log.info("scheduled retrain skipped: %s", detail)
    return run


def retrain_if_changed(
    session_factory: Callable[[], Any], settings: Settings, redis: Redis
) -> TrainingRun | None:
    """Retrain on ``GENREFLOW_TRAIN_DATA_DIR`` when it changed since the active model.

    Parameters
    ----------
    session_factory : callable
        Returns a ``session_scope`` context manager; one is used per step.
    settings : Settings
    redis : redis.Redis
        Holds the training lock.

    Returns
    -------
    TrainingRun or None
        The run row (``skipped``, ``done`` or ``failed``), detached.
    """
    try:
        with training_lock(redis):
            with session_factory() as session:
                fail_interrupted_runs(session)
                run = plan_scheduled_run(session, settings)
                run_id, status = run.id, run.status
            if status == RunStatus.SKIPPED:
                return run
            with session_factory() as session:
                run_training(session, run_id, settings)
                return session.get(TrainingRun, run_id)
    except TrainingBusy:
        with session_factory() as session:
            return record_skipped_run(session, "training_busy", "Another training was running.")
