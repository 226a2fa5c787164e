"""Warm predict workers: load the active model when a pool process starts, and keep it current.

Celery's ``worker_process_init`` signal runs in every pool process right after the fork, before
the process takes any task (Celery waits up to ``worker_proc_alive_timeout`` for it). In a
process of a worker that consumes the ``predict`` queue it loads the active model (ONNX Runtime,
see :mod:`shared.core.serving.inference`) and scores one silent segment through the whole feature
path, so the first job pays for nothing. A daemon thread then refreshes the process's warm key
(:mod:`shared.lifecycle.warmth`) and, when another model has been activated, loads it before any
job needs it. Training and beat processes are left alone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.errors import GenreflowError
from shared.lifecycle.queues import QUEUE_PREDICT
from shared.lifecycle.warmth import REFRESH_S, mark_cold, mark_warm
from shared.store.db import session_scope
from worker.model_cache import cached_version, get_active_model

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis

    from shared.store.config import Settings

log = logging.getLogger(__name__)

_stop = threading.Event()
_primed: set[str] = set()  # versions whose feature path this process has already run


def consumes_predict(app: Celery) -> bool:
    """Return whether this worker consumes the predict queue (its ``-Q`` option)."""
    try:
        return QUEUE_PREDICT in app.amqp.queues.consume_from
    except Exception:  # no queue selection: a worker consumes every queue
        return True


def worker_id() -> str:
    """Return this process's id among warm workers: ``<host>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def warm_up(settings: Settings) -> str | None:
    """Load the active model into this process's cache and run one silent segment through it.

    Returns
    -------
    str or None
        The version now held, or ``None`` when no model is active or it cannot be loaded
        (logged; the next refresh tries again).
    """
    try:
        with session_scope(settings.database_url) as session:
            model = get_active_model(session, settings)
    except GenreflowError as exc:
        log.warning("predict worker not warm yet: %s", exc.detail)
        return None
    if model.version not in _primed:
        import numpy as np

        from shared.core.serving.predict import predict_audio

        silence = np.zeros(model.feature_config.samples_per_segment, dtype=np.float32)
        predict_audio(silence, model)  # imports and primes librosa's MFCC path as well
        _primed.add(model.version)
    return model.version


def keep_warm(settings: Settings, redis: Redis, *, interval_s: float = REFRESH_S) -> None:
    """Refresh this process's warm key until :func:`stop_keeping_warm`; follow the active model."""
    me = worker_id()
    while not _stop.is_set():
        try:
            version = warm_up(settings)
            if version is not None:
                mark_warm(redis, me, version)
        except Exception as exc:  # a Redis or DB hiccup must not end the thread
            log.warning("warm-key refresh failed: %s", exc)
        _stop.wait(interval_s)


def start(app: Celery, settings: Settings, redis: Redis) -> threading.Thread | None:
    """Warm this pool process and start its refresh thread, if it serves the predict queue."""
    if not consumes_predict(app):
        return None
    from shared.core.serving.inference import use_one_math_thread

    use_one_math_thread()  # one process per core: no spinning BLAS threads beside each other
    _stop.clear()
    version = warm_up(settings)
    log.info("predict process %s warm with model %s", worker_id(), version or "(none)")
    if version is not None:
        try:
            mark_warm(redis, worker_id(), version)
        except Exception as exc:  # e.g. Redis refusing writes on a full disk: the thread retries
            log.warning("warm key not written yet: %s", exc)
    thread = threading.Thread(
        target=partial(keep_warm, settings, redis), name="genreflow-warm", daemon=True
    )
    thread.start()
    return thread


def stop_keeping_warm(redis: Redis | None) -> None:
    """Stop the refresh thread and drop this process's warm key."""
    _stop.set()
    if redis is not None and cached_version() is not None:
        try:
            mark_cold(redis, worker_id())
        except Exception as exc:  # shutting down: nothing more to do about it
            log.debug("could not drop the warm key: %s", exc)


def connect_signals(get_settings: Any, get_redis: Any) -> None:
    """Connect :func:`start` and :func:`stop_keeping_warm` to Celery's pool-process signals."""
    from celery import current_app
    from celery.signals import worker_process_init, worker_process_shutdown

    def on_start(**_: Any) -> None:
        from shared.store.db import dispose_engines

        dispose_engines(close=False)  # the main process's pooled connections are not ours
        start(current_app, get_settings(), get_redis())

    def on_stop(**_: Any) -> None:
        stop_keeping_warm(get_redis())

    worker_process_init.connect(on_start, weak=False)
    worker_process_shutdown.connect(on_stop, weak=False)
