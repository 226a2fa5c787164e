"""Task names, queues, routes and the Celery configuration: the contract between web and worker.

It lives with the lifecycles because they say which task comes next. The web process never
imports ``worker/``; it builds a sending-only Celery client from :func:`celery_config` so that
``send_task("genreflow.classify_song", ...)`` lands on the same queue the predict worker
consumes. Building the dictionary opens no connection.
"""

from __future__ import annotations

from typing import Any, Final

from celery.schedules import crontab
from kombu import Exchange, Queue

#: Seconds a new pool process may take to load its model before Celery gives up on it.
PROCESS_START_TIMEOUT_S: Final = 60.0
QUEUE_PREDICT: Final = "predict"
QUEUE_TRAIN: Final = "train"
QUEUE_WEBHOOKS: Final = "webhooks"
QUEUES: Final = (QUEUE_PREDICT, QUEUE_TRAIN, QUEUE_WEBHOOKS)

TASK_CLASSIFY_SONG: Final = "genreflow.classify_song"
TASK_TRAIN_MODEL: Final = "genreflow.train_model"
TASK_RETRAIN_IF_CHANGED: Final = "genreflow.retrain_if_changed"
TASK_DELIVER_WEBHOOK: Final = "genreflow.deliver_webhook"
TASK_SYNC_MODELS: Final = "genreflow.sync_models"

TASK_ROUTES: Final[dict[str, dict[str, str]]] = {
    TASK_CLASSIFY_SONG: {"queue": QUEUE_PREDICT},
    TASK_TRAIN_MODEL: {"queue": QUEUE_TRAIN},
    TASK_RETRAIN_IF_CHANGED: {"queue": QUEUE_TRAIN},
    TASK_DELIVER_WEBHOOK: {"queue": QUEUE_WEBHOOKS},
    TASK_SYNC_MODELS: {"queue": QUEUE_PREDICT},
}

#: How often beat asks the registry to register model files that appeared in the model dir.
SYNC_MODELS_INTERVAL_S: Final = 30.0
#: Redis redelivers a task that a worker took and did not ack within this many seconds (its
#: worker died). Sized per queue to its longest task: a prediction takes seconds (a 30-minute
#: song about a minute), a training run minutes. A task still running past it is harmless: the
#: redelivered copy finds the job's heartbeat fresh (or the training lock held) and waits.
VISIBILITY_TIMEOUT_S: Final[dict[str, int]] = {
    QUEUE_PREDICT: 120,
    QUEUE_WEBHOOKS: 120,
    QUEUE_TRAIN: 30 * 60,
}
#: How often the workers' sweeper runs the recovery sweep, cluster-wide
#: (:func:`shared.lifecycle.recovery.sweep_lost_work`; each worker tries three times as often).
RECOVERY_INTERVAL_S: Final = 15.0


def worker_transport_options(queues: str | list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """Return the Redis transport options of a worker consuming ``queues``.

    The visibility timeout is the longest of those queues'. Each set of queues keeps its unacked
    messages under its own keys: Redis restores a message after the timeout of the worker that
    looks, so a predict worker must never see (and restore) a training run's message.

    Parameters
    ----------
    queues : str or sequence of str or None
        ``"predict,webhooks"`` (as given to ``celery worker -Q``); ``None``: every queue.

    Returns
    -------
    dict
        ``visibility_timeout``, ``unacked_key``, ``unacked_index_key``, ``unacked_mutex_key``.
    """
    if isinstance(queues, str):
        queues = queues.split(",")
    names = sorted({q.strip() for q in (queues or QUEUES) if q.strip()} or set(QUEUES))
    longest = VISIBILITY_TIMEOUT_S[QUEUE_TRAIN]
    timeout = max(VISIBILITY_TIMEOUT_S.get(name, longest) for name in names)
    suffix = "+".join(names)
    return {
        "visibility_timeout": timeout,
        "unacked_key": f"unacked:{suffix}",
        "unacked_index_key": f"unacked_index:{suffix}",
        "unacked_mutex_key": f"unacked_mutex:{suffix}",
    }


def parse_cron(expr: str) -> crontab:
    """Parse a 5-field cron string (``minute hour day-of-month month day-of-week``).

    Parameters
    ----------
    expr : str
        For example ``"0 3 * * 0"`` (Sundays at 03:00 UTC).

    Returns
    -------
    celery.schedules.crontab

    Raises
    ------
    ValueError
        If ``expr`` does not have exactly five valid fields.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expr!r} must have 5 fields, got {len(fields)}")
    try:
        return crontab.from_string(" ".join(fields))
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from exc


def celery_config(*, redis_url: str, retrain_cron: str | None) -> dict[str, Any]:
    """Return the Celery settings of genreflow.

    Parameters
    ----------
    redis_url : str
        Broker URL; also used as the (mostly unused) result backend.
    retrain_cron : str or None
        5-field cron string for the scheduled retrain; ``None`` or ``""`` disables it.

    Returns
    -------
    dict
        Lower-case Celery setting names to values, ready for ``app.conf.update``.
    """
    beat_schedule: dict[str, dict[str, Any]] = {
        "sync-models": {
            "task": TASK_SYNC_MODELS,
            "schedule": SYNC_MODELS_INTERVAL_S,
            "options": {"queue": QUEUE_PREDICT},
        },
    }
    if retrain_cron and retrain_cron.strip():
        beat_schedule["retrain-if-changed"] = {
            "task": TASK_RETRAIN_IF_CHANGED,
            "schedule": parse_cron(retrain_cron),
            "options": {"queue": QUEUE_TRAIN},
        }
    # Senders never restore messages; workers replace these in worker/celery_app.py.
    transport_options = worker_transport_options(None)
    return {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A predict pool process loads its model before it reports up (worker/warmup.py); a
        # Keras fallback model on a busy machine needs more than Celery's default 4 s for that.
        "worker_proc_alive_timeout": PROCESS_START_TIMEOUT_S,
        "task_default_queue": QUEUE_PREDICT,
        # One direct exchange per queue: bare Queue(name) objects would all bind to the default
        # exchange with the default routing key, and every task would reach every queue.
        "task_queues": [
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
        ],
        "task_default_exchange": QUEUE_PREDICT,
        "task_default_routing_key": QUEUE_PREDICT,
        "task_routes": TASK_ROUTES,
        "task_serializer": "json",
        "accept_content": ["json"],
        "enable_utc": True,
        "timezone": "UTC",
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "beat_schedule": beat_schedule,
    }


def sending_app(redis_url: str, *, name: str) -> Any:
    """Return a Celery app that only sends genreflow tasks to ``redis_url`` (no result backend).

    For processes that enqueue outside a task: ``genreflow run``'s start-up recovery and the
    workers' sweeper. Building it opens no connection; call ``close()`` when done.
    """
    from celery import Celery

    config = celery_config(redis_url=redis_url, retrain_cron=None)
    config["result_backend"] = None
    config.pop("result_backend_transport_options", None)
    app = Celery(name, set_as_current=False)
    app.conf.update(config)
    return app
