"""Chaos benchmark: what survives what. Starts ``genreflow run`` from scratch and breaks it.

    python benchmarks/chaos.py                 # every fault, 10 jobs each, a tiny demo model
    python benchmarks/chaos.py --faults redis,web --jobs 5 --model path/to/model.keras

In a temporary ``GENREFLOW_HOME`` it trains a tiny model on synthetic demo data (or copies
``--model``), starts the whole service (``genreflow run``: private Redis, web, predict and train
workers, beat, under supervisord) and a local webhook receiver. Then, for each fault, it uploads
``--jobs`` songs (each with a webhook), waits until one is being classified, injects the fault,
uploads ``--after`` more songs right away (retrying on 503 or a refused connection, as
``Retry-After`` asks), and polls until every accepted job has ended and its webhook arrived.

Faults:

- ``pool-children``: kill -9 of the predict worker's pool processes;
- ``worker-main``: kill -9 of the predict worker's main process;
- ``redis``: kill -9 of the private Redis;
- ``web``: kill -9 of the gunicorn master;
- ``whole-run``: kill -9 of every process of ``genreflow run`` at once, as a power cut would,
  then ``genreflow run`` again;
- ``postgres-restart`` (with ``--database postgres``): an immediate-mode restart, which is a
  crash, of a PostgreSQL server the benchmark starts for itself in the temporary home (the
  machine's shared server is never touched).

The default database is the embedded default, a SQLite file in the home.

Per fault it prints: jobs submitted (accepted), done, failed, lost (accepted, then gone),
stuck (not ended by the deadline), duplicate results, webhook events owed vs delivered (and
duplicate deliveries, which receivers drop by ``webhook-id``), the seconds from the fault until
``/ready`` answered 200 and until every job had ended. Goal: 0 lost, 0 stuck, all done within
60 s of the fault, ``/ready`` within 15 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xmlrpc.client
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script: the repository's tests/ helpers

from tests.postgres_server import PrivatePostgres  # noqa: E402 - after the path above

FAULTS = ("pool-children", "worker-main", "redis", "web", "whole-run")
PG_FAULT = "postgres-restart"
FINAL = {"done", "failed"}
GOAL_DONE_S = 60.0
GOAL_READY_S = 15.0


# --- the webhook receiver ---------------------------------------------------------------------


@dataclass
class Receiver:
    """A local HTTP server counting the webhook requests per ``webhook-id``."""

    received: Counter[str] = field(default_factory=Counter)
    server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        """Start serving; return the URL to give as ``webhook_url``."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.received[self.headers.get("webhook-id", "?")] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# --- the service ------------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """``genreflow run`` in a home, its output in ``home/run.log``."""

    home: Path
    port: int
    database_url: str | None = None
    postgres: PrivatePostgres | None = None
    process: subprocess.Popen[bytes] | None = None
    #: More environment for ``genreflow run`` (e.g. ``GENREFLOW_MIN_FREE_MB``).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Where ``run.log`` goes (default: the home), e.g. off a disk that a benchmark fills.
    log_dir: Path | None = None

    @property
    def url(self) -> str:
        """Base URL of the web server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start ``genreflow run`` (2 web workers, 2 predict processes)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENREFLOW_")}
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
        env.update(GENREFLOW_HOME=str(self.home), TF_CPP_MIN_LOG_LEVEL="2")
        env["GENREFLOW_WEBHOOK_ALLOW_PRIVATE"] = "1"  # the receiver listens on 127.0.0.1
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        argv = [sys.executable, "-m", "shared", "run", "--port", str(self.port),
                "--web-workers", "2", "--predict-concurrency", "2"]  # fmt: skip
        with ((self.log_dir or self.home) / "run.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Wait until ``/ready`` answers 200; return the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.25)
        raise SystemExit(f"/ready did not answer 200 in {timeout_s} s; see {self.home}/run.log")

    def rpc(self) -> Any:
        """Return supervisord's XML-RPC interface."""
        from supervisor.xmlrpc import SupervisorTransport

        sock = f"unix://{self.home / 'run' / 'supervisor.sock'}"
        return xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, sock)
        )

    def pid(self, program: str) -> int:
        """Return the pid of a supervised program."""
        return int(self.rpc().supervisor.getProcessInfo(program)["pid"])

    def stop(self) -> None:
        """Ctrl-C the service and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                kill_tree(self.process.pid)


def children_of(pid: int) -> list[int]:
    """Return the direct children of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def descendants_of(pid: int) -> list[int]:
    """Return every process below ``pid``."""
    out, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and all its descendants at once."""
    for target in [pid, *descendants_of(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


# --- jobs -------------------------------------------------------------------------------------


def upload(url: str, song: Path, hook: str, *, patience_s: float = 90.0) -> str | None:
    """Upload until accepted (retrying 503 and refused connections); return the job id."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        try:
            with song.open("rb") as handle:
                response = requests.post(
                    f"{url}/api/v1/jobs", files={"file": (song.name, handle, "audio/wav")},
                    data={"webhook_url": hook}, timeout=30,
                )  # fmt: skip
        except requests.RequestException:
            time.sleep(1.0)
            continue
        if response.status_code in (200, 202):
            return str(response.json()["id"])
        if response.status_code == 503:
            time.sleep(float(response.headers.get("Retry-After", "2")))
            continue
        raise SystemExit(f"upload refused: {response.status_code} {response.text[:300]}")
    return None


def job_states(url: str, ids: list[str]) -> dict[str, str]:
    """Return each job's status (``gone``: 404, ``unreachable``: the web does not answer)."""
    states = {}
    for job_id in ids:
        try:
            response = requests.get(f"{url}/api/v1/jobs/{job_id}", timeout=5)
        except requests.RequestException:
            states[job_id] = "unreachable"
            continue
        if response.status_code == 404:
            states[job_id] = "gone"
        elif response.status_code == 200:
            states[job_id] = response.json()["status"]
        else:
            states[job_id] = "unreachable"
    return states


def wait_processing(url: str, ids: list[str], timeout_s: float = 60.0) -> None:
    """Wait until one of the jobs is being classified past model loading."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for job_id in ids:
            with contextlib.suppress(requests.RequestException, ValueError):
                job = requests.get(f"{url}/api/v1/jobs/{job_id}", timeout=5).json()
                if job["status"] == "processing" and job["progress"] > 0.1:
                    return
        time.sleep(0.1)


def make_songs(folder: Path, n: int, *, seconds: float, first_seed: int) -> list[Path]:
    """Write ``n`` distinct synthetic songs (distinct bytes: no upload is deduplicated)."""
    from shared.core.learning.demo_data import synth_track, write_audio

    styles = ("classical", "disco", "metal")
    return [
        write_audio(folder / f"song-{seed}.wav",
                    synth_track(styles[seed % 3], seconds=seconds, seed=seed))
        for seed in range(first_seed, first_seed + n)
    ]  # fmt: skip


# --- faults -----------------------------------------------------------------------------------


def inject(fault: str, service: Service) -> None:
    """Break the service in the way ``fault`` names."""
    if fault == "pool-children":
        for child in children_of(service.pid("predict")):  # so the one in flight is hit
            os.kill(child, signal.SIGKILL)
    elif fault == "worker-main":
        os.kill(service.pid("predict"), signal.SIGKILL)
    elif fault == "redis":
        os.kill(service.pid("redis"), signal.SIGKILL)
    elif fault == "web":
        os.kill(service.pid("web"), signal.SIGKILL)
    elif fault == "whole-run":
        assert service.process is not None
        kill_tree(service.process.pid)
        service.process.wait()
        time.sleep(1.0)
        service.start()
    elif fault == PG_FAULT:
        assert service.postgres is not None
        service.postgres.restart()
    else:
        raise ValueError(fault)


@dataclass
class Row:
    """One line of the table."""

    fault: str
    submitted: int = 0
    done: int = 0
    failed: int = 0
    lost: int = 0
    stuck: int = 0
    duplicates: int = 0
    hooks_owed: int = 0
    hooks_made: int = 0
    hooks_dup: int = 0
    ready_s: float | None = None
    all_done_s: float | None = None

    @property
    def green(self) -> bool:
        """Whether the row meets the goal."""
        return (
            self.lost == 0 and self.stuck == 0 and self.failed == 0 and self.duplicates == 0
            and self.hooks_made == self.hooks_owed
            and self.all_done_s is not None and self.all_done_s <= GOAL_DONE_S
            and self.ready_s is not None and self.ready_s <= GOAL_READY_S
        )  # fmt: skip


def duplicate_results(database_url: str, ids: list[str]) -> int:
    """Count the extra prediction rows of these jobs (the schema allows one per job)."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(database_url)
    query = text(
        "SELECT COUNT(*) - COUNT(DISTINCT job_id) FROM predictions WHERE job_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    try:
        with engine.connect() as connection:
            return int(connection.execute(query, {"ids": ids}).scalar() or 0)
    finally:
        engine.dispose()


def run_fault(
    fault: str, service: Service, receiver: Receiver, hook: str, songs: list[Path],
    *, n_before: int, deadline_s: float,
) -> Row:  # fmt: skip
    """Submit, break, submit more, and measure one fault."""
    from shared.lifecycle.webhooks import EVENT_COMPLETED, EVENT_FAILED, message_id_for

    row = Row(fault)
    ids = [job for song in songs[:n_before] if (job := upload(service.url, song, hook))]
    wait_processing(service.url, ids)
    t_fault = time.monotonic()
    inject(fault, service)
    ready: dict[str, float] = {}

    def watch_ready() -> None:
        while time.monotonic() - t_fault < deadline_s:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{service.url}/ready", timeout=1).status_code == 200:
                    ready["s"] = time.monotonic() - t_fault
                    return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_ready, daemon=True)
    watcher.start()
    for song in songs[n_before:]:
        job_id = upload(service.url, song, hook, patience_s=deadline_s)
        if job_id:
            ids.append(job_id)
    row.submitted = len(ids)
    states: dict[str, str] = {}
    while time.monotonic() - t_fault < deadline_s:
        states = job_states(service.url, ids)
        owed = [j for j, s in states.items() if s in FINAL]
        delivered = sum(
            1 for j in owed
            if receiver.received[message_id_for(j, EVENT_COMPLETED)]
            or receiver.received[message_id_for(j, EVENT_FAILED)]
        )  # fmt: skip
        if len(owed) == len(ids):
            row.all_done_s = row.all_done_s or time.monotonic() - t_fault
            if delivered == len(owed):
                break
        time.sleep(0.5)
    watcher.join(timeout=1)
    row.ready_s = ready.get("s")
    counts = Counter(states.values())
    row.done, row.failed = counts["done"], counts["failed"]
    row.lost = counts["gone"]
    row.stuck = len(ids) - row.done - row.failed - row.lost
    database = service.database_url or f"sqlite:///{service.home / 'genreflow.sqlite3'}"
    row.duplicates = duplicate_results(database, ids)
    finished = [j for j, s in states.items() if s in FINAL]
    row.hooks_owed = len(finished)
    for job_id in finished:
        event = EVENT_COMPLETED if states[job_id] == "done" else EVENT_FAILED
        n = receiver.received[message_id_for(job_id, event)]
        row.hooks_made += n > 0
        row.hooks_dup += max(0, n - 1)
    return row


def print_table(rows: list[Row], *, database: str) -> None:
    """Print the result table (Markdown)."""
    head = ("fault", "submitted", "done", "failed", "lost", "stuck", "dup. results",
            "webhooks owed/made (dup.)", "/ready after", "all done after", "goal")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        ready = f"{r.ready_s:.1f} s" if r.ready_s is not None else "never"
        done = f"{r.all_done_s:.1f} s" if r.all_done_s is not None else "not all"
        cells = (r.fault, r.submitted, r.done, r.failed, r.lost, r.stuck, r.duplicates,
                 f"{r.hooks_owed}/{r.hooks_made} ({r.hooks_dup})", ready, done,
                 "met" if r.green else "MISSED")  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")
    if database == "sqlite":
        print("| postgres-restart | - | - | - | - | - | - | - | - | - | not run: SQLite |")


def train_tiny_model(folder: Path) -> Path:
    """Train a small model on synthetic demo data (3 genres, seconds of CPU)."""
    from shared.core.learning.demo_data import write_demo_dataset
    from shared.core.learning.training import TrainOptions, train_from_folder

    data = folder / "demo"
    write_demo_dataset(data, genres=("classical", "disco", "metal"), tracks_per_genre=5,
                       seconds=9.0, seed=7)  # fmt: skip
    options = TrainOptions(epochs=10, patience=10, valid_fraction=0.2, test_fraction=0.2,
                           cache_dir=str(folder / "cache"), progress_bar=False)  # fmt: skip
    return train_from_folder(data, folder / "trained", options=options).model_path


def main(argv: list[str] | None = None) -> int:
    """Run the chosen faults and print the table; exit 1 when a row misses the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated")
    parser.add_argument("--jobs", type=int, default=10, help="songs uploaded before the fault")
    parser.add_argument("--after", type=int, default=3, help="songs uploaded after it")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each song")
    parser.add_argument("--deadline", type=float, default=150.0, help="seconds per fault")
    parser.add_argument("--model", type=Path, help="a .keras model (default: train a tiny one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument(
        "--database", choices=("sqlite", "postgres"), default="sqlite",
        help="sqlite (the embedded default) or a private PostgreSQL server (adds its restart)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    if args.database == "postgres" and args.faults == ",".join(FAULTS):
        faults.append(PG_FAULT)
    allowed = {*FAULTS, PG_FAULT} if args.database == "postgres" else set(FAULTS)
    unknown = set(faults) - allowed
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {sorted(allowed)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    root = Path(tempfile.mkdtemp(prefix="genreflow-chaos-"))
    home = root / "home"
    (home / "models").mkdir(parents=True)
    print(f"home: {home}", flush=True)
    model = args.model or train_tiny_model(root)
    for sibling in model.parent.glob(f"{model.stem}.*"):
        shutil.copy(sibling, home / "models" / sibling.name)
    per_fault = args.jobs + args.after
    songs = make_songs(root, per_fault * len(faults) + 1, seconds=args.seconds, first_seed=1000)

    receiver = Receiver()
    hook = receiver.start()
    service = Service(home, free_port())
    rows: list[Row] = []
    try:
        if args.database == "postgres":
            service.postgres = PrivatePostgres(root / "postgres", free_port())
            service.database_url = service.postgres.start()
        service.start()
        print(f"service up after {service.wait_ready():.1f} s", flush=True)
        warm = upload(service.url, songs[-1], hook)  # load the model once before the faults
        while warm and job_states(service.url, [warm])[warm] not in FINAL:
            time.sleep(0.5)
        for index, fault in enumerate(faults):
            batch = songs[index * per_fault : (index + 1) * per_fault]
            row = run_fault(fault, service, receiver, hook, batch,
                            n_before=args.jobs, deadline_s=args.deadline)  # fmt: skip
            rows.append(row)
            print(f"{fault}: {row}", flush=True)
            service.wait_ready()
    finally:
        service.stop()
        receiver.stop()
        if service.postgres is not None:
            service.postgres.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"database: {args.database}")
    print_table(rows, database=args.database)
    return 0 if all(r.green for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
