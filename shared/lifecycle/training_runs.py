"""A training run's life: start (API), run with progress, finish or fail (the ``train`` worker).

A run trains on a GTZAN-layout folder (:func:`shared.core.training.train_from_folder`), registers
the new model, evaluates the active model on the *same* held-out test tracks, and activates the
new one according to ``GENREFLOW_ACTIVATE_POLICY``. The Redis training lock is in
:mod:`shared.lifecycle.training_lock`; the scheduled retrain in :mod:`shared.lifecycle.retrain`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.errors import (
    GenreflowError,
    QueueUnavailable,
    TrainingBusy,
    TrainingDataMissing,
    TrainingNotConfigured,
    TransientError,
)
from shared.lifecycle.base import describe, mark_failed, progress_writer
from shared.lifecycle.labels import hold_new_genre_set, training_labels
from shared.lifecycle.queues import QUEUE_TRAIN, TASK_TRAIN_MODEL
from shared.store.orm import RUN_FINAL_STATUSES, RunStatus, RunTrigger, TrainingRun, utcnow
from shared.store.registry import activate_version, active_model, register_model

if TYPE_CHECKING:
    from shared.lifecycle.jobs import TaskSender
    from shared.store.config import Settings

log = logging.getLogger(__name__)

COMPARE_METRIC: Final = "track_accuracy_vote"
#: Where each stage of ``train_from_folder`` sits on the run's 0..1 progress bar.
_STAGE_SPANS: Final = {
    "features": (0.0, 0.3),
    "training": (0.3, 0.9),
    "evaluating": (0.9, 0.95),
    "comparing": (0.95, 1.0),
}

_PROGRESS_INTERVAL_S: Final = 0.5


def start_training_run(session: Session, settings: Settings, *, queue: TaskSender) -> TrainingRun:
    """Create an API training run on ``GENREFLOW_TRAIN_DATA_DIR``, commit it, then send it.

    Parameters
    ----------
    session : Session
        Committed here (before the message is sent).
    settings : Settings
        ``train_data_dir``.
    queue : TaskSender

    Returns
    -------
    TrainingRun
        ``queued``.

    Raises
    ------
    TrainingNotConfigured
        ``GENREFLOW_TRAIN_DATA_DIR`` is not set.
    TrainingDataMissing
        It is not a folder.
    TrainingBusy
        A run is queued or running (``training_run_id`` extra).
    QueueUnavailable
        The broker is down; the run is kept, failed with that code (``training_run_id`` extra).
    """
    data_dir = settings.train_data_dir
    if data_dir is None:
        raise TrainingNotConfigured()
    if not data_dir.is_dir():
        raise TrainingDataMissing(
            f"GENREFLOW_TRAIN_DATA_DIR={data_dir} is not a folder. Create it with one "
            "sub-folder of audio files per genre (or `genreflow demo-data DIR`)."
        )
    busy = session.scalars(
        select(TrainingRun)
        .where(TrainingRun.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]))
        .order_by(TrainingRun.created_at.desc())
    ).first()
    if busy is not None:
        raise TrainingBusy(
            f"Training run {busy.id} is {busy.status}; wait for it to finish.",
            training_run_id=busy.id,
        )
    run = TrainingRun(
        status=RunStatus.QUEUED.value,
        trigger=RunTrigger.API.value,
        data_dir=str(data_dir),
        progress=0.0,
        activated=False,
    )
    session.add(run)
    session.commit()
    try:
        queue.send(TASK_TRAIN_MODEL, [run.id], queue=QUEUE_TRAIN)
    except QueueUnavailable as exc:
        mark_failed(run, code=exc.code, detail=exc.detail)
        session.commit()
        raise QueueUnavailable(exc.detail, training_run_id=run.id) from exc
    return run


def decide_activation(
    policy: str,
    new_metrics: dict[str, Any],
    active_metrics: dict[str, Any] | None,
    *,
    compare_error: str | None = None,
) -> tuple[bool, str]:
    """Decide whether a new model replaces the active one.

    Parameters
    ----------
    policy : {"if_better", "always", "never"}
    new_metrics : dict
        The new model's metrics on its held-out test tracks.
    active_metrics : dict or None
        The active model's metrics on the same tracks; ``None`` when no model is active.
    compare_error : str, optional
        Why the active model could not be evaluated; under ``if_better`` the new model then
        wins (a model that cannot score the current data should not stay in service).

    Returns
    -------
    (bool, str)
        Whether to activate, and why, in words.
    """
    if policy == "never":
        return False, "GENREFLOW_ACTIVATE_POLICY is 'never'"
    if policy == "always":
        return True, "GENREFLOW_ACTIVATE_POLICY is 'always'"
    if policy != "if_better":
        raise ValueError(f"unknown activation policy {policy!r}")
    if compare_error is not None:
        return True, f"the active model could not be evaluated ({compare_error})"
    if active_metrics is None:
        return True, "no model was active"
    new, old = float(new_metrics[COMPARE_METRIC]), float(active_metrics[COMPARE_METRIC])
    if new >= old:
        return True, f"{COMPARE_METRIC} {new:.3f} >= active model's {old:.3f}"
    return False, f"{COMPARE_METRIC} {new:.3f} < active model's {old:.3f}"


def run_training(session: Session, run_id: str, settings: Settings) -> str | None:
    """Train, register, compare and maybe activate, for training run ``run_id``.

    Idempotent: a run already ``done``, ``failed`` or ``skipped`` is left alone. A run found
    ``running`` was interrupted (its worker stopped mid-way and the task was redelivered); it is
    failed rather than restarted, so a training that kills its worker cannot loop.

    Parameters
    ----------
    session : Session
        Progress is committed as it goes; the caller's ``session_scope`` commits the end.
    run_id : str
    settings : Settings
        ``train_data_dir`` (when the run names none), ``model_dir``, ``cache_dir``,
        ``train_epochs`` and ``activate_policy``.

    Returns
    -------
    str or None
        The run's final status, or ``None`` when there is no such run.

    Raises
    ------
    sqlalchemy.exc.DBAPIError
        When the database fails (the task retries the transient ones).
    """
    return _train(session, run_id, settings)


def _train(session: Session, run_id: str, settings: Settings) -> str | None:
    run = session.get(TrainingRun, run_id)
    if run is None:
        log.warning("training run %s does not exist; nothing to do", run_id)
        return None
    if run.status in RUN_FINAL_STATUSES:
        return run.status
    if run.status == RunStatus.RUNNING:
        mark_failed(run, code="interrupted", detail="The training worker stopped during this run.")
        return run.status
    data_dir = run.data_dir or (str(settings.train_data_dir) if settings.train_data_dir else None)
    if not data_dir:
        mark_failed(run, code="no_training_data", detail="GENREFLOW_TRAIN_DATA_DIR is not set.")
        return run.status

    run.data_dir = data_dir
    run.status = RunStatus.RUNNING.value
    run.started_at = run.heartbeat_at = utcnow()
    run.stage, run.progress = "features", 0.0
    session.commit()
    progress = progress_writer(
        session, run, spans=_STAGE_SPANS, min_interval_s=_PROGRESS_INTERVAL_S
    )
    try:
        from shared.core.training import TrainOptions, train_from_folder

        options = TrainOptions(
            epochs=settings.train_epochs, cache_dir=str(settings.cache_dir), progress_bar=False
        )
        labels = training_labels(session, data_dir)  # users' approved labels join training
        report = train_from_folder(
            data_dir,
            settings.model_dir,
            options=options,
            progress=progress,
            extra_tracks=labels.tracks,
        )
        run.data_fingerprint = report.data_fingerprint
        row = register_model(session, report.model_path, training_run_id=run.id)
        run.model_version = row.version
        progress("comparing", 0.0)
        active = active_model(session)
        comparison = _compare_with_active(active, report, data_dir, settings)
        activate, reason = decide_activation(
            settings.activate_policy,
            report.metrics,
            comparison.get("metrics"),
            compare_error=comparison.get("error"),
        )
        activate, reason = hold_new_genre_set(
            activate, reason, new_genres=row.genres, active=active
        )
        if activate:
            activate_version(session, row.version)
        run.activated = activate
        run.metrics = {
            **report.metrics,
            "epochs_run": report.epochs_run,
            "timings": report.timings,
            "sources": report.sources,
            "labels": labels.summary(),
            "comparison": {
                "active_version": comparison.get("version"),
                "active_metrics": _summary(comparison.get("metrics")),
                "error": comparison.get("error"),
                "policy": settings.activate_policy,
                "activated": activate,
                "reason": reason,
            },
        }
    except TransientError:
        raise
    except DBAPIError:
        raise
    except GenreflowError as exc:
        session.rollback()
        mark_failed(session.get(TrainingRun, run_id) or run, code=exc.code, detail=exc.detail)
        return RunStatus.FAILED.value
    except Exception as exc:  # a run must end; the traceback goes to the log
        log.exception("training run %s failed unexpectedly", run_id)
        session.rollback()
        mark_failed(
            session.get(TrainingRun, run_id) or run, code="training_failed", detail=describe(exc)
        )
        return RunStatus.FAILED.value

    run.status = RunStatus.DONE.value
    run.stage, run.progress = "done", 1.0
    run.finished_at = utcnow()
    session.flush()
    log.info("training run %s done: model %s, activated=%s", run_id, run.model_version, activate)
    return run.status


def _compare_with_active(
    active: Any, report: Any, data_dir: str, settings: Settings
) -> dict[str, Any]:
    """Evaluate the active model (if another one) on the new model's test tracks."""
    if active is None or active.version == report.version:
        return {}
    from shared.core.model import load_genre_model
    from shared.core.training import evaluate_on_tracks

    try:
        model = load_genre_model(active.path, warm_up=False)
        metrics = evaluate_on_tracks(
            model, data_dir, report.test_tracks, cache_dir=settings.cache_dir
        )
    except Exception as exc:  # any failure means "cannot compare", recorded on the run
        log.warning("could not evaluate active model %s: %s", active.version, exc)
        return {"version": active.version, "error": describe(exc)}
    return {"version": active.version, "metrics": metrics}


def _summary(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return None
    keys = ("segment_accuracy", "track_accuracy_vote", "track_accuracy_mean", "n_test_tracks")
    return {key: metrics[key] for key in keys if key in metrics}


def abandon_run(session: Session, run_id: str, exc: BaseException) -> None:
    """Fail a training run whose task gave up (the last try raised ``exc``)."""
    run = session.get(TrainingRun, run_id)
    if run is None or run.status in RUN_FINAL_STATUSES:
        return
    mark_failed(run, code="training_failed", detail=describe(exc))
