"""Webhooks cannot be aimed inward: refused at upload (400) and again at delivery."""

from __future__ import annotations

import http.server
import ipaddress
import shutil
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import WebhookTargetRefused
from shared.lifecycle.webhook_targets import check_webhook_target, is_inward, pin_webhook_target
from shared.lifecycle.webhooks import AttemptResult, deliver_job_event, post_webhook
from shared.store.columns import utcnow
from shared.store.orm import Job, WebhookDelivery

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

    def post(url: str, body: bytes, headers: dict[str, str], *, address: str | None) -> Any:
        calls.append(url)
        return AttemptResult(200, None, 1.0)

    def now_inward(url: str) -> str:  # the name resolves inward by delivery time
        return pin_webhook_target(url, allow_private=False, resolve=lambda h, p: [
            ipaddress.ip_address("127.0.0.1")])  # fmt: skip

    outcome = deliver_job_event(
        db_session, job.id, "job.completed", secret="whsec_" + "A" * 32, max_attempts=3,
        backoff_s=1.0, http_post=post, pin_target=now_inward, render_job=lambda j: {"id": j.id},
    )  # fmt: skip
    db_session.commit()
    assert outcome.status == "refused"
    assert calls == []
    row = db_session.scalars(select(WebhookDelivery)).one()
    assert not row.succeeded
    assert row.error.startswith("refused:")


class Receiver:
    """A real HTTP(S) server on 127.0.0.1 that records each request's Host header and SNI."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        self.seen: list[dict[str, str | None]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                sni = getattr(self.connection, "genreflow_sni", None)
                receiver.seen.append({"host": self.headers["Host"], "path": self.path, "sni": sni})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls_dir is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")

            def remember_sni(sock: ssl.SSLSocket, name: str | None, _ctx: Any) -> None:
                sock.genreflow_sni = name  # type: ignore[attr-defined]

            context.sni_callback = remember_sni
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed(tmp_path: Path, name: str) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test's certificate)")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return tmp_path


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_delivery_connects_to_the_address_that_passed_the_check(
    tmp_path: Path, scheme: str
) -> None:
    # "hook.invalid" has no DNS answer at all: the request can only reach the receiver through
    # the address the check pinned, never through a second lookup.
    name = "hook.invalid"
    tls = self_signed(tmp_path, name) if scheme == "https" else None
    receiver = Receiver(tls)
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    url = f"{scheme}://{name}:{receiver.port}/hooks/genre?x=1"
    try:
        address = pin_webhook_target(url, allow_private=True, resolve=resolve)
        result = post_webhook(
            url, b"{}", {"content-type": "application/json"}, address=address,
            ca_certs=str(tls / "cert.pem") if tls else None,
        )  # fmt: skip
    finally:
        receiver.close()

    assert (address, lookups) == ("127.0.0.1", [name])
    assert result.succeeded, result
    expected_sni = name if scheme == "https" else None
    assert receiver.seen == [
        {"host": f"{name}:{receiver.port}", "path": "/hooks/genre?x=1", "sni": expected_sni}
    ]


def test_pinning_refuses_an_inward_answer_and_reports_no_answer() -> None:
    from shared.lifecycle.webhook_targets import UnresolvableHost

    with pytest.raises(WebhookTargetRefused):
        pin_webhook_target("http://h.example/x", allow_private=False,
                           resolve=lambda h, p: [ipaddress.ip_address("10.1.2.3")])  # fmt: skip

    def nothing(host: str, port: int) -> list[Any]:
        raise UnresolvableHost(host)

    with pytest.raises(UnresolvableHost):
        pin_webhook_target("http://h.example/x", allow_private=False, resolve=nothing)
