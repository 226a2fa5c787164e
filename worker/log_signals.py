"""Celery signal handlers: genreflow's log format in the workers, and ``job_id`` on task lines."""

from __future__ import annotations

import logging
from typing import Any

from shared.lifecycle.queues import TASK_CLASSIFY_SONG, TASK_DELIVER_WEBHOOK
from shared.store.config import Settings

#: Tasks whose first argument is a job id.
JOB_TASKS = frozenset({TASK_CLASSIFY_SONG, TASK_DELIVER_WEBHOOK})
_TOKEN_ATTR = "_genreflow_job_log_token"


def _log_format() -> str:
    try:
        return Settings.from_env().log_format
    except ValueError:
        return "text"


def _adopt(logger: logging.Logger, **_kwargs: Any) -> None:
    from shared.logs import adopt_handler

    fmt = _log_format()
    for handler in logger.handlers:
        adopt_handler(handler, fmt)


def _bind(task: Any = None, args: Any = None, **_kwargs: Any) -> None:
    from shared.logs import set_job_id

    if task is not None and task.name in JOB_TASKS and args:
        setattr(task.request, _TOKEN_ATTR, set_job_id(str(args[0])))


def _unbind(task: Any = None, **_kwargs: Any) -> None:
    from shared.logs import reset_job_id

    token = getattr(task.request, _TOKEN_ATTR, None) if task is not None else None
    if token is not None:
        reset_job_id(token)


def connect_signals() -> None:
    """Connect the handlers (idempotent: Celery keeps one connection per receiver)."""
    from celery import signals

    from shared.logs import watch_tasks

    watch_tasks(JOB_TASKS)
    signals.after_setup_logger.connect(_adopt, weak=False)
    signals.after_setup_task_logger.connect(_adopt, weak=False)
    signals.task_prerun.connect(_bind, weak=False)
    signals.task_postrun.connect(_unbind, weak=False)
