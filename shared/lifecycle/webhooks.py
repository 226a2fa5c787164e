"""Signed webhook delivery for finished jobs (Standard Webhooks).

When a job ends with a ``webhook_url``, the ``webhooks`` queue runs
:func:`deliver_job_event`: it POSTs ``{"type", "timestamp", "data": <job>}`` signed with
the ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` headers, records every attempt
as a :class:`~shared.store.orm.WebhookDelivery` row and says when to try again. The message id is
derived from the job and event, so every retry (and any redelivery of the task) carries the same
id and receivers can drop duplicates.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import WebhookTargetRefused
from shared.lifecycle.webhook_targets import UnresolvableHost
from shared.store.columns import isoformat, utcnow
from shared.store.orm import Job, JobStatus, WebhookDelivery

EVENT_COMPLETED: Final = "job.completed"
EVENT_FAILED: Final = "job.failed"
EVENT_TYPES: Final = (EVENT_COMPLETED, EVENT_FAILED)
CONNECT_TIMEOUT_S: Final = 5.0
READ_TIMEOUT_S: Final = 10.0
MAX_BACKOFF_S: Final = 3600.0
USER_AGENT: Final = "genreflow-webhooks/1"
_MESSAGE_NAMESPACE: Final = uuid.UUID("9a6c3f64-3c1e-4b8e-9a0e-6f1d2b7c5e11")
_MAX_ERROR_CHARS: Final = 500


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP POST did: a status code, or an error, and how long it took."""

    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def succeeded(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class DeliveryOutcome:
    """The result of :func:`deliver_job_event`.

    Attributes
    ----------
    status : {"delivered", "retry", "gave_up", "skipped", "refused"}
        ``skipped``: nothing to send (no URL, job not finished, or already delivered).
        ``refused``: the URL points inward (:mod:`shared.lifecycle.webhook_targets`); final.
    attempt : int
        Number of the attempt made (0 when none was).
    retry_in : float or None
        Seconds to wait before the next attempt, when ``status == "retry"``.
    """

    status: str
    attempt: int = 0
    retry_in: float | None = None


class HttpPost(Protocol):
    """The transport: one POST to ``url``, connecting to ``address`` (see :func:`post_webhook`)."""

    def __call__(
        self, url: str, body: bytes, headers: dict[str, str], *, address: str | None
    ) -> AttemptResult:
        """Make the request; report network trouble in the result, never raise."""
        ...


def event_for_status(status: str) -> str | None:
    """Return the event type a job in ``status`` announces (``None`` while it is running)."""
    if status == JobStatus.DONE:
        return EVENT_COMPLETED
    if status == JobStatus.FAILED:
        return EVENT_FAILED
    return None


def message_id_for(job_id: str, event_type: str) -> str:
    """Return the stable Standard Webhooks message id of one job event."""
    return "msg_" + uuid.uuid5(_MESSAGE_NAMESPACE, f"{job_id}/{event_type}").hex


RenderJob = Callable[[Job], dict[str, Any]]


def build_event(job: Job, event_type: str, *, render_job: RenderJob) -> dict[str, Any]:
    """Return the JSON event announcing that ``job`` ended.

    The timestamp is the job's finish time, so the body is identical across retries.
    ``render_job`` gives the job's JSON shape (:func:`shared.lifecycle.job_shape.job_fields`).
    """
    when = job.finished_at or job.started_at or job.created_at
    return {"type": event_type, "timestamp": isoformat(when), "data": render_job(job)}


def encode_body(event: dict[str, Any]) -> bytes:
    """Serialise an event to the exact bytes that are signed and sent."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign_headers(
    secret: str, message_id: str, body: bytes, *, timestamp: datetime | None = None
) -> dict[str, str]:
    """Return the Standard Webhooks headers for ``body``.

    Parameters
    ----------
    secret : str
        ``whsec_``-prefixed base64 secret (``GENREFLOW_WEBHOOK_SECRET``).
    message_id : str
        Same for every attempt of one event.
    body : bytes
        The exact request body.
    timestamp : datetime, optional
        Signing time (UTC); now when omitted. Each attempt is signed afresh, since receivers
        reject signatures older than a few minutes.

    Returns
    -------
    dict
        ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` and ``content-type``.
    """
    from standardwebhooks import Webhook

    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    signature = Webhook(secret).sign(message_id, when, body.decode("utf-8"))
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def post_webhook(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    address: str | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    read_timeout_s: float = READ_TIMEOUT_S,
    ca_certs: str | None = None,
) -> AttemptResult:
    """POST ``body`` to ``url`` once, never raising for network trouble.

    Parameters
    ----------
    url, body, headers
        The request. Redirects are not followed (a redirect counts as a failed attempt).
    address : str, optional
        The IP address to connect to (:func:`~shared.lifecycle.webhook_targets.pin_webhook_target`
        checked it); the URL's host still names the ``Host`` header, TLS's SNI and the name the
        certificate must carry. Without it, the host is resolved here.
    ca_certs : str, optional
        CA bundle for https (default: certifi's).
    """
    import urllib3

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
    if parts.scheme == "https":
        import certifi

        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address or host, port, timeout=timeout, retries=False, server_hostname=host,
            assert_hostname=host, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs or certifi.where(),
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(address or host, port, timeout=timeout, retries=False)
    started = time.perf_counter()
    try:
        response = pool.urlopen(
            "POST", target, body=body, headers={**headers, "Host": parts.netloc},
            redirect=False, retries=False,
        )  # fmt: skip
    except urllib3.exceptions.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return AttemptResult(None, _short(f"{type(exc).__name__}: {exc}"), round(elapsed, 1))
    finally:
        pool.close()
    elapsed = (time.perf_counter() - started) * 1000
    error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    return AttemptResult(response.status, error, round(elapsed, 1))


def backoff_delay(attempt: int, *, base_s: float, max_s: float = MAX_BACKOFF_S) -> float:
    """Return the wait after failed attempt number ``attempt`` (1-based): ``base_s * 2**(n-1)``."""
    return float(min(max_s, base_s * 2 ** max(0, attempt - 1)))


def deliver_job_event(
    session: Session,
    job_id: str,
    event_type: str,
    *,
    render_job: RenderJob,
    secret: str,
    max_attempts: int,
    backoff_s: float,
    http_post: HttpPost = post_webhook,
    pin_target: Callable[[str], str] | None = None,
) -> DeliveryOutcome:
    """Make the next delivery attempt of one job event and record it.

    Parameters
    ----------
    session : Session
        The attempt's :class:`WebhookDelivery` row is added here; the caller commits.
    job_id : str
    event_type : {"job.completed", "job.failed"}
    render_job : callable(Job) -> dict
        The job's JSON shape for the event's ``data``.
    secret : str
        Signing secret.
    max_attempts : int > 0
        Attempts in all, the first included; after the last one the outcome is ``gave_up``.
    backoff_s : float > 0
        Wait after the first failure; it doubles after each further one.
    http_post : callable(url, body, headers) -> AttemptResult
        The transport (tests may pass a fake).
    pin_target : callable(url) -> str, optional
        Resolves the URL's host now, checks it and returns the address the request connects
        to (:func:`shared.lifecycle.webhook_targets.pin_webhook_target`); raises
        :class:`~shared.errors.WebhookTargetRefused` for a URL that may not be called, or
        ``UnresolvableHost`` (a failed attempt, retried). Without it the host is resolved
        when connecting.

    Returns
    -------
    DeliveryOutcome
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    job = session.get(Job, job_id)
    if job is None or not job.webhook_url or event_for_status(job.status) is None:
        return DeliveryOutcome("skipped")
    previous = session.execute(
        select(
            func.count(WebhookDelivery.id),
            func.count(WebhookDelivery.id).filter(WebhookDelivery.succeeded.is_(True)),
        ).where(WebhookDelivery.job_id == job_id, WebhookDelivery.event_type == event_type)
    ).one()
    n_attempts, n_succeeded = int(previous[0]), int(previous[1])
    if n_succeeded:
        return DeliveryOutcome("skipped", attempt=n_attempts)
    if n_attempts >= max_attempts:
        return DeliveryOutcome("gave_up", attempt=n_attempts)

    attempt = n_attempts + 1
    message_id = message_id_for(job_id, event_type)
    body = encode_body(build_event(job, event_type, render_job=render_job))
    url = job.webhook_url
    session.commit()  # end the read transaction: no database lock is held during the request
    address = None
    try:
        if pin_target is not None:
            address = pin_target(url)
    except WebhookTargetRefused as exc:
        refused = AttemptResult(None, _short(f"refused: {exc.detail}"), 0.0)
        session.add(_delivery_row(job_id, event_type, message_id, attempt, url, refused))
        return DeliveryOutcome("refused", attempt=attempt)
    except UnresolvableHost as exc:
        result = AttemptResult(None, _short(f"host does not resolve: {exc}"), 0.0)
    else:
        result = http_post(url, body, sign_headers(secret, message_id, body), address=address)
    session.add(_delivery_row(job_id, event_type, message_id, attempt, url, result))
    if result.succeeded:
        return DeliveryOutcome("delivered", attempt=attempt)
    if attempt >= max_attempts:
        return DeliveryOutcome("gave_up", attempt=attempt)
    return DeliveryOutcome(
        "retry", attempt=attempt, retry_in=backoff_delay(attempt, base_s=backoff_s)
    )


def _delivery_row(
    job_id: str, event_type: str, message_id: str, attempt: int, url: str, result: AttemptResult
) -> WebhookDelivery:
    return WebhookDelivery(
        job_id=job_id,
        event_type=event_type,
        message_id=message_id,
        attempt=attempt,
        url=url,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
        succeeded=result.succeeded,
        created_at=utcnow(),
    )


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
