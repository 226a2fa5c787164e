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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.core.nets.recipe import RECIPE_KEY, RECIPES, Recipe, recipe_from_sidecar
from shared.core.nets.sidecar import read_sidecar
from shared.errors import (
    GenreflowError,
    InvalidRecipe,
    ModelError,
    QueueUnavailable,
    TrainingBusy,
    TrainingDataMissing,
    TrainingNotConfigured,
    TransientError,
)
from shared.lifecycle.base import describe, mark_failed, progress_writer
from shared.lifecycle.labels import training_labels
from shared.lifecycle.queues import QUEUE_TRAIN, TASK_TRAIN_MODEL
from shared.store.orm import RUN_FINAL_STATUSES, RunStatus, RunTrigger, TrainingRun, utcnow
from shared.store.registry import DEFAULT_MODEL_DIR, activate_version, active_model, register_model

if TYPE_CHECKING:
    from shared.lifecycle.jobs import TaskSender
    from shared.store.config import Settings

log = logging.getLogger(__name__)

COMPARE_METRIC: Final = "track_accuracy_vote"
#: The run's ``metrics`` member naming where its recipe came from.
RECIPE_SOURCE_KEY: Final = "recipe_source"
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


def choose_recipe(session: Session, requested: Recipe | None = None) -> tuple[Recipe, str]:
    """Return the recipe of a service training run, and where it came from, in words.

    The requested recipe wins; else the active model's (from its sidecar); else, when no model
    is active or its sidecar cannot be read, the shipped model's; else the seed recipe.
    """
    if requested is not None:
        return requested, "request"
    active = active_model(session)
    if active is not None:
        try:
            return recipe_from_sidecar(read_sidecar(active.path)), f"active model {active.version}"
        except (ModelError, InvalidRecipe) as exc:
            log.warning("no recipe in active model %s (%s)", active.version, exc.detail)
    for path in sorted(DEFAULT_MODEL_DIR.glob("*.keras")):
        try:
            return recipe_from_sidecar(read_sidecar(path)), f"shipped model {path.stem}"
        except (ModelError, InvalidRecipe) as exc:
            log.warning("no recipe in shipped model %s (%s)", path.stem, exc.detail)
    return RECIPES["seed"], "seed recipe (no model to copy)"


def recipe_record(session: Session, requested: Recipe | None = None) -> dict[str, Any]:
    """Return a new run's ``metrics``: its recipe and where it came from (:func:`choose_recipe`)."""
    recipe, source = choose_recipe(session, requested)
    return {RECIPE_KEY: recipe.to_dict(), RECIPE_SOURCE_KEY: source}


def decide_activation(
    policy: str,
    new_metrics: dict[str, Any],
    active_metrics: dict[str, Any] | None,
    *,
    compare_error: str | None = None,
    genres: Sequence[str] | None = None,
    active_genres: Sequence[str] | None = None,
) -> tuple[bool, str]:
    """Decide whether a new model replaces the active one.

    Parameters
    ----------
    policy : {"if_better", "always", "never"}
    new_metrics : dict
        The new model's metrics on the run's held-out test tracks.
    active_metrics : dict or None
        The active model's metrics on the same tracks; ``None`` when no model is active.
    compare_error : str, optional
        Why the active model could not be evaluated; under ``if_better`` the new model then
        wins (a model that cannot score the current data should not stay in service).
    genres, active_genres : sequence of str, optional
        The genres of the new and of the active model. A new model whose set of genres differs
        is never activated automatically, whatever the policy: it answers another question, so
        a score on the same tracks does not say it is the better one (a user's label may have
        brought a new genre). An admin activates it by hand if it should be.

    Returns
    -------
    (bool, str)
        Whether to activate, and why, in words.
    """
    new_set, active_set = set(genres or ()), set(active_genres or ())
    differ = genres is not None and active_genres is not None and new_set != active_set
    if policy == "never":
        return False, "GENREFLOW_ACTIVATE_POLICY is 'never'"
    if policy not in {"always", "if_better"}:
        raise ValueError(f"unknown activation policy {policy!r}")
    if differ:
        changes = [
            f"{label} {', '.join(sorted(names))}"
            for label, names in (("adds", new_set - active_set), ("lacks", active_set - new_set))
            if names
        ]
        return False, (
            f"its genres differ from the active model's (it {' and '.join(changes)}); a model "
            "of other genres is never activated automatically: an admin activates it by hand"
        )
    if policy == "always":
        return True, "GENREFLOW_ACTIVATE_POLICY is 'always'"
    if compare_error is not None:
        return True, f"the active model could not be evaluated ({compare_error})"
    if active_metrics is None:
        return True, "no model was active"
    new, old = float(new_metrics[COMPARE_METRIC]), float(active_metrics[COMPARE_METRIC])
    if new >= old:
        return True, f"{COMPARE_METRIC} {new:.3f} >= active model's {old:.3f}"
    return False, f"{COMPARE_METRIC} {new:.3f} < active model's {old:.3f}"


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
        recipe, source = _run_recipe(session, run)
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
        candidate = _score_model(report.model_path, data_dir, report.test_tracks, settings)
        progress("comparing", 0.5)
        active = active_model(session)
        comparison = _compare_with_active(active, report, data_dir, settings)
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
                "candidate_metrics": _summary(candidate),
                "active_version": comparison.get("version"),
                "active_genres": comparison.get("genres"),
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
    log.info(
        "training run %s done: model %s (recipe %s), activated=%s: %s",
        run_id,
        run.model_version,
        recipe.name,
        activate,
        reason,
    )
    return run.status


def _run_recipe(session: Session, run: TrainingRun) -> tuple[Recipe, str]:
    """Return the recipe kept on the run when it was created, else (older runs) choose one."""
    kept = (run.metrics or {}).get(RECIPE_KEY)
    if kept is None:
        return choose_recipe(session)
    return Recipe.from_dict(kept), str((run.metrics or {}).get(RECIPE_SOURCE_KEY) or "request")


def _score_model(
    model_path: str | Path, data_dir: str, tracks: Sequence[str], settings: Settings
) -> dict[str, Any]:
    """Load a saved model and score it on ``tracks`` of ``data_dir`` (by its own features)."""
    from shared.core.learning.held_out import evaluate_on_tracks
    from shared.core.nets.model import load_genre_model

    model = load_genre_model(model_path, warm_up=False)
    return evaluate_on_tracks(model, data_dir, tracks, cache_dir=settings.cache_dir)


def _compare_with_active(
    active: Any, report: Any, data_dir: str, settings: Settings
) -> dict[str, Any]:
    """Score the active model (if another one) on the new model's test tracks.

    A track of a genre the active model does not know counts as wrong for it.
    """
    if active is None or active.version == report.version:
        return {}
    found: dict[str, Any] = {"version": active.version, "genres": list(active.genres)}
    try:
        metrics = _score_model(active.path, data_dir, report.test_tracks, settings)
    except Exception as exc:  # any failure means "cannot compare", recorded on the run
        log.warning("could not evaluate active model %s: %s", active.version, exc)
        return {**found, "error": describe(exc)}
    return {**found, "metrics": metrics}


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
