"""Logging: plain text or one JSON object per line, every line of a job carrying its ``job_id``.

``GENREFLOW_LOG_FORMAT=json`` switches every genreflow process (web, workers, beat, the runner)
to python-json-logger's JSON lines; the default is plain text. While a job is being handled
(:func:`bind_job_id`: the web request about it, the Celery task that classifies it or delivers
its webhook), every record gets a ``job_id`` attribute, shown in both formats. Celery's own
"received"/"succeeded" lines of a job's task get it from their arguments.

No secret reaches a log line: API keys (``gf_...``), webhook secrets (``whsec_...``) and bearer
credentials are replaced by ``[redacted]`` in every message that passes a genreflow handler.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from typing import IO, Final

JOB_ID_ATTR: Final = "job_id"
HANDLER_ATTR: Final = "_genreflow_handler"
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED: Final = "[redacted]"
_SECRETS: Final = re.compile(
    r"(?:gf_[A-Za-z0-9_\-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|(?i:bearer)\s+[^\s'\",]+)"
)
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "genreflow_job_id", default=None
)
#: Celery task names whose first argument is a job id (set by :func:`watch_tasks`).
_job_tasks: set[str] = set()


def redact(text: str) -> str:
    """Return ``text`` with API keys, webhook secrets and bearer credentials blanked out."""
    return _SECRETS.sub(REDACTED, text)


def current_job_id() -> str | None:
    """Return the job being handled in this context, if any."""
    return _job_id.get()


def set_job_id(job_id: str | None) -> contextvars.Token[str | None]:
    """Mark this context as handling ``job_id``; pass the token to :func:`reset_job_id`."""
    return _job_id.set(job_id)


def reset_job_id(token: contextvars.Token[str | None]) -> None:
    """Undo :func:`set_job_id`."""
    _job_id.reset(token)


@contextlib.contextmanager
def bind_job_id(job_id: str | None) -> Iterator[None]:
    """Give every log record inside the block the attribute ``job_id``."""
    token = set_job_id(job_id)
    try:
        yield
    finally:
        reset_job_id(token)


def watch_tasks(names: set[str] | frozenset[str]) -> None:
    """Name the Celery tasks whose first argument is a job id (for Celery's own lines)."""
    _job_tasks.update(names)


class ContextFilter(logging.Filter):
    """Adds ``job_id`` to records and blanks secrets out of their message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate and clean ``record``; never drops it."""
        if getattr(record, JOB_ID_ATTR, None) is None:
            job_id = current_job_id() or _job_id_of_celery_line(record)
            if job_id is not None:
                setattr(record, JOB_ID_ATTR, job_id)
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def _job_id_of_celery_line(record: logging.LogRecord) -> str | None:
    args = record.args
    if isinstance(args, Mapping) and args.get("name") in _job_tasks:
        match = _UUID.search(str(args.get("args", "")))
        return match.group(0) if match else None
    return None


class TextFormatter(logging.Formatter):
    """The plain format, with `` job_id=<id>`` appended when a record has one."""

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as one line."""
        line = super().format(record)
        job_id = getattr(record, JOB_ID_ATTR, None)
        return f"{line} job_id={job_id}" if job_id else line


def make_formatter(fmt: str) -> logging.Formatter:
    """Return the formatter of ``fmt`` (``"text"`` or ``"json"``)."""
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return TextFormatter(TEXT_FORMAT)


def adopt_handler(handler: logging.Handler, fmt: str) -> None:
    """Give an existing handler (Celery's, gunicorn's) genreflow's format and filter."""
    handler.setFormatter(make_formatter(fmt))
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (pytest swaps it per test)."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def configure_logging(
    fmt: str = "text", *, level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) in format ``fmt``, once.

    Calling it again replaces genreflow's handler (other handlers, such as pytest's, stay).

    Parameters
    ----------
    fmt : {"text", "json"}
    level : int
        The root logger's level, when it has none yet.
    stream : file, optional
        Where lines go (default ``sys.stderr``).

    Returns
    -------
    logging.Handler
        The handler installed.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, HANDLER_ATTR, False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    setattr(handler, HANDLER_ATTR, True)
    adopt_handler(handler, fmt)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    return handler


def configure_process_logging(fmt: str) -> None:
    """Set up this process's logging for ``fmt`` unless text logging is already set up.

    JSON always installs genreflow's handler; text does so only when the root logger has no
    handler yet (a test runner's or a host application's stays as it is).
    """
    if fmt == "json" or not logging.getLogger().handlers:
        configure_logging(fmt)
