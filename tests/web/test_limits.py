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
