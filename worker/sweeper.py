"""The recovery sweeper: a thread of every worker's main process, so recovery needs no scheduler.

When a genreflow worker is ready (Celery's ``worker_ready``, whatever started it: ``genreflow
run`` with or without beat, ``genreflow worker``, compose, a bare ``celery worker``), its main
process starts a daemon thread that tries :func:`shared.lifecycle.recovery.sweep_lost_work`
every ``RECOVERY_INTERVAL_S / 3`` seconds. The sweep's Redis lock lets one sweep run per
``RECOVERY_INTERVAL_S`` across all hosts, however many workers try.

The thread has its own database engine without a pool and its own Redis client and sending
Celery app, so nothing it opens is shared with the pool processes the main process forks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any, Final

from shared.lifecycle.queues import RECOVERY_INTERVAL_S, sending_app
from shared.lifecycle.recovery import sweep_lost_work

if TYPE_CHECKING:
    from shared.store.config import Settings

log = logging.getLogger(__name__)

#: How often each worker tries to take the sweep lock (the lock spaces the sweeps themselves).
TRY_EVERY_S: Final = RECOVERY_INTERVAL_S / 3


class Sweeper:
    """Try the recovery sweep every ``try_every_s`` seconds from a daemon thread until stopped.

    Parameters
    ----------
    settings : Settings
        The database and Redis to sweep.
    try_every_s : float > 0
        Pause between tries.
    """

    def __init__(self, settings: Settings, *, try_every_s: float = TRY_EVERY_S) -> None:
        self.settings = settings
        self.try_every_s = try_every_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="genreflow-sweeper", daemon=True)
            self._thread.start()

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Ask the thread to end and wait up to ``timeout_s`` for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        from redis import Redis
        from sqlalchemy.pool import NullPool

        from shared.store.db import make_engine

        engine = make_engine(self.settings.database_url, poolclass=NullPool)
        redis = Redis.from_url(self.settings.redis_url, socket_connect_timeout=5, socket_timeout=10)
        app = sending_app(self.settings.redis_url, name="genreflow-sweeper")

        def send(name: str, args: list[Any], queue: str) -> None:
            app.send_task(name, args=args, queue=queue)

        log.info("recovery sweeper %s started (every %.0f s)", self.holder, self.try_every_s)
        try:
            while not self._stop.is_set():
                try:
                    sweep_lost_work(engine, redis, send, holder=self.holder)
                except Exception as exc:  # Redis or the database may be back next time
                    log.warning("recovery sweep failed: %s", exc)
                self._stop.wait(self.try_every_s)
        finally:
            app.close()
            redis.close()
            engine.dispose()


_sweeper: Sweeper | None = None


def start_sweeper(settings: Settings) -> Sweeper:
    """Start this process's sweeper (once; later calls return the running one)."""
    global _sweeper
    if _sweeper is None:
        _sweeper = Sweeper(settings)
        _sweeper.start()
    return _sweeper


def stop_sweeper() -> None:
    """Stop this process's sweeper, if it runs."""
    global _sweeper
    if _sweeper is not None:
        _sweeper.stop()
        _sweeper = None
