"""The webhook outbox: a row per job event owed to its webhook, written with the job's end.

The row is written in the transaction that ends the job (:func:`record_webhook_due`), so a
restart loses no delivery; one attempt at a time claims it (:func:`claim_delivery`) and records
its outcome (:func:`settle_delivery`). The recovery sweep sends again a due row whose message
was lost (``OUTBOX_LEASE_S``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.lifecycle.webhooks import event_for_status
from shared.store.columns import utcnow
from shared.store.orm import Job, WebhookOutbox

#: One delivery attempt holds its outbox row this long (the HTTP timeouts are 5 + 10 s).
OUTBOX_CLAIM_S: Final = 60.0
#: A delivery message queued this long ago and not yet consumed is sent again.
OUTBOX_LEASE_S: Final = 30.0
#: Webhook retries due sooner than this ride on Celery's countdown; later ones on the sweep
#: (a countdown longer than the queue's visibility timeout would be delivered twice).
SHORT_RETRY_S: Final = 60.0


def record_webhook_due(session: Session, job_id: str, event_type: str) -> None:
    """Record in the outbox that a job event is owed to its webhook (call before the commit).

    Call it in the transaction that ends the job, then enqueue the delivery after the commit:
    the row is marked as enqueued now, so the sweep sends it only if that message is lost.
    """
    exists = session.scalar(
        select(WebhookOutbox.id).where(
            WebhookOutbox.job_id == job_id, WebhookOutbox.event_type == event_type
        )
    )
    if exists is None:
        now = utcnow()
        session.add(
            WebhookOutbox(job_id=job_id, event_type=event_type, next_attempt_at=now,
                          enqueued_at=now, created_at=now)
        )  # fmt: skip


def claim_delivery(session: Session, job_id: str, event_type: str) -> bool:
    """Claim the next delivery attempt of a job event, if it is due and nobody holds it.

    The claim pushes ``next_attempt_at`` ahead by ``OUTBOX_CLAIM_S`` in one conditional
    UPDATE, so of two messages for the same attempt only one delivers. The caller commits.

    Returns
    -------
    bool
        Whether this caller may make the attempt. Events with no outbox row (written before
        the outbox existed) may always be attempted.
    """
    now = utcnow()
    row = session.scalar(
        select(WebhookOutbox).where(
            WebhookOutbox.job_id == job_id, WebhookOutbox.event_type == event_type
        )
    )
    if row is None:
        return True
    result = session.execute(
        update(WebhookOutbox)
        .where(
            WebhookOutbox.id == row.id,
            WebhookOutbox.closed_at.is_(None),
            WebhookOutbox.next_attempt_at <= now + timedelta(seconds=1),
        )
        .values(next_attempt_at=now + timedelta(seconds=OUTBOX_CLAIM_S), enqueued_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def settle_delivery(
    session: Session, job_id: str, event_type: str, *, status: str, retry_in: float | None
) -> bool:
    """Record the outcome of an attempt in the outbox (the caller commits).

    Parameters
    ----------
    status : {"delivered", "retry", "gave_up", "skipped"}
        :class:`shared.lifecycle.webhooks.DeliveryOutcome` ``status``.
    retry_in : float or None
        Seconds until the next attempt, when ``status == "retry"``.

    Returns
    -------
    bool
        Whether the caller should schedule the retry itself (a Celery countdown): true for
        short waits; longer ones are left to the sweep.
    """
    now = utcnow()
    row = session.scalar(
        select(WebhookOutbox).where(
            WebhookOutbox.job_id == job_id, WebhookOutbox.event_type == event_type
        )
    )
    short = status == "retry" and retry_in is not None and retry_in <= SHORT_RETRY_S
    if row is None:
        return short
    if status == "retry":
        row.next_attempt_at = now + timedelta(seconds=retry_in or 0.0)
        row.enqueued_at = now if short else None
    else:
        row.closed_at = now
    return short


def owe_job_event(session: Session, job: Job) -> str | None:
    """Return the webhook event a job that just ended owes, and record it in the outbox.

    The outbox row commits with the job's end, so the delivery survives a crash before the
    caller queues it (the recovery sweep sends it if that message is lost).
    """
    event = event_for_status(job.status) if job.webhook_url else None
    if event:
        record_webhook_due(session, job.id, event)
    return event
