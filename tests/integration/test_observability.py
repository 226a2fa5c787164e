"""What is happening, seen from outside: /metrics counts the worker's jobs; its logs are JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shared.store.config import Settings
from tests.integration.conftest import WEBHOOK_SECRET
from tests.integration.helpers import (
    WorkerProcess,
    poll,
    submit_past_the_door,
    upload,
    wait_for_job,
    write_song,
)


def _samples(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_a_job_the_worker_finished(client: Any, tmp_path: Path) -> None:
    done = ("genreflow_jobs_total", (("status", "done"),))
    durations = ("genreflow_job_duration_seconds_count", ())
    before = _samples(client)
    job_id = upload(client, write_song(tmp_path / "song.wav", seed=11)).get_json()["id"]
    assert wait_for_job(client, job_id, timeout_s=90)[-1]["status"] == "done"
    after = _samples(client)
    assert after[done] == before[done] + 1
    assert after[durations] == before[durations] + 1
    assert after[("genreflow_queue_depth", (("queue", "predict"),))] == 0


def test_worker_log_lines_of_a_job_are_json_and_carry_its_id(
    client: Any, worker: WorkerProcess, tmp_path: Path, admin_headers: dict[str, str]
) -> None:
    job_id = upload(client, write_song(tmp_path / "song.wav", seed=12)).get_json()["id"]
    assert wait_for_job(client, job_id, timeout_s=90)[-1]["status"] == "done"
    records = []
    for line in worker.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    assert records, "the worker wrote no JSON lines"
    about_job = [r for r in records if job_id in r.get("message", "")]
    assert about_job, "no line about the job"
    assert all(r.get("job_id") == job_id for r in about_job), about_job
    assert any(r["logger"] == "shared.lifecycle.classification" for r in about_job)
    assert {"time", "level", "logger", "message"} <= set(about_job[0])


def test_worker_log_blanks_out_secrets_it_was_given(
    client: Any,
    worker: WorkerProcess,
    tmp_path: Path,
    admin_headers: dict[str, str],
    integration_settings: Settings,
) -> None:
    # A file named after the admin key and the webhook secret that the worker cannot decode:
    # the worker's failure line names the file, so the log does see both secrets.
    key = admin_headers["Authorization"].split()[1]
    bad = tmp_path / f"{key}-{WEBHOOK_SECRET}.mp3"
    bad.write_bytes(b"\x01\x02\x03garbage" * 500)
    job_id = submit_past_the_door(integration_settings, bad)
    assert wait_for_job(client, job_id, timeout_s=90)[-1]["status"] == "failed"

    lines = poll(
        lambda: [line for line in worker.log().splitlines() if job_id in line and "failed" in line],
        done=bool,
        timeout_s=10,
        interval_s=0.2,
    )[-1]
    assert any("[redacted]" in line for line in lines), lines
    log_text = worker.log()
    assert key not in log_text
    assert WEBHOOK_SECRET not in log_text
