"""The Celery application of the genreflow workers.

``celery -A worker.celery_app worker -Q predict,webhooks`` (and ``-Q train --concurrency 1``,
and ``beat``) use the module-level :data:`celery_app`. Creating it reads no settings and opens no
connection: its configuration is a promise that :class:`shared.store.config.Settings` fills in the
first time Celery needs it. No model is loaded here; tasks load it lazily once per process.
When a worker is ready it syncs the model registry once
(:func:`shared.store.registry.sync_model_dir`) and starts its recovery sweeper
(:mod:`worker.sweeper`), so lost work is found again wherever workers run, with or without beat.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, worker_ready, worker_shutdown

from shared.lifecycle.queues import celery_config, worker_transport_options
from shared.store.config import Settings

log = logging.getLogger(__name__)

APP_NAME = "genreflow"
TASK_MODULES = ("worker.tasks",)


def config_from_settings(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration for ``settings`` (broker, queues, routes, beat)."""
    return celery_config(redis_url=settings.redis_url, retrain_cron=settings.retrain_cron)


def make_celery(settings: Settings | None = None) -> Celery:
    """Build a genreflow Celery app.

    Parameters
    ----------
    settings : Settings, optional
        When given, the configuration is built from it now; otherwise it is read from the
        environment (:meth:`Settings.from_env`) the first time Celery needs it.

    Returns
    -------
    Celery
        The app, with the task modules of :data:`TASK_MODULES` included.
    """
    from worker.log_signals import connect_signals

    connect_signals()
    app = Celery(APP_NAME, include=list(TASK_MODULES))
    if settings is not None:
        app.conf.update(config_from_settings(settings))
    else:
        app.add_defaults(lambda: config_from_settings(Settings.from_env()))
    return app


@celeryd_init.connect
def size_visibility_timeout(conf: Any = None, options: Any = None, **_: Any) -> None:
    """Give a starting worker the visibility timeout and unacked keys of its own queues."""
    if conf is None:
        return
    transport = dict(conf.broker_transport_options or {})
    transport.update(worker_transport_options((options or {}).get("queues")))
    conf.broker_transport_options = transport


@worker_ready.connect
def sync_registry_on_start(**_: Any) -> None:
    """Bring the model registry up to date when a worker starts (beat keeps it so)."""
    from worker.tasks import get_settings, sync_registry

    try:
        sync_registry(get_settings())
    except Exception as exc:  # a worker must start even when the database is not ready yet
        log.warning("could not sync the model registry at start: %s", exc)


@worker_ready.connect
def start_recovery_sweeper(**_: Any) -> None:
    """Start the worker's recovery sweeper thread (:mod:`worker.sweeper`)."""
    from worker.sweeper import start_sweeper
    from worker.tasks import get_settings

    start_sweeper(get_settings())


@worker_shutdown.connect
def stop_recovery_sweeper(**_: Any) -> None:
    """Stop the sweeper thread when the worker stops."""
    from worker.sweeper import stop_sweeper

    stop_sweeper()


celery_app = make_celery()
