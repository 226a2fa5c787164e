"""Warm predict workers: the model is loaded as a pool process starts, not in its first job."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.lifecycle.warmth import warm_versions
from shared.store.config import Settings
from shared.store.db import session_scope
from shared.store.registry import activate_version, active_model, register_model
from tests.integration.helpers import WorkerProcess, parent_of, upload, wait_for_job, write_song


def wait_until(condition: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture
def predict_worker(
    worker_env: dict[str, str], tmp_path: Path, worker: WorkerProcess
) -> Iterator[WorkerProcess]:
    """Yield a second, predict-only worker (the session's one also trains)."""
    process = WorkerProcess(worker_env, tmp_path / "predict.log", queues="predict", name="warm")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def warm_pids(client: redis.Redis, version: str) -> set[int]:
    return {int(wid.rsplit(":", 1)[1]) for wid, v in warm_versions(client).items() if v == version}


def test_pool_process_is_warm_before_its_first_job_and_has_no_tensorflow(
    client: Any,
    integration_settings: Settings,
    predict_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    with session_scope(integration_settings.database_url) as session:
        version = active_model(session).version
    broker = redis.Redis.from_url(integration_settings.redis_url)
    main_pid = predict_worker.process.pid
    mine = wait_until(
        lambda: [p for p in warm_pids(broker, version) if parent_of(p) == main_pid],
        timeout_s=60,
        what="a warm key from the predict-only worker's pool process",
    )
    assert client.get("/ready").status_code == 200
    log = predict_worker.log()
    assert "warm with model" in log
    assert "received" not in log  # warm before any task reached it

    # The process that holds the model serves it with ONNX Runtime, without TensorFlow.
    maps = Path(f"/proc/{mine[0]}/maps").read_text()
    assert "onnxruntime" in maps
    # OpenVINO (the AudioSet ear's runtime) maps its own TensorFlow *frontend* library, which
    # reads TF graphs without TensorFlow; TensorFlow itself must not be there
    tensorflow = [line for line in maps.splitlines() if "tensorflow" in line]
    assert not [line for line in tensorflow if "openvino" not in line], tensorflow[:3]

    song = write_song(tmp_path / "first.wav", style="metal", seconds=9.0, seed=7)
    job = wait_for_job(client, upload(client, song).get_json()["id"], timeout_s=60)[-1]
    assert job["status"] == "done", job


def test_a_newly_activated_model_is_loaded_without_a_job(
    client: Any,
    integration_settings: Settings,
    predict_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    with session_scope(integration_settings.database_url) as session:
        old = active_model(session)
        old_version, old_path = old.version, Path(old.path)
    broker = redis.Redis.from_url(integration_settings.redis_url)
    wait_until(lambda: warm_pids(broker, old_version), timeout_s=60, what="a warm worker")

    new_version = f"{old_version}-copy"
    new_dir = tmp_path / "models"
    new_dir.mkdir()
    for sibling in old_path.parent.glob(f"{old_path.stem}.*"):
        shutil.copy(sibling, new_dir / sibling.name.replace(old_path.stem, new_version))
    sidecar = new_dir / f"{new_version}.json"
    meta = json.loads(sidecar.read_text())
    meta["version"] = new_version
    meta.get("served", {})["file"] = f"{new_version}.onnx"
    sidecar.write_text(json.dumps(meta))
    try:
        with session_scope(integration_settings.database_url) as session:
            register_model(session, new_dir / f"{new_version}.keras", activate=True)
        # No worker holds the new model yet (loading it takes far longer than this request):
        # /ready says so, and that the worker is the only thing missing.
        waiting = client.get("/ready")
        assert waiting.status_code == 503, waiting.get_json()
        assert waiting.get_json()["failed"] == ["worker"]
        assert waiting.get_json()["checks"]["worker"]["detail"].startswith("warming up")
        wait_until(
            lambda: warm_pids(broker, new_version),
            timeout_s=30,
            what=f"a worker holding {new_version}",
        )
        assert client.get("/ready").status_code == 200
        assert "received" not in predict_worker.log()
    finally:
        with session_scope(integration_settings.database_url) as session:
            activate_version(session, old_version)
