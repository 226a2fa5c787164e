"""Thin Celery tasks: one session, one call into ``shared/lifecycle``, then enqueue what follows.

What follows (a webhook delivery) is enqueued only after the task's commit. Each task's session
is wrapped once in :func:`~shared.lifecycle.base.transient_db_errors`, so database trouble
becomes a retry.

Nothing here loads a model or imports TensorFlow at import time: each predict pool process
loads the active model as it starts (:mod:`worker.warmup`, hooked to Celery's
``worker_process_init`` at the end of this module), and a task asks
:func:`worker.model_cache.get_active_model` for it.
"""

from __future__ import annotations

import functools
import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from celery import Task, shared_task

from shared.errors import StorageFull, TrainingBusy, TransientError
from shared.lifecycle.base import transient_db_errors
from shared.lifecycle.classification import (
    abandon_job,
    requeue_after_storage_full,
    run_classification,
)
from shared.lifecycle.heartbeats import JOB_STALE_S, WorkInProgress, heartbeat
from shared.lifecycle.job_shape import job_fields
from shared.lifecycle.outbox import claim_delivery, settle_delivery
from shared.lifecycle.queues import (
    TASK_CLASSIFY_SONG,
    TASK_DELIVER_WEBHOOK,
    TASK_RETRAIN_IF_CHANGED,
    TASK_SYNC_MODELS,
    TASK_TRAIN_MODEL,
)
from shared.lifecycle.retrain import retrain_if_changed as retrain_if_changed_
from shared.lifecycle.training_lock import training_lock
from shared.lifecycle.training_runs import abandon_run, run_training
from shared.lifecycle.webhook_targets import pin_webhook_target
from shared.lifecycle.webhooks import deliver_job_event
from shared.store.config import Settings
from shared.store.db import session_scope
from shared.store.orm import Job, TrainingRun
from shared.store.registry import sync_model_dir
from worker import retention_timer, warmup
from worker.model_cache import get_active_model

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

TASK_OPTIONS: Final[dict[str, Any]] = {
    "bind": True,
    "acks_late": True,
    "autoretry_for": (TransientError,),
    "retry_backoff": True,
    "max_retries": 5,
    "ignore_result": True,
}
#: How long a training waits before trying again while another one holds the lock.
TRAINING_BUSY_RETRY_S: Final = 60.0
#: How long a job waits before trying again when the disk (or the database) was full.
STORAGE_FULL_RETRY_S: Final = 60.0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return this process's settings, read from the environment once."""
    return Settings.from_env()


@lru_cache(maxsize=1)
def get_redis() -> Redis:
    """Return this process's client of the broker's Redis (for the training lock)."""
    from redis import Redis

    return Redis.from_url(get_settings().redis_url, socket_connect_timeout=5, socket_timeout=10)


def enqueue_webhook(job_id: str, event_type: str) -> None:
    """Queue the webhook delivery of a job event (call after the job's commit)."""
    deliver_webhook.apply_async(args=[job_id, event_type])


class ClassifyTask(Task):
    """Fails the job when its task gives up, so no job stays ``processing`` forever."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Mark the job failed and announce it."""
        job_id = args[0] if args else kwargs.get("job_id")
        with session_scope(get_settings().database_url) as session:
            event = abandon_job(session, job_id, exc)
        if event:
            enqueue_webhook(job_id, event)


class TrainTask(Task):
    """Fails the training run when its task gives up."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Mark the run failed."""
        run_id = args[0] if args else kwargs.get("run_id")
        with session_scope(get_settings().database_url) as session:
            abandon_run(session, run_id, exc)


@shared_task(name=TASK_CLASSIFY_SONG, base=ClassifyTask, **TASK_OPTIONS)
def classify_song(self: Task, job_id: str) -> None:
    """Classify the uploaded song of job ``job_id``; then queue its webhook, if any."""
    settings = get_settings()
    try:
        with (
            heartbeat(settings.database_url, Job, job_id),
            transient_db_errors(f"classifying job {job_id}"),
            session_scope(settings.database_url) as session,
        ):
            event = run_classification(
                session, job_id, lambda s: get_active_model(s, settings), settings
            )
    except WorkInProgress:
        # Another task beats on this job. Look again once its heartbeat would be stale, so a
        # redelivery after a killed pool process resumes the job as soon as it is orphaned.
        raise self.retry(countdown=JOB_STALE_S + 1, max_retries=None) from None
    except StorageFull as exc:
        # Not the song's fault and not lost: the job is tried again until space comes back.
        log.warning("job %s: %s; trying again in %.0f s", job_id, exc.detail, STORAGE_FULL_RETRY_S)
        try:
            with session_scope(settings.database_url) as session:
                requeue_after_storage_full(session, job_id)
        except Exception as again:  # still full: the retry finds the job as it is
            log.warning("job %s: could not mark it queued again: %s", job_id, again)
        raise self.retry(countdown=STORAGE_FULL_RETRY_S, max_retries=None) from None
    if event:
        enqueue_webhook(job_id, event)


@shared_task(name=TASK_DELIVER_WEBHOOK, **TASK_OPTIONS)
def deliver_webhook(self: Task, job_id: str, event_type: str) -> None:
    """Make the next delivery attempt of a job event; schedule another while it fails."""
    settings = get_settings()
    with (
        transient_db_errors(f"delivering the webhook of job {job_id}"),
        session_scope(settings.database_url) as session,
    ):
        if not claim_delivery(session, job_id, event_type):
            log.info("webhook %s of job %s: not due or taken; nothing to do", event_type, job_id)
            return
        session.commit()  # the claim is visible before the (slow) request
        outcome = deliver_job_event(
            session,
            job_id,
            event_type,
            render_job=job_fields,
            secret=settings.webhook_secret,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff_s,
            pin_target=functools.partial(
                pin_webhook_target, allow_private=settings.webhook_allow_private
            ),
        )
        retry_here = settle_delivery(
            session, job_id, event_type, status=outcome.status, retry_in=outcome.retry_in
        )
    if outcome.status == "retry" and retry_here:
        # The attempt count lives in the delivery rows, not in Celery's retry counter. Longer
        # waits are left to the outbox sweep (worker/sweeper.py).
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    if outcome.status == "refused":
        log.warning("webhook %s of job %s: refused, the URL points inward", event_type, job_id)
    if outcome.status == "gave_up":
        log.warning(
            "webhook %s of job %s: gave up after %d attempts", event_type, job_id, outcome.attempt
        )


@shared_task(name=TASK_TRAIN_MODEL, base=TrainTask, **TASK_OPTIONS)
def train_model(self: Task, run_id: str) -> None:
    """Run training run ``run_id``, waiting while another training holds the lock."""
    settings = get_settings()
    try:
        with (
            training_lock(get_redis()),
            heartbeat(settings.database_url, TrainingRun, run_id),
            transient_db_errors(f"training run {run_id}"),
            session_scope(settings.database_url) as session,
        ):
            run_training(session, run_id, settings)
    except TrainingBusy:
        raise self.retry(countdown=TRAINING_BUSY_RETRY_S, max_retries=None) from None


@shared_task(name=TASK_RETRAIN_IF_CHANGED, **TASK_OPTIONS)
def retrain_if_changed(self: Task) -> None:
    """Retrain on ``GENREFLOW_TRAIN_DATA_DIR`` if it changed since the active model (beat)."""
    settings = get_settings()
    with transient_db_errors("checking for a scheduled retrain"):
        retrain_if_changed_(lambda: session_scope(settings.database_url), settings, get_redis())


@shared_task(name=TASK_SYNC_MODELS, **TASK_OPTIONS)
def sync_models(self: Task) -> None:
    """Register model files that appeared in the model dir (beat, every few seconds)."""
    sync_registry(get_settings())


def sync_registry(settings: Settings) -> None:
    """Run :func:`~shared.store.registry.sync_model_dir` in its own session and log changes."""
    with (
        transient_db_errors("syncing the model registry"),
        session_scope(settings.database_url) as session,
    ):
        result = sync_model_dir(session, settings)
    for version in result.added:
        log.info("registered model %s", version)
    if result.activated:
        log.info("active model %s", result.activated)


warmup.connect_signals(get_settings, get_redis)
retention_timer.connect_signals(get_settings, get_redis)
