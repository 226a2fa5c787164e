"""The web process's log lines about a job carry its id (JSON format)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from tests.web.test_auth import upload


def test_an_upload_logs_a_json_line_with_the_job_id(client: Any, active_model: str) -> None:
    from shared.logs import configure_logging

    stream = io.StringIO()
    handler = configure_logging("json", stream=stream)
    try:
        job = upload(client).get_json()
        client.get(f"/api/v1/jobs/{job['id']}")
    finally:
        logging.getLogger().removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    accepted = [r for r in records if "accepted" in r["message"]]
    assert accepted, records
    assert accepted[0]["job_id"] == job["id"]
    assert all(r.get("job_id") == job["id"] for r in records if job["id"] in r["message"])
