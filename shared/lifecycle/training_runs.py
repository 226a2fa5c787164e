"""A training run's life: start (API), run with progress, finish or fail (the ``train`` worker).

A run trains on a GTZAN-layout folder (:func:`shared.core.learning.training.train_from_folder`)
with a recipe (:mod:`shared.core.nets.recipe`): the one the request names, else the active model's,
so that retraining makes the same kind of model as the one in service. It scores the new model and
the active one on the *same* held-out test tracks, registers the new model, and activates it
according to ``GENREFLOW_ACTIVATE_POLICY`` (:func:`decide_activation`). The recipe and the
decision, with its reason, are kept in the run's ``metrics``. The Redis training lock is in
:mod:`shared.lifecycle.training_lock`; the scheduled retrain in :mod:`shared.lifecycle.retrain`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.core.nets.recipe import RECIPE_KEY, Recipe
from shared.errors import (
    GenreflowError,
    InvalidRecipe,
    QueueUnavailable,
    TrainingBusy,
    TrainingDataMissing,
    TrainingNotConfigured,
    TransientError,
)
from shared.lifecycle.activation import (
    decide_activation,
    headline_metrics,
    score_active_model,
    score_saved_model,
)
from shared.lifecycle.base import describe, mark_failed, progress_writer
from shared.lifecycle.labels import training_labels
from shared.lifecycle.queues import QUEUE_TRAIN, TASK_TRAIN_MODEL
from shared.lifecycle.run_recipes import RECIPE_SOURCE_KEY, kept_recipe, recipe_record
from shared.store.columns import utcnow
from shared.store.orm import RUN_FINAL_STATUSES, RunStatus, RunTrigger, TrainingRun
from shared.store.registry import activate_version, active_model, register_model

if TYPE_CHECKING:
    from shared.lifecycle.jobs import TaskSender
    from shared.store.config import Settings

log = logging.getLogger(__name__)

#: Where each stage of ``train_from_folder`` sits on the run's 0..1 progress bar.
_STAGE_SPANS: Final = {
    "features": (0.0, 0.3),
    "training": (0.3, 0.85),
    "evaluating": (0.85, 0.9),
    "comparing": (0.9, 1.0),
}

_PROGRESS_INTERVAL_S: Final = 0.5


def start_training_run(
    session: Session, settings: Settings, *, queue: TaskSender, recipe: Recipe | None = None
) -> TrainingRun:
    """Create an API training run on ``GENREFLOW_TRAIN_DATA_DIR``, commit it, then send it.

    Parameters
    ----------
    session : Session
        Committed here (before the message is sent).
    settings : Settings
        ``train_data_dir``.
    queue : TaskSender
    recipe : Recipe, optional
        The recipe the request names; by default the active model's (:func:`choose_recipe`).
        Kept in the run's ``metrics`` (``recipe``, ``recipe_source``).

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
        metrics=recipe_record(session, recipe),
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


def run_training(session: Session, run_id: str, settings: Settings) -> str | None:
    """Train with the run's recipe, score, register, compare and maybe activate, for ``run_id``.

    The recipe is the one kept on the run when it was created (:func:`recipe_record`), with its
    ``epochs`` capped at ``GENREFLOW_TRAIN_EPOCHS``. The new model, as saved, and the active
    model are scored on the same held-out test tracks; :func:`decide_activation` decides, and
    ``metrics["comparison"]`` keeps both scores, the decision and its reason.

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

    try:
        recipe, source = kept_recipe(session, run)
    except InvalidRecipe as exc:
        mark_failed(run, code=exc.code, detail=exc.detail)
        return run.status
    run.data_dir = data_dir
    run.metrics = {RECIPE_KEY: recipe.to_dict(), RECIPE_SOURCE_KEY: source}
    run.status = RunStatus.RUNNING.value
    run.started_at = run.heartbeat_at = utcnow()
    run.stage, run.progress = "features", 0.0
    session.commit()
    progress = progress_writer(
        session, run, spans=_STAGE_SPANS, min_interval_s=_PROGRESS_INTERVAL_S
    )
    try:
        from shared.core.learning.training import TrainOptions, recipe_features, train_from_folder

        options = TrainOptions.from_recipe(
            recipe,
            epochs=min(recipe.epochs, settings.train_epochs),
            cache_dir=str(settings.cache_dir),
            progress_bar=False,
        )
        labels = training_labels(session, data_dir)  # users' approved labels join training
        report = train_from_folder(
            data_dir,
            settings.model_dir,
            options=options,
            feature_config=recipe_features(recipe),
            progress=progress,
            recipe=recipe,
            extra_tracks=labels.tracks,
        )
        run.data_fingerprint = report.data_fingerprint
        progress("comparing", 0.0)
        # The candidate is scored as it was saved, by the same code and on the same tracks as
        # the active model; a saved model that cannot score them fails the run here.
        candidate = score_saved_model(report.model_path, data_dir, report.test_tracks, settings)
        progress("comparing", 0.5)
        active = active_model(session)
        comparison = score_active_model(active, report, data_dir, settings)
        row = register_model(session, report.model_path, training_run_id=run.id)
        run.model_version = row.version
        activate, reason = decide_activation(
            settings.activate_policy,
            candidate,
            comparison.get("metrics"),
            compare_error=comparison.get("error"),
            genres=row.genres,
            active_genres=comparison.get("genres"),
        )
        if activate:
            activate_version(session, row.version)
        run.activated = activate
        run.metrics = {
            **report.metrics,
            "epochs_run": report.epochs_run,
            "timings": report.timings,
            RECIPE_KEY: recipe.to_dict(),
            RECIPE_SOURCE_KEY: source,
            "sources": report.sources,
            "labels": labels.summary(),
            "comparison": {
                "test_tracks": len(report.test_tracks),
                "candidate_metrics": headline_metrics(candidate),
                "active_version": comparison.get("version"),
                "active_genres": comparison.get("genres"),
                "active_metrics": headline_metrics(comparison.get("metrics")),
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
    log.info(
        "training run %s done: model %s (recipe %s), activated=%s: %s",
        run_id,
        run.model_version,
        recipe.name,
        activate,
        reason,
    )
    return run.status


def abandon_run(session: Session, run_id: str, exc: BaseException) -> None:
    """Fail a training run whose task gave up (the last try raised ``exc``)."""
    run = session.get(TrainingRun, run_id)
    if run is None or run.status in RUN_FINAL_STATUSES:
        return
    mark_failed(run, code="training_failed", detail=describe(exc))
