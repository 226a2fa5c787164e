"""Every error the web process answers is ``application/problem+json`` (RFC 9457).

The body is ``{type, title, status, detail, code}`` plus optional extension members. Deliberate
errors (:class:`shared.errors.GenreflowError`), werkzeug HTTP errors and APIFlask validation
errors map to their own status; a database that cannot be reached (a restart, a lost
connection) is a 503 to retry; anything else is a 500 that never shows internals.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.errors import DatabaseUnavailable, GenreflowError, UploadTooLarge
from shared.lifecycle.base import is_transient_db_error
from shared.store.disk import is_disk_full

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:genreflow:problem:"


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "error"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build an ``application/problem+json`` response.

    Parameters
    ----------
    status : int
        HTTP status.
    code : str
        Stable machine code; ``type`` is ``urn:genreflow:problem:<code>``.
    title, detail : str
        Human summary and explanation.
    headers : dict, optional
        Extra headers.
    **extra
        Extension members of the body.

    Returns
    -------
    Response
    """
    body = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_genreflow_error(error: GenreflowError) -> Response:
    """Answer a deliberate genreflow error with its own status, title and code."""
    headers = error.headers
    if error.status >= 500:
        log.warning("%s: %s", error.code, error.detail)
        headers = {"Retry-After": "5", **headers} if error.status == 503 else headers
    return problem_response(
        error.status, error.code, error.title, error.detail, headers=headers, **error.extra
    )


def handle_http_exception(error: HTTPException) -> Response:
    """Answer a werkzeug HTTP error (404, 405, 413...) as a problem."""
    status = error.code or 500
    title = error.name or "Error"
    if isinstance(error, RequestEntityTooLarge):
        from flask import current_app

        limit = current_app.config.get("GENREFLOW_MAX_UPLOAD_MB")
        return handle_genreflow_error(UploadTooLarge.over_limit(limit))
    detail = error.description or title
    headers = {k: v for k, v in error.get_headers() if k.lower() not in {"content-type"}}
    return problem_response(status, _snake(title), title, detail, headers=headers)


def handle_apiflask_error(error: HTTPError) -> Response:
    """Answer an APIFlask error (chiefly request validation) as a problem."""
    status = error.status_code
    title = error.message or "Error"
    detail = title
    extra: dict[str, Any] = {}
    if error.detail:
        extra["errors"] = error.detail
        detail = _describe_validation(error.detail) or title
        if status in {400, 422}:
            title = "Invalid request"
    code = "invalid_request" if status in {400, 422} else _snake(title)
    return problem_response(status, code, title, detail, headers=dict(error.headers or {}), **extra)


def _describe_validation(detail: Any) -> str:
    parts: list[str] = []
    if isinstance(detail, dict):
        for location, fields in detail.items():
            if isinstance(fields, dict):
                for field, messages in fields.items():
                    text = "; ".join(map(str, messages)) if isinstance(messages, list) else messages
                    parts.append(f"{location} field {field!r}: {text}")
    return " ".join(parts)


def handle_database_error(error: DBAPIError) -> Response:
    """Answer a database that cannot be reached as 503 with Retry-After; others as a 500."""
    if is_transient_db_error(error) and not is_disk_full(error):
        return handle_genreflow_error(
            DatabaseUnavailable("The database cannot be reached right now; try again shortly.")
        )
    return handle_unexpected(error)


def handle_unexpected(error: Exception) -> Response:
    """Answer any other exception as a generic 500, logging it with its traceback."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if isinstance(error, GenreflowError):
        return handle_genreflow_error(error)
    log.exception("unhandled error", exc_info=error)
    return problem_response(
        500,
        "internal_error",
        "Internal server error",
        "The server hit an unexpected error; it has been logged.",
    )


def register_error_handlers(app: APIFlask) -> None:
    """Install the problem+json handlers on ``app``."""
    app.error_processor(handle_apiflask_error)
    app.register_error_handler(GenreflowError, handle_genreflow_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
