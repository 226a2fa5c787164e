"""The soak benchmark's history check, on the history a real smoke run of the service left.

``data/soak_smoke_history.json`` is ``history.json`` of ``benchmarks/soak.py --minutes 4 --json
--database postgres`` (genreflow run on a private PostgreSQL, every single-host fault), its
process samples thinned. It is the run that found an upload answered 500 right after the
PostgreSQL restart (now 503 ``database_unavailable``). A run takes minutes (the service alone
needs 30 s to 2 min to be ready on the development VM), so the suite checks the verdict on what
such a run produced: that 500 found, the rest clean, and each kind of breakage, made in a copy
of it, counted where it belongs.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "soak_smoke_history.json"


def load_history_module() -> ModuleType:
    """Import ``benchmarks/soak_history.py`` (the benchmarks folder is no package)."""
    spec = importlib.util.spec_from_file_location("soak_history", ROOT / "benchmarks" /
                                                  "soak_history.py")  # fmt: skip
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("soak_history", module)
    spec.loader.exec_module(module)
    return module


history = load_history_module()


def recorded() -> dict[str, Any]:
    """Return a fresh copy of the real run's history, as it was."""
    return copy.deepcopy(json.loads(DATA.read_text()))


@pytest.fixture
def run() -> dict[str, Any]:
    """Return the real run's history without the upload answered 500 (clean, then)."""
    history_ = recorded()
    history_["client"] = [r for r in history_["client"] if r["status"] != 500]
    return history_


def verdict_of(run: dict[str, Any]) -> Any:
    return history.check_history(run["client"], run["receiver"], run["jobs"], run["done_lines"])


def a_done_job(run: dict[str, Any]) -> str:
    accepted = history.accepted_uploads(run["client"])
    return next(j for j in accepted if run["jobs"][j]["status"] == "done")


def test_the_real_run_found_the_500_after_the_postgres_restart() -> None:
    as_run = recorded()
    verdict = verdict_of(as_run)
    assert verdict.undocumented_refusals == 1
    assert not verdict.clean
    refused = next(r for r in as_run["client"] if r["status"] == 500)
    restart = next(f for f in as_run["faults"] if f["fault"] == "postgres-restart")
    assert 0 < refused["t0"] - restart["t"] < 5
    assert verdict.examples["undocumented_refusals"] == [f"{refused['song']} 500"]


def test_without_that_500_the_real_run_is_clean_and_fully_counted(run: dict[str, Any]) -> None:
    verdict = verdict_of(run)
    answered = {r["id"] for r in run["client"] if r["status"] in (200, 202)}
    assert verdict.accepted == len(answered) > 10
    assert (verdict.lost, verdict.duplicates, verdict.stuck, verdict.undelivered) == (0, 0, 0, 0)
    assert verdict.done + verdict.failed_bad + verdict.failed_good == verdict.accepted
    assert verdict.clean
    assert verdict.deliveries == len(run["receiver"])
    faults = {f["fault"] for f in run["faults"]}
    assert {"worker-main", "pool-mid-song", "web-term", "redis-restart", "disk-full",
            "postgres-restart"} <= faults  # fmt: skip
    assert verdict.refused["507"] > 0  # the full disk refused uploads, as documented


def test_a_job_that_vanished_before_it_ended_is_lost(run: dict[str, Any]) -> None:
    job_id = a_done_job(run)
    del run["jobs"][job_id]
    assert verdict_of(run).lost == 1
    assert not verdict_of(run).clean


def test_a_job_removed_by_retention_after_it_ended_is_not_lost(run: dict[str, Any]) -> None:
    run["jobs"][a_done_job(run)]["gone"] = True
    assert verdict_of(run).lost == 0


def test_a_job_still_processing_after_the_drain_is_stuck(run: dict[str, Any]) -> None:
    run["jobs"][a_done_job(run)]["status"] = "processing"
    verdict = verdict_of(run)
    assert verdict.stuck == 1
    assert verdict.undelivered == 0  # a job that has not ended owes no webhook yet


def test_a_job_finished_twice_is_a_duplicate(run: dict[str, Any]) -> None:
    first, second = [j for j in history.accepted_uploads(run["client"])][:2]
    run["done_lines"][first] = 2
    run["jobs"][second]["n_results"] = 2
    assert verdict_of(run).duplicates == 2


def test_an_event_never_answered_2xx_is_undelivered(run: dict[str, Any]) -> None:
    job_id = a_done_job(run)
    for record in run["receiver"]:
        if record["job_id"] == job_id:
            record["answer"] = 500
    verdict = verdict_of(run)
    assert verdict.undelivered == 1
    assert verdict.examples["undelivered"] == [f"{job_id} job.completed"]


def test_redeliveries_must_carry_one_webhook_id(run: dict[str, Any]) -> None:
    record = copy.deepcopy(run["receiver"][0])
    record["webhook_id"] = "msg_another"
    run["receiver"].append(record)
    verdict = verdict_of(run)
    assert verdict.id_mismatches == 1
    assert not verdict.clean


def test_a_good_song_that_failed_is_not_clean(run: dict[str, Any]) -> None:
    job_id = a_done_job(run)
    run["jobs"][job_id].update(status="failed", error_code="invalid_audio")
    for record in run["receiver"]:
        if record["job_id"] == job_id:
            record["type"] = "job.failed"
    verdict = verdict_of(run)
    assert verdict.failed_good == 1
    assert verdict.undelivered == 0
    assert not verdict.clean


def test_refusals_and_rows_left_behind(run: dict[str, Any]) -> None:
    run["client"].append({"song": "x.mp3", "bad": False, "status": 503, "id": "refused-1",
                          "code": "queue_unavailable", "t0": run["t0"]})  # fmt: skip
    run["jobs"]["refused-1"] = {"status": "failed", "error_code": "queue_unavailable"}
    assert verdict_of(run).undocumented_rows == 0  # 503 keeps a failed row, as documented
    run["jobs"]["refused-1"]["status"] = "done"
    assert verdict_of(run).undocumented_rows == 1
    run["jobs"]["nobody-asked"] = {"status": "done", "error_code": None}
    assert verdict_of(run).orphan_rows == 1
    run["client"].append({"song": "y.mp3", "bad": False, "status": 500, "t0": run["t0"]})
    assert verdict_of(run).undocumented_refusals == 1


def test_windows_count_every_accepted_job_once(run: dict[str, Any]) -> None:
    rows = history.windows(run["client"], run["jobs"], run["queue"], run["faults"],
                           t0=run["t0"], end=run["t_end"], width_s=60)  # fmt: skip
    assert sum(r["accepted"] for r in rows) == verdict_of(run).accepted
    assert sum(len(r["faults"]) for r in rows) == len(run["faults"])
    for row in rows:
        if not math.isnan(row["p99_s"]):
            assert 0 < row["p50_s"] <= row["p99_s"]


def test_growth_is_fitted_per_process_after_it_settled() -> None:
    samples = [{"t": t, "pid": 7, "label": "predict main", "rss_mb": 100 + 5 * t / 3600,
                "fds": 40} for t in range(0, 3600, 30)]  # fmt: skip
    samples += [{"t": t, "pid": 8, "label": "web master", "rss_mb": 30, "fds": 5}
                for t in range(0, 900, 30)]  # fmt: skip
    fits = history.growth(samples)
    assert fits["predict main"]["rss_mb_per_h"] == pytest.approx(5.0)
    assert fits["predict main"]["fds_per_h"] == pytest.approx(0.0)
    assert fits["web master"]["rss_mb_per_h"] is None  # 15 minutes: too short after settling


def test_the_real_runs_processes_are_sampled_with_labels(run: dict[str, Any]) -> None:
    labels = {s["label"] for s in run["processes"]}
    assert {"predict main", "predict pool process", "web master", "redis"} <= labels
    assert all(s["rss_mb"] > 0 and s["fds"] > 0 for s in run["processes"])


def test_recheck_reports_a_runs_history_with_one_json_line_last(tmp_path: Path) -> None:
    import shutil
    import subprocess

    shutil.copy(DATA, tmp_path / "history.json")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--recheck", str(tmp_path),
         "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]  # the 500 makes the run not clean
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"accepted", "lost", "duplicates", "stuck", "undelivered"} <= set(last)
    assert (last["lost"], last["duplicates"], last["stuck"], last["undelivered"]) == (0, 0, 0, 0)
    assert last["accepted"] == verdict_of(recorded()).accepted
    assert "| window (min) |" in done.stdout
    assert (tmp_path / "report.json").is_file()
    assert (tmp_path / "soak.png").stat().st_size > 10_000
