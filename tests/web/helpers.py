"""Small helpers of the service tests: reading Celery messages straight out of Redis."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis


def queued_tasks(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """Return the Celery messages waiting in the Redis list ``queue``, oldest first.

    Each item is ``{"task": name, "args": [...], "kwargs": {...}, "id": task_id}``.
    """
    tasks = []
    for raw in reversed(client.lrange(queue, 0, -1)):  # LPUSH: newest first
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, kwargs, _embed = json.loads(body)
        headers = message["headers"]
        tasks.append({"task": headers["task"], "args": args, "kwargs": kwargs, "id": headers["id"]})
    return tasks


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Check ``response`` is an ``application/problem+json`` error; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    assert body["type"].endswith(body["code"])
    assert body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body
