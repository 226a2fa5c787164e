"""Helpers of the integration tests: uploads, polling, a webhook receiver, a worker process."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shared.core.learning.demo_data import synth_track, write_audio

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FINAL_JOB_STATUSES = {"done", "failed"}
FINAL_RUN_STATUSES = {"done", "failed", "skipped"}


def proc_stat(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command's name; None once it has gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parent_of(pid: int) -> int | None:
    """Return the id of ``pid``'s parent process, or None once it has gone."""
    fields = proc_stat(pid)
    return int(fields[1]) if fields else None


def children_of(pid: int) -> list[int]:
    """Return the ids of the processes whose parent is ``pid``."""
    running = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [child for child in running if parent_of(child) == pid]


def alive(pid: int) -> bool:
    """Return whether process ``pid`` exists and is not a zombie."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def write_song(path: Path, *, style: str = "metal", seconds: float = 9.0, seed: int = 0) -> Path:
    """Write a synthetic song (distinct per seed, so uploads are never deduplicated)."""
    return write_audio(path, synth_track(style, seconds=seconds, seed=seed))


def upload(client: Any, path: Path, *, webhook_url: str | None = None) -> Any:
    """POST ``path`` to ``/api/v1/jobs`` and return the response."""
    data: dict[str, Any] = {"file": (io.BytesIO(path.read_bytes()), path.name)}
    if webhook_url:
        data["webhook_url"] = webhook_url
    return client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")


def submit_past_the_door(settings: Any, path: Path, *, webhook_url: str | None = None) -> str:
    """Queue a job for ``path`` the way the API does, minus its audio probe; return the job id.

    The API refuses unreadable or short audio at upload; this reaches the worker's own checks.
    """
    import hashlib
    import shutil

    from shared.lifecycle.queues import QUEUE_PREDICT, TASK_CLASSIFY_SONG
    from shared.store.db import session_scope
    from shared.store.orm import Job, JobStatus
    from worker.celery_app import make_celery

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    stored = settings.upload_dir / f"{digest}{path.suffix}"
    shutil.copy(path, stored)
    with session_scope(settings.database_url) as session:
        job = Job(
            filename=path.name, upload_path=str(stored), content_sha256=digest,
            size_bytes=len(data), webhook_url=webhook_url, status=JobStatus.QUEUED.value,
            progress=0.0, attempts=0,
        )  # fmt: skip
        session.add(job)
        session.flush()
        job_id = job.id
    make_celery(settings).send_task(TASK_CLASSIFY_SONG, args=[job_id], queue=QUEUE_PREDICT)
    return job_id


def poll(
    fetch: Callable[[], dict[str, Any]],
    *,
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    interval_s: float = 0.02,
) -> list[dict[str, Any]]:
    """Call ``fetch`` until ``done(result)``; return every result seen (the last one is done).

    Raises
    ------
    TimeoutError
        With the last result, when ``timeout_s`` passes first.
    """
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        seen.append(fetch())
        if done(seen[-1]):
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not finished after {timeout_s} s: {seen[-1]}")
        time.sleep(interval_s)


def wait_for_job(client: Any, job_id: str, *, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """Poll a job until it is done or failed; return every state seen."""

    def fetch() -> dict[str, Any]:
        response = client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return poll(fetch, done=lambda job: job["status"] in FINAL_JOB_STATUSES, timeout_s=timeout_s)


def wait_for_run(client: Any, run_id: str, *, timeout_s: float = 120.0) -> dict[str, Any]:
    """Poll a training run until it ends; return its last state."""

    def fetch() -> dict[str, Any]:
        response = client.get(f"/api/v1/training-runs/{run_id}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return poll(
        fetch, done=lambda run: run["status"] in FINAL_RUN_STATUSES, timeout_s=timeout_s,
        interval_s=0.2,
    )[-1]  # fmt: skip


@dataclass
class ReceivedHook:
    """One request the webhook receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A local HTTP server recording POSTs and answering a scripted list of status codes.

    Parameters
    ----------
    statuses : list of int
        Answers to the first requests, in order; then 204.
    """

    statuses: list[int] = field(default_factory=list)
    received: list[ReceivedHook] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.received.append(ReceivedHook(dict(self.headers.items()), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """Where to send hooks."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def wait_for(self, n_requests: int, *, timeout_s: float = 20.0) -> list[ReceivedHook]:
        """Wait until ``n_requests`` requests arrived; return them."""
        deadline = time.monotonic() + timeout_s
        while len(self.received) < n_requests:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(self.received)} of {n_requests} webhook requests")
            time.sleep(0.05)
        return list(self.received)


class WorkerProcess:
    """A real ``celery worker`` subprocess, its output in a log file.

    Parameters
    ----------
    env : Mapping[str, str]
        Settings of the worker (``GENREFLOW_HOME``, ``DATABASE_URL``, ``REDIS_URL``...).
    log_path : Path
    queues : str
    """

    def __init__(
        self, env: Mapping[str, str], log_path: Path, *, queues: str, name: str = "itest"
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        argv = [
            sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
            "-Q", queues, "--pool", "prefork", "--concurrency", "1", "-n", f"{name}@%h",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        """Return the worker's output so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, *, timeout_s: float = 60.0) -> None:
        """Wait for the worker's ``ready.`` line."""
        deadline = time.monotonic() + timeout_s
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Warm-shut the worker down, then kill its process group if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()
