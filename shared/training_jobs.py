"""Training runs of the service, behind ``genreflow.train_model`` and ``retrain_if_changed``.

A run trains on a GTZAN-layout folder (:func:`shared.training.train_from_folder`), registers the
new model, evaluates the active model on the *same* held-out test tracks, and activates the new
one according to ``GENREFLOW_ACTIVATE_POLICY``. Both tasks hold one Redis lock, so two trainings
never overlap even with several ``train`` workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.errors import GenreflowError, TransientError
from shared.jobs import is_transient_db_error
from shared.models import RunStatus, RunTrigger, TrainingRun, utcnow
from shared.registry import activate_version, active_model, register_model

if TYPE_CHECKING:
    from redis import Redis

    from shared.config import Settings

log = logging.getLogger(__name__)

TRAINING_LOCK_NAME: Final = "genreflow:training-lock"
#: The lock expires this long after its holder stops renewing it (a killed training worker),
#: so a crash blocks other trainings for minutes, not hours. Renewed every third of it.
TRAINING_LOCK_TTL_S: Final = 600.0
COMPARE_METRIC: Final = "track_accuracy_vote"
_FINAL_STATUSES: Final = frozenset(
    {RunStatus.DONE.value, RunStatus.FAILED.value, RunStatus.SKIPPED.value}
)
#: Where each stage of ``train_from_folder`` sits on the run's 0..1 progress bar.
_STAGE_SPANS: Final = {
    "features": (0.0, 0.3),
    "training": (0.3, 0.9),
    "evaluating": (0.9, 0.95),
    "comparing": (0.95, 1.0),
}


class TrainingBusy(Exception):
    """Another training holds the training lock."""


@contextmanager
def training_lock(redis: Redis, *, ttl_s: float = TRAINING_LOCK_TTL_S) -> Iterator[None]:
    """Hold the cluster-wide training lock for the duration of the block.

    A daemon thread renews the lock every ``ttl_s / 3`` seconds while the block runs.

    Parameters
    ----------
    redis : redis.Redis
        The broker's Redis.
    ttl_s : float > 0
        The lock expires this long after the last renewal (when its holder died).

    Raises
    ------
    TrainingBusy
        At once, when another training holds the lock.
    TransientError
        When Redis cannot be reached.
    """
    from redis.exceptions import LockError, RedisError

    # thread_local=False: the renewer thread must see the token the task thread acquired with.
    lock = redis.lock(TRAINING_LOCK_NAME, timeout=ttl_s, blocking=False, thread_local=False)
    try:
        acquired = lock.acquire(blocking=False)
    except RedisError as exc:
        raise TransientError(f"Redis unavailable for the training lock: {exc}") from exc
    if not acquired:
        raise TrainingBusy("another training is running")
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                lock.reacquire()
            except (LockError, RedisError) as exc:  # keep trying: Redis may come back
                log.warning("could not renew the training lock: %s", exc)

    renewer = threading.Thread(target=renew, name="training-lock-renewer", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        try:
            lock.release()
        except (LockError, RedisError) as exc:  # expired or Redis gone: nothing left to free
            log.warning("could not release the training lock: %s", exc)


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
    TransientError
        When the database fails in a way worth retrying.
    """
    try:
        return _train(session, run_id, settings)
    except DBAPIError as exc:
        if not is_transient_db_error(exc):
            raise
        session.rollback()
        raise TransientError(f"Database unavailable during training run {run_id}: {exc}") from exc


def _train(session: Session, run_id: str, settings: Settings) -> str | None:
    run = session.get(TrainingRun, run_id)
    if run is None:
        log.warning("training run %s does not exist; nothing to do", run_id)
        return None
    if run.status in _FINAL_STATUSES:
        return run.status
    if run.status == RunStatus.RUNNING:
        _fail_run(run, "interrupted", "The training worker stopped during this run.")
        return run.status
    data_dir = run.data_dir or (str(settings.train_data_dir) if settings.train_data_dir else None)
    if not data_dir:
        _fail_run(run, "no_training_data", "GENREFLOW_TRAIN_DATA_DIR is not set.")
        return run.status

    run.data_dir = data_dir
    run.status = RunStatus.RUNNING.value
    run.started_at = utcnow()
    run.stage, run.progress = "features", 0.0
    session.commit()
    progress = _progress_writer(session, run)
    try:
        from shared.training import TrainOptions, train_from_folder

        options = TrainOptions(
            epochs=settings.train_epochs, cache_dir=str(settings.cache_dir), progress_bar=False
        )
        report = train_from_folder(data_dir, settings.model_dir, options=options, progress=progress)
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
        if activate:
            activate_version(session, row.version)
        run.activated = activate
        run.metrics = {
            **report.metrics,
            "epochs_run": report.epochs_run,
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
        _fail_run(session.get(TrainingRun, run_id) or run, exc.code, exc.detail)
        return RunStatus.FAILED.value
    except Exception as exc:  # a run must end; the traceback goes to the log
        log.exception("training run %s failed unexpectedly", run_id)
        session.rollback()
        _fail_run(
            session.get(TrainingRun, run_id) or run,
            "training_failed",
            f"{type(exc).__name__}: {exc}",
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
    from shared.model import load_genre_model
    from shared.training import evaluate_on_tracks

    try:
        model = load_genre_model(active.path, warm_up=False)
        metrics = evaluate_on_tracks(
            model, data_dir, report.test_tracks, cache_dir=settings.cache_dir
        )
    except Exception as exc:  # any failure means "cannot compare", recorded on the run
        log.warning("could not evaluate active model %s: %s", active.version, exc)
        detail = exc.detail if isinstance(exc, GenreflowError) else f"{type(exc).__name__}: {exc}"
        return {"version": active.version, "error": detail}
    return {"version": active.version, "metrics": metrics}


def _summary(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return None
    keys = ("segment_accuracy", "track_accuracy_vote", "track_accuracy_mean", "n_test_tracks")
    return {key: metrics[key] for key in keys if key in metrics}


def _progress_writer(session: Session, run: TrainingRun) -> Callable[[str, float], None]:
    """Return a ``progress(stage, fraction)`` callback committing at most every half second."""
    last = {"t": 0.0}

    def write(stage: str, fraction: float) -> None:
        low, high = _STAGE_SPANS.get(stage, (run.progress, run.progress))
        value = round(low + (high - low) * min(1.0, max(0.0, fraction)), 4)
        now = time.monotonic()
        if stage == run.stage and (value <= run.progress or now - last["t"] < 0.5):
            return
        run.stage, run.progress = stage, max(run.progress, value)
        session.commit()
        last["t"] = now

    return write


def _fail_run(run: TrainingRun, code: str, detail: str) -> None:
    run.status = RunStatus.FAILED.value
    run.error_code, run.error_detail = code, detail
    run.finished_at = utcnow()
    log.info("training run %s failed: %s: %s", run.id, code, detail)


def fail_run_after_retries(session: Session, run_id: str, exc: BaseException) -> None:
    """Fail a training run whose task gave up (the last try raised ``exc``)."""
    run = session.get(TrainingRun, run_id)
    if run is None or run.status in _FINAL_STATUSES:
        return
    detail = exc.detail if isinstance(exc, GenreflowError) else f"{type(exc).__name__}: {exc}"
    _fail_run(run, "training_failed", detail)


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
        _fail_run(run, "interrupted", "The training worker stopped during this run.")
    return len(stale)


def plan_scheduled_run(session: Session, settings: Settings) -> TrainingRun:
    """Create the run of a scheduled retrain: ``queued`` if the data changed, else ``skipped``.

    The run is skipped (with the reason in ``error_detail``) when no training folder is
    configured, or when :func:`shared.dataset.dataset_fingerprint` of the folder equals the
    active model's ``data_fingerprint``.

    Returns
    -------
    TrainingRun
        Flushed, not committed.
    """
    from shared.dataset import dataset_fingerprint

    run = TrainingRun(trigger=RunTrigger.SCHEDULE.value, status=RunStatus.QUEUED.value)
    session.add(run)
    if settings.train_data_dir is None:
        return _skip(session, run, "no_training_data", "GENREFLOW_TRAIN_DATA_DIR is not set.")
    run.data_dir = str(settings.train_data_dir)
    try:
        run.data_fingerprint = dataset_fingerprint(settings.train_data_dir)
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
