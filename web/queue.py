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


def broker_name(redis_url: str, *, url_set: bool, private: bool) -> str:
    """Name the broker in the user's own terms: what they configured, or what started it.

    Parameters
    ----------
    redis_url : str
        The broker URL (its password is never shown).
    url_set : bool
        The user set ``REDIS_URL``.
    private : bool
        ``genreflow run`` started this Redis itself.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    if private:
        return f"The task queue (the Redis server that genreflow run started, at {where})"
    if url_set:
        return f"The task queue (Redis at {where}, from REDIS_URL)"
    return f"The task queue (Redis at {where}; set REDIS_URL to use another)"


class TaskQueue:
    """Send tasks to the genreflow workers through the Redis broker.

    Parameters
    ----------
    redis_url : str
        The broker URL (``REDIS_URL``).
    named : str, optional
        How messages name the broker to the user (see :func:`broker_name`).
    """

    def __init__(self, redis_url: str, *, named: str | None = None) -> None:
        self.redis_url = redis_url
        self.named = named or "The task queue (Redis)"
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
            raise QueueUnavailable(f"{self.named} is not reachable; try again shortly.") from exc
        return result.id

    def warm_workers(self) -> dict[str, str]:
        """Return ``{worker id: model version}`` of the predict processes holding a model.

        Raises
        ------
        QueueUnavailable
            If the broker cannot be reached.
        """
        import redis

        from shared.lifecycle.warmth import warm_versions

        client = redis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=BROKER_TIMEOUT_S,
            socket_timeout=BROKER_TIMEOUT_S,
        )
        try:
            return warm_versions(client)
        except Exception as exc:
            raise QueueUnavailable(f"The broker does not answer: {exc}") from exc
        finally:
            client.close()

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
