"""Signed webhooks delivered by the real worker to a local HTTP receiver."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from shared.store.config import Settings
from tests.integration.conftest import WEBHOOK_SECRET
from tests.integration.helpers import (
    WebhookReceiver,
    poll,
    submit_past_the_door,
    upload,
    wait_for_job,
    write_song,
)


def deliveries(client: Any, job_id: str, n_expected: int) -> list[dict[str, Any]]:
    """Poll a job's deliveries until ``n_expected`` are recorded."""

    def fetch() -> dict[str, Any]:
        return client.get(f"/api/v1/jobs/{job_id}/deliveries").get_json()

    return poll(fetch, done=lambda page: len(page["items"]) >= n_expected, timeout_s=20)[-1][
        "items"
    ]


def test_webhook_is_signed_and_retried_after_a_500(client: Any, tmp_path: Path) -> None:
    song = write_song(tmp_path / "hooked.wav", style="metal", seed=201)
    with WebhookReceiver(statuses=[500]) as receiver:
        job_id = upload(client, song, webhook_url=receiver.url).get_json()["id"]
        job = wait_for_job(client, job_id)[-1]
        first, second = receiver.wait_for(2)
        time.sleep(0.3)  # a third request would be a bug
        assert len(receiver.received) == 2

    for hook in (first, second):
        event = Webhook(WEBHOOK_SECRET).verify(hook.body, hook.headers)
        assert event["type"] == "job.completed"
        assert event["data"]["id"] == job_id
        assert event["data"]["status"] == "done"
        assert event["data"]["result"]["genre"] == job["result"]["genre"]
        assert event["timestamp"] == job["finished_at"]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body

    rows = deliveries(client, job_id, 2)
    assert [(r["attempt"], r["status_code"], r["succeeded"]) for r in rows] == [
        (1, 500, False),
        (2, 204, True),
    ]
    assert rows[0]["error"] == "HTTP 500"
    assert rows[1]["error"] is None
    assert {r["message_id"] for r in rows} == {first.headers["webhook-id"]}
    assert all(r["event_type"] == "job.completed" and r["duration_ms"] >= 0 for r in rows)
    assert rows[1]["created_at"] >= rows[0]["created_at"]


def test_failed_job_announces_job_failed(
    client: Any, tmp_path: Path, integration_settings: Settings
) -> None:
    bad = tmp_path / "noise.mp3"
    bad.write_bytes(b"\x01\x02\x03garbage" * 500)
    with WebhookReceiver() as receiver:
        job_id = submit_past_the_door(integration_settings, bad, webhook_url=receiver.url)
        assert wait_for_job(client, job_id)[-1]["status"] == "failed"
        (hook,) = receiver.wait_for(1)

    event = Webhook(WEBHOOK_SECRET).verify(hook.body, hook.headers)
    assert event["type"] == "job.failed"
    assert event["data"]["error"]["code"] == "invalid_audio"
    assert json.loads(hook.body) == event


def test_unreachable_receiver_gives_up_after_the_last_attempt(client: Any, tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        dead_url = receiver.url  # closed on exit: nothing listens there any more
    song = write_song(tmp_path / "lonely.wav", style="classical", seed=202)

    job_id = upload(client, song, webhook_url=dead_url).get_json()["id"]
    assert wait_for_job(client, job_id)[-1]["status"] == "done"

    rows = deliveries(client, job_id, 3)  # GENREFLOW_WEBHOOK_MAX_ATTEMPTS=3 in these tests
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert not any(r["succeeded"] for r in rows)
    assert all(r["status_code"] is None and "Connection" in r["error"] for r in rows)
    time.sleep(2.5)  # past the next backoff (0.5 s, 1 s, 2 s): no fourth attempt
    assert len(client.get(f"/api/v1/jobs/{job_id}/deliveries").get_json()["items"]) == 3
