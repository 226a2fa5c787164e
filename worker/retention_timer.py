"""Run the retention sweep from the workers on a timer, so it needs no beat.

When a worker is ready, :func:`start` runs a daemon thread that calls
:func:`shared.lifecycle.retention.sweep_expired` every ``interval_s``
(``GENREFLOW_RETENTION_SWEEP_S``, an hour by default). Several workers may run
the thread; a Redis key taken with ``SET NX EX`` lets only one of them sweep per interval. Each
sweep opens its own engine and disposes it, so no connection outlives it (pool processes fork
from this process).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from shared.lifecycle.retention import RETENTION_INTERVAL_S, sweep_expired
from shared.store.db import make_engine, session_scope

if TYPE_CHECKING:
    from redis import Redis

    from shared.store.config import Settings

log = logging.getLogger(__name__)

LOCK_KEY: Final = "genreflow:retention-sweep"
#: The first sweep waits this long after a worker is ready (start-up stays quick).
FIRST_SWEEP_DELAY_S: Final = 30.0

_started = threading.Event()
_stop = threading.Event()


def sweep_once(settings: Settings, redis: Redis | None, *, interval_s: float) -> bool:
    """Run one sweep unless another worker swept within ``interval_s``; return whether it ran."""
    if redis is not None and not redis.set(LOCK_KEY, "1", nx=True, ex=max(1, int(interval_s) - 1)):
        return False
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            sweep_expired(session, settings)
    finally:
        engine.dispose()
    return True


def start(
    get_settings: Callable[[], Settings],
    get_redis: Callable[[], Redis | None],
    *,
    interval_s: float = RETENTION_INTERVAL_S,
    first_delay_s: float = FIRST_SWEEP_DELAY_S,
) -> threading.Thread | None:
    """Start the sweeping thread once per process (later calls return ``None``)."""
    if _started.is_set():
        return None
    _started.set()

    def loop() -> None:
        delay = first_delay_s
        while not _stop.wait(delay):
            delay = interval_s
            try:
                sweep_once(get_settings(), get_redis(), interval_s=interval_s)
            except Exception as exc:  # the next interval may succeed (database or disk back)
                log.warning("retention sweep failed: %s", exc)

    thread = threading.Thread(target=loop, name="retention-sweep", daemon=True)
    thread.start()
    return thread


def connect_signals(
    get_settings: Callable[[], Settings], get_redis: Callable[[], Any]
) -> Callable[..., None]:
    """Start the sweeping thread when a worker is ready (Celery's ``worker_ready``).

    Returns the connected receiver (to disconnect it again).
    """
    from celery.signals import worker_ready

    def on_ready(**_: Any) -> None:
        interval_s = get_settings().retention_sweep_s  # GENREFLOW_RETENTION_SWEEP_S
        start(get_settings, get_redis, interval_s=interval_s,
              first_delay_s=min(FIRST_SWEEP_DELAY_S, interval_s))  # fmt: skip

    worker_ready.connect(on_ready, weak=False)
    return on_ready
