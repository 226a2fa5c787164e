"""Webhooks cannot be aimed inward: refused at upload (400) and again at delivery."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import WebhookTargetRefused
from shared.lifecycle.webhook_targets import check_webhook_target, is_inward
from shared.lifecycle.webhooks import AttemptResult, deliver_job_event
from shared.store.orm import Job, WebhookDelivery, utcnow

INWARD = [
    "http://127.0.0.1:8000/hook",
    "http://localhost/hook",
    "http://10.1.2.3/x",
    "http://192.168.0.10/x",
    "http://172.16.5.4/x",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/x",
    "http://[fe80::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://0.0.0.0/x",
]


@pytest.mark.parametrize("url", INWARD)
def test_inward_targets_are_refused(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        check_webhook_target(url, allow_private=False)
    check_webhook_target(url, allow_private=True)  # the operator's opt-in


def test_public_and_unresolvable_targets_pass() -> None:
    check_webhook_target("https://93.184.215.14/hook", allow_private=False)
    check_webhook_target("https://hooks.example/x", allow_private=False)  # resolves nowhere


def test_a_name_resolving_inward_is_refused() -> None:
    def resolve(host: str, port: int) -> list[Any]:
        assert (host, port) == ("hooks.example.com", 443)
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.5")]

    with pytest.raises(WebhookTargetRefused, match=r"10\.0\.0\.5"):
        check_webhook_target("https://hooks.example.com/x", allow_private=False, resolve=resolve)
    assert not is_inward(ipaddress.ip_address("8.8.8.8"))


def test_the_target_is_checked_again_at_delivery(db_session: Session) -> None:
    job = Job(filename="a.wav", upload_path="/x", content_sha256="0" * 64, size_bytes=1,
              webhook_url="http://hooks.example/x", status="done", progress=1.0,
              finished_at=utcnow())  # fmt: skip
    db_session.add(job)
    db_session.commit()
    calls: list[str] = []

    def post(url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        calls.append(url)
        return AttemptResult(200, None, 1.0)

    def now_inward(url: str) -> None:  # the name resolves inward by delivery time
        check_webhook_target(url, allow_private=False, resolve=lambda h, p: [
            ipaddress.ip_address("127.0.0.1")])  # fmt: skip

    outcome = deliver_job_event(
        db_session, job.id, "job.completed", secret="whsec_" + "A" * 32, max_attempts=3,
        backoff_s=1.0, http_post=post, check_target=now_inward, render_job=lambda j: {"id": j.id},
    )  # fmt: skip
    db_session.commit()
    assert outcome.status == "refused"
    assert calls == []
    row = db_session.scalars(select(WebhookDelivery)).one()
    assert not row.succeeded
    assert row.error.startswith("refused:")
