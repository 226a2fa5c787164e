"""``genreflow run`` brings the system up from an empty home and takes it down cleanly."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.integration.helpers import PROJECT_ROOT, poll, write_song
from tests.redis_server import free_port

pytestmark = pytest.mark.slow
READY_LINE = "genreflow is running at"


class Runner:
    """``python -m shared run`` in a fresh home, its output collected."""

    def __init__(self, home: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENREFLOW_")}
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
        env.update(GENREFLOW_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
        argv = [
            sys.executable, "-m", "shared", "run", "--port", str(port),
            "--web-workers", "1", "--predict-concurrency", "1",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, *, timeout_s: float = 90.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line with {text!r}; output:\n{self.output[-6000:]}")

    def wait(self, timeout_s: float = 60.0) -> int:
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    started = Runner(tmp_path / "home", free_port())
    yield started
    if started.process.poll() is None:
        started.process.send_signal(signal.SIGTERM)
        try:
            started.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            started.process.kill()


def redis_url_of(runner: Runner) -> str:
    line = runner.wait_for_line("genreflow: Redis on")
    match = re.search(r"redis://\S+", line)
    assert match, line
    return match.group(0)


def assert_redis_gone(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_run_serves_health_classifies_then_stops_on_sigint(
    runner: Runner, tmp_path: Path, integration_model: Path
) -> None:
    line = runner.wait_for_line(READY_LINE)
    url = line.split(READY_LINE, 1)[1].split()[0]
    redis_url = redis_url_of(runner)

    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
        assert response.status == 200
    assert "No model is active yet" in runner.output
    assert "demo-data var/demo" in runner.output
    assert "train var/demo" in runner.output
    runner.wait_for_line("predict@")  # the workers came up too
    runner.wait_for_line("train@")
    assert (tmp_path / "home" / "genreflow.sqlite3").is_file()
    # gunicorn's control socket lives in this home, so two services on one machine do not clash
    assert (tmp_path / "home" / "gunicorn.ctl").is_socket()
    # Messages speak of what the user set: nothing here set GENREFLOW_MODEL_DIR.
    assert "GENREFLOW_MODEL_DIR" not in runner.output
    assert "SecurityWarning" not in runner.output  # JSON-only workers: Celery's root warning

    # A model written into the model folder (as `genreflow train` does) is picked up...
    for sibling in integration_model.parent.glob(f"{integration_model.stem}.*"):
        shutil.copy(sibling, tmp_path / "home" / "models" / sibling.name)
    runner.wait_for_line(f"genreflow: active model {integration_model.stem}", timeout_s=20)
    # The predict worker loads it without a job; /ready says so.
    poll(
        lambda: requests.get(f"{url}/ready", timeout=10),
        done=lambda response: response.status_code == 200,
        timeout_s=60,
        interval_s=0.2,
    )
    assert "warm with model" in runner.output
    # ... and a song goes through the real server, Redis and worker processes.
    song = write_song(tmp_path / "e2e.wav", style="disco", seed=401)
    with song.open("rb") as handle:
        created = requests.post(f"{url}/api/v1/jobs", files={"file": handle}, timeout=30)
    assert created.status_code == 202, created.text
    job = poll(
        lambda: requests.get(f"{url}{created.headers['Location']}", timeout=10).json(),
        done=lambda job: job["status"] in {"done", "failed"},
        timeout_s=60,
        interval_s=0.2,
    )[-1]
    assert job["status"] == "done", job
    assert job["model_version"] == integration_model.stem

    runner.process.send_signal(signal.SIGINT)

    assert runner.wait() == 0, runner.output[-4000:]
    assert "genreflow: stopped" in runner.output
    assert_redis_gone(redis_url)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/health", timeout=2)


def test_run_stops_everything_when_a_child_dies(runner: Runner) -> None:
    runner.wait_for_line(READY_LINE)
    redis_url = redis_url_of(runner)

    # The server closes the connection as it exits.
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis.from_url(redis_url).shutdown(nosave=True)

    assert runner.wait() == 1, runner.output[-4000:]
    assert "the redis process exited" in runner.output
    assert "genreflow: stopped" in runner.output
