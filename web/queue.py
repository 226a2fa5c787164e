"""A send-only Celery client for the web process.

The web process never imports ``worker/``: it sends tasks by name with
``send_task(name, args=[...], queue=...)`` using the shared Celery configuration. Building the
client opens no connection; sending connects with short timeouts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from shared.errors import QueueUnavailable

log = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 3.0
#: One quick retry: a dead broker should fail a request in about a second, not hang it.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2}


class TaskQueue:
    """Send tasks to the genreflow workers through the Redis broker.

    Parameters
    ----------
    redis_url : str
        The broker URL (``REDIS_URL``).
    """

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._celery: Any = None
        self._lock = threading.Lock()

    @property
    def celery(self) -> Any:
        """The lazily built Celery client (import and configuration happen on first use)."""
        with self._lock:
            if self._celery is None:
                from celery import Celery

                from shared.lifecycle.queues import celery_config

                config = celery_config(redis_url=self.redis_url, retrain_cron=None)
                options = dict(config.get("broker_transport_options", {}))
                options.update(
                    socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S
                )
                config["broker_transport_options"] = options
                config["broker_connection_timeout"] = BROKER_TIMEOUT_S
                # Send-only: no result backend, so sending never touches (or waits on) one.
                config["result_backend"] = None
                config.pop("result_backend_transport_options", None)
                config["task_publish_retry_policy"] = PUBLISH_RETRY_POLICY
                app = Celery("genreflow-web", set_as_current=False)
                app.conf.update(config)
                self._celery = app
            return self._celery

    def send(self, name: str, args: list[Any], *, queue: str) -> str:
        """Send task ``name`` with ``args`` to ``queue``.

        Returns
        -------
        str
            The Celery task id.

        Raises
        ------
        QueueUnavailable
            If the broker cannot be reached.
        """
        try:
            result = self.celery.send_task(name, args=args, queue=queue)
        except Exception as exc:  # kombu/redis raise many connection error types
            log.error("could not send %s%r to queue %s: %s", name, args, queue, exc)
            raise QueueUnavailable(
                "The task queue (Redis at REDIS_URL) is not reachable; try again shortly."
            ) from exc
        return result.id

    def ping(self) -> None:
        """Check the broker answers a PING.

        Raises
        ------
        QueueUnavailable
            If it does not.
        """
        import redis

        client = redis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=BROKER_TIMEOUT_S,
            socket_timeout=BROKER_TIMEOUT_S,
        )
        try:
            client.ping()
        except Exception as exc:
            raise QueueUnavailable(f"The broker does not answer: {exc}") from exc
        finally:
            client.close()
