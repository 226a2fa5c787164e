"""Upload limits on the real Redis: 429 with Retry-After once a caller or address is over."""

from __future__ import annotations

import io
from typing import Any

from shared.store.config import Settings
from tests.web.conftest import make_key, wav_bytes
from tests.web.helpers import assert_problem
from tests.web.test_auth import bearer, upload


def _app(settings: Settings) -> Any:
    from web import create_app

    return create_app(settings, config={"TESTING": True})


def test_uploads_per_minute_then_429_with_retry_after(
    settings: Settings, redis_client: Any, active_model: str
) -> None:
    client = _app(settings.replace(uploads_per_minute=3)).test_client()
    assert [upload(client).status_code for _ in range(3)] == [202, 202, 202]
    response = upload(client)
    body = assert_problem(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "GENREFLOW_UPLOADS_PER_MINUTE" in body["detail"]
    assert client.get("/api/v1/jobs").status_code == 200  # reading is not limited


def test_an_accepted_upload_says_what_is_left_and_carries_no_retry_after(
    settings: Settings, redis_client: Any, active_model: str
) -> None:
    client = _app(settings.replace(uploads_per_minute=3)).test_client()
    remaining = []
    for _ in range(2):
        response = upload(client)
        assert response.status_code == 202
        assert "Retry-After" not in response.headers
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [2, 1]


def test_a_503_under_the_limits_keeps_its_own_retry_after(
    settings: Settings, redis_client: Any
) -> None:
    """No active model: the 503's Retry-After (5 s) is not stretched to the limit's window."""
    response = upload(_app(settings).test_client())
    assert_problem(response, 503, "no_active_model")
    assert response.headers["Retry-After"] == "5"
    assert "X-RateLimit-Remaining" in response.headers  # the upload still counted


def test_the_limit_is_per_address_too_not_only_per_key(
    settings: Settings, redis_client: Any, active_model: str
) -> None:
    client = _app(settings.replace(uploads_per_minute=2)).test_client()
    keys = [bearer(make_key(settings, "classify")) for _ in range(3)]
    assert upload(client, keys[0]).status_code == 202
    assert upload(client, keys[1]).status_code == 202
    assert_problem(upload(client, keys[2]), 429, "rate_limited")  # same address
    other = {"REMOTE_ADDR": "198.51.100.9"}
    assert upload(client, keys[2], environ_base=other).status_code == 202


def test_bytes_per_hour(settings: Settings, redis_client: Any, active_model: str) -> None:
    client = _app(settings.replace(upload_mb_per_hour=1, uploads_per_minute=1000)).test_client()
    song = wav_bytes(4.0)  # 64 KiB: 16 of them fill the 1 MiB an hour
    statuses = [
        client.post(
            "/api/v1/jobs",
            data={"file": (io.BytesIO(song), f"song{i}.wav")},
            content_type="multipart/form-data",
        ).status_code
        for i in range(20)
    ]
    first_refusal = statuses.index(429)
    assert 14 <= first_refusal <= 16, statuses
    assert set(statuses[:first_refusal]) <= {200, 202}
    assert set(statuses[first_refusal:]) == {429}


def test_behind_trusted_proxies_the_limits_count_clients_not_the_proxy(
    settings: Settings, redis_client: Any, active_model: str
) -> None:
    proxy = {"REMOTE_ADDR": "10.0.0.5"}  # every request arrives from the one proxy

    def from_client(client: Any, chain: str) -> int:
        # A fresh key each time, so only the per-address count can refuse.
        headers = {"X-Forwarded-For": chain, **bearer(make_key(settings, "classify"))}
        return upload(client, headers, environ_base=proxy).status_code

    behind = _app(settings.replace(uploads_per_minute=2, proxy_hops=1)).test_client()
    assert [from_client(behind, "198.51.100.1") for _ in range(2)] == [202, 202]
    assert from_client(behind, "198.51.100.1") == 429
    # Another client behind the same proxy has its own count...
    assert from_client(behind, "198.51.100.2") == 202
    # ... and a client cannot pose as another: only the hop the proxy added is trusted.
    assert from_client(behind, "198.51.100.3, 198.51.100.1") == 429

    redis_client.flushdb()
    direct = _app(settings.replace(uploads_per_minute=2)).test_client()  # no proxy trusted
    statuses = [from_client(direct, f"198.51.100.{i}") for i in range(10, 13)]
    assert statuses == [202, 202, 429]  # the header is ignored: one address, one count


def test_behind_a_proxy_a_remote_client_is_not_taken_for_loopback(
    settings: Settings, redis_client: Any, active_model: str
) -> None:
    # The proxy runs on this host, so without ProxyFix every request would come from loopback
    # and pass as an anonymous local caller.
    client = _app(settings.replace(proxy_hops=1)).test_client()
    local_proxy = {"REMOTE_ADDR": "127.0.0.1"}

    remote = upload(client, {"X-Forwarded-For": "203.0.113.7"}, environ_base=local_proxy)

    assert_problem(remote, 401, "unauthorized")
