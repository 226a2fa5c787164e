"""Upload limits (Flask-Limiter on the broker's Redis): uploads per minute and bytes per hour.

Each limit is counted twice: once per caller (its API key, or its address when it sends none)
and once per client address, so neither many keys from one address nor one key from many
addresses gets around it. The numbers come from ``GENREFLOW_UPLOADS_PER_MINUTE`` and
``GENREFLOW_UPLOAD_MB_PER_HOUR``; the byte limit charges each upload its ``Content-Length``.
A refused upload is answered ``429`` (problem+json) with ``Retry-After`` in seconds; every answer
of a limited view carries ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset``. Any other
``Retry-After`` is the answer's own (a 503 says 5 s, a 507 says 300 s): Flask-Limiter's own
header injection is off because it would stretch those to the end of the limit's window. When
Redis is unreachable the limits are skipped (and logged) rather than refusing every upload.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded

from shared.errors import RateLimited
from shared.store.config import Settings
from web.auth import current_principal
from web.context import get_settings
from web.errors import handle_genreflow_error

F = TypeVar("F", bound=Callable[..., Any])

MIB: Final = 1024 * 1024


def _caller() -> str:
    principal = current_principal()
    if principal.key_id is not None:
        return f"key:{principal.key_id}"
    return f"anon:{request.remote_addr or '-'}"


def _address() -> str:
    return f"addr:{request.remote_addr or '-'}"


def _uploads_per_minute() -> str:
    return f"{get_settings().uploads_per_minute} per minute"


def _bytes_per_hour() -> str:
    return f"{get_settings().upload_mb_per_hour * MIB} per hour"


def _upload_cost() -> int:
    return max(1, request.content_length or 0)


#: One limiter for every app; :func:`init_app` points it at an app's Redis.
limiter: Final = Limiter(
    _address,
    headers_enabled=False,  # rate_limit_headers() adds them, leaving Retry-After alone
    strategy="fixed-window",
    swallow_errors=True,
    key_prefix="genreflow",
)


def limit_uploads(view: F) -> F:
    """Apply the four upload limits (count and bytes, per caller and per address) to a view."""
    for limit_value, cost in ((_uploads_per_minute, 1), (_bytes_per_hour, _upload_cost)):
        for key_func in (_caller, _address):
            view = limiter.limit(limit_value, key_func=key_func, cost=cost)(view)
    return view


def init_app(app: Flask, settings: Settings) -> None:
    """Count on ``settings.redis_url`` and answer breaches as problem+json 429s."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url)
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 2, "socket_timeout": 2}
    )
    limiter.init_app(app)
    app.after_request(rate_limit_headers)
    app.register_error_handler(RateLimitExceeded, too_many_requests)


def rate_limit_headers(response: Response) -> Response:
    """Tell the caller of a limited view where it stands against the tightest limit it hit."""
    current = limiter.current_limit
    if current is not None:
        response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
        response.headers["X-RateLimit-Remaining"] = str(current.remaining)
        response.headers["X-RateLimit-Reset"] = str(int(current.reset_at))
    return response


def too_many_requests(error: RateLimitExceeded) -> Response:
    """Answer a breached limit as a ``429`` problem with ``Retry-After`` (seconds)."""
    current = limiter.current_limit
    wait_s = 60
    if current is not None:  # the store's reset time is rounded: never past the window's length
        wait_s = min(math.ceil(current.reset_at - time.time()), current.limit.get_expiry())
    return handle_genreflow_error(
        RateLimited(
            f"Upload limit reached ({error.description}); try again in {max(1, wait_s)} s. "
            "The limits are GENREFLOW_UPLOADS_PER_MINUTE and GENREFLOW_UPLOAD_MB_PER_HOUR.",
            retry_after_s=wait_s,
        )
    )
