"""The soak benchmark's service on one host, its faults, and the probes that sample it.

:class:`SingleHost` is ``genreflow run`` as ``chaos.py`` starts it (``chaos.Service``), with
short retention and, as root, its upload folder on a tmpfs that the ``disk-full`` fault fills.
:class:`Probes` samples every few seconds: each service process's RSS and open files, Redis's
used memory and queue depth, the database's and the upload folder's size, and every job row.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from chaos import Service, children_of, free_port
from load import descendants, label

from tests.postgres_server import PrivatePostgres

MIB: Final = 1024 * 1024
#: How long the ``disk-full`` fault keeps the upload disk at its threshold.
DISK_HOLD_S: Final = 45.0


class ServiceHandle(Protocol):
    """What the soak needs of a running genreflow, on one host or several."""

    url: str
    receiver_host: str
    headers: dict[str, str]
    log_dir: Path
    database_url: str
    upload_dir: Path
    faults: frozenset[str]

    def start(self) -> None:
        """Start everything and wait until ``/ready``."""

    def stop(self) -> None:
        """Stop everything this handle started."""

    def inject(self, fault: str) -> str:
        """Inject ``fault``; return what was done."""

    def process_roots(self) -> list[int]:
        """Return the pids whose process trees are the service."""

    def root_labels(self) -> dict[int, str]:
        """Return names for the roots (else each process is named by its command line)."""

    def redis_url(self) -> str | None:
        """Return the Redis URL (``None`` while unknown)."""

    def db_size_mb(self) -> float | None:
        """Return the database's size on disk."""


def folder_mb(folder: Path) -> float:
    """Return the bytes of the files in ``folder`` (not below), in MiB."""
    total = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat().st_size
    return total / MIB


def postgres_size_mb(database_url: str) -> float | None:
    """Return ``pg_database_size`` of the database, in MiB."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            size = connection.execute(text("SELECT pg_database_size(current_database())"))
            return int(size.scalar() or 0) / MIB
    except Exception:
        return None
    finally:
        engine.dispose()


def busiest(pids: list[int], *, over_s: float = 0.5) -> int | None:
    """Return the pid that used the most CPU over ``over_s`` (the one mid-song)."""

    def ticks(pid: int) -> int:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        return 0

    before = {pid: ticks(pid) for pid in pids}
    time.sleep(over_s)
    used = {pid: ticks(pid) - before[pid] for pid in pids}
    return max(used, key=lambda pid: used[pid]) if used else None


def fill_disk(mount: Path, *, leave_mb: float, hold_s: float = DISK_HOLD_S) -> str:
    """Fill the filesystem at ``mount`` to ``leave_mb`` free, hold it ``hold_s``, free it."""
    filler = mount / "filler.bin"
    leave = int(leave_mb * MIB)
    with filler.open("wb") as out:
        while (free := shutil.disk_usage(mount).free) > leave:
            out.write(b"\0" * int(min(16 * MIB, max(4096, free - leave))))
    free_mb = shutil.disk_usage(mount).free / MIB
    time.sleep(hold_s)
    filler.unlink()
    return f"upload disk filled to {free_mb:.0f} MiB free for {hold_s:.0f} s, freed"


def wait_processing(database_url: str, *, timeout_s: float = 90.0) -> float:
    """Wait until a job is being classified (past loading); return the seconds waited."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    started = time.time()
    query = text("SELECT COUNT(*) FROM jobs WHERE status = 'processing' AND progress > 0.05")
    try:
        while time.time() - started < timeout_s:
            with contextlib.suppress(Exception), engine.connect() as connection:
                if connection.execute(query).scalar():
                    break
            time.sleep(0.2)
    finally:
        engine.dispose()
    return time.time() - started


class SingleHost:
    """``genreflow run`` in a temporary home: SQLite or a private PostgreSQL."""

    def __init__(self, root: Path, args: Any) -> None:
        self.root, self.args = root, args
        home = root / "home"
        home.mkdir(parents=True)
        self.postgres: PrivatePostgres | None = None
        self.tmpfs: Path | None = None
        self.upload_dir = home / "uploads"
        self.disk_reason = ""
        if os.geteuid() == 0 and shutil.which("mount"):
            self.tmpfs = root / "updisk"
            self.tmpfs.mkdir()
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.disk_mb}m", "tmpfs",
                            str(self.tmpfs)], check=True)  # fmt: skip
            self.upload_dir = self.tmpfs / "uploads"
        else:
            self.disk_reason = "the upload disk is a tmpfs, which needs root to mount"
        days = args.retention_min / 1440
        env = {
            "GENREFLOW_UPLOAD_DIR": str(self.upload_dir),
            "GENREFLOW_AUDIO_RETENTION_DAYS": f"{days:.6f}",
            "GENREFLOW_RESULT_RETENTION_DAYS": f"{days:.6f}",
            "GENREFLOW_RETENTION_SWEEP_S": "60",
            "GENREFLOW_WEBHOOK_BACKOFF_S": "5",
            "GENREFLOW_MIN_FREE_MB": str(args.min_free_mb),
            "GENREFLOW_UPLOADS_PER_MINUTE": "100000",
            "GENREFLOW_UPLOAD_MB_PER_HOUR": "1000000",
        }
        self.service = Service(home, free_port(), extra_env=env)
        self.url = self.service.url
        self.receiver_host = "127.0.0.1"
        self.headers: dict[str, str] = {}  # keyless: the client is on loopback
        self.log_dir = home / "logs"
        faults = {"worker-main", "pool-mid-song", "web-term", "redis-restart"}
        if self.tmpfs is not None:
            faults.add("disk-full")
        if args.database == "postgres":
            faults.add("postgres-restart")
        self.faults = frozenset(faults)
        self.database_url = f"sqlite:///{home / 'genreflow.sqlite3'}"

    def start(self) -> None:
        """Start PostgreSQL (when asked for) and ``genreflow run``; wait for ``/ready``."""
        if self.args.database == "postgres":
            self.postgres = PrivatePostgres(self.root / "postgres", free_port())
            self.database_url = self.postgres.start()
            self.service.database_url = self.database_url
            self.service.postgres = self.postgres
        self.service.start()
        print(f"soak: service up after {self.service.wait_ready(timeout_s=600):.1f} s", flush=True)

    def stop(self) -> None:
        """Stop the service, PostgreSQL, and unmount the upload disk."""
        self.service.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self.tmpfs is not None:
            subprocess.run(["umount", "-l", str(self.tmpfs)], check=False)

    def inject(self, fault: str) -> str:
        """Inject one fault (see the module's docstring of soak.py)."""
        if fault == "worker-main":
            pid = self.service.pid("predict")
            os.kill(pid, signal.SIGKILL)
            return f"kill -9 predict main {pid}"
        if fault == "pool-mid-song":
            waited = wait_processing(self.database_url)
            pid = busiest(children_of(self.service.pid("predict")))
            if pid is None:
                return "no pool process"
            os.kill(pid, signal.SIGKILL)
            return f"kill -9 pool process {pid} (a job processing after {waited:.0f} s)"
        if fault == "web-term":
            pid = self.service.pid("web")
            os.kill(pid, signal.SIGTERM)
            return f"SIGTERM web master {pid}"
        if fault == "redis-restart":
            rpc = self.service.rpc()
            rpc.supervisor.stopProcess("redis")
            rpc.supervisor.startProcess("redis")
            return "supervisorctl restart redis"
        if fault == "postgres-restart":
            assert self.postgres is not None
            self.postgres.restart()
            return "pg_ctl restart -m immediate"
        if fault == "disk-full":
            assert self.tmpfs is not None
            return fill_disk(self.tmpfs, leave_mb=self.args.min_free_mb / 2)
        raise ValueError(f"fault {fault!r} does not apply here")

    def process_roots(self) -> list[int]:
        """Return the pid of ``genreflow run``."""
        process = self.service.process
        return [process.pid] if process is not None and process.poll() is None else []

    def root_labels(self) -> dict[int, str]:
        """Return no names: every process is named by its command line."""
        return {}

    def redis_url(self) -> str | None:
        """Return the private Redis's URL, its port read from its configuration."""
        with contextlib.suppress(OSError, StopIteration, ValueError):
            conf = (self.service.home / "redis" / "redis.conf").read_text()
            port = int(next(line for line in conf.splitlines() if line.startswith("port "))[5:])
            return f"redis://127.0.0.1:{port}/0"
        return None

    def db_size_mb(self) -> float | None:
        """Return the size of SQLite's files (main, WAL) or PostgreSQL's database."""
        if self.args.database == "postgres":
            return postgres_size_mb(self.database_url)
        path = Path(self.database_url.removeprefix("sqlite:///"))
        sizes = [p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()]
        return sum(sizes) / MIB


class Probes:
    """A thread that samples the service every ``every_s`` seconds."""

    def __init__(self, service: ServiceHandle, *, every_s: float) -> None:
        self.service, self.every_s = service, every_s
        self.processes: list[dict[str, Any]] = []
        self.queue: list[dict[str, Any]] = []
        self.sizes: list[dict[str, Any]] = []
        self.loads: list[float] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.labels: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._engine: Any = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and close the database engine."""
        self._stop.set()
        self._thread.join(timeout=60)
        if self._engine is not None:
            self._engine.dispose()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            t = time.time()
            self.loads.append(os.getloadavg()[0])
            with contextlib.suppress(Exception):
                self.sample_processes(t)
            self.sample_sizes(t)
            self.snapshot_jobs()

    def sample_processes(self, t: float) -> None:
        """Record RSS (MiB) and open files of every process of the service."""
        for root in self.service.process_roots():
            tree = [root, *descendants(root)]
            named = self.service.root_labels()
            for pid in tree:
                if pid not in self.labels and root in named:  # a cluster host's program
                    is_root = pid == root
                    is_ffmpeg = not is_root and label(pid, None) == "ffmpeg (decoding)"
                    self.labels[pid] = (
                        named[root]
                        if is_root
                        else ("ffmpeg (decoding)" if is_ffmpeg else f"{named[root]} child")
                    )
                elif pid not in self.labels:
                    parent = _parent(pid)
                    self.labels[pid] = label(pid, self.labels.get(parent) if parent else None)
                name = self.labels[pid]
                if name in ("gone", "ffmpeg (decoding)"):
                    continue
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    fds = len(os.listdir(f"/proc/{pid}/fd"))
                except OSError:
                    continue
                rss = next((int(line.split()[1]) for line in status.splitlines()
                            if line.startswith("VmRSS:")), 0)  # fmt: skip
                if not rss:
                    continue  # a zombie, not reaped yet
                self.processes.append({"t": t, "pid": pid, "label": name, "rss_mb": rss / 1024,
                                       "fds": fds})  # fmt: skip

    def sample_sizes(self, t: float) -> None:
        """Record the queue depth, Redis memory, database and upload-folder size."""
        depth = redis_mb = None
        url = self.service.redis_url()
        if url:
            with contextlib.suppress(Exception):
                import redis

                client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
                depth = int(client.llen("predict"))
                redis_mb = int(client.info("memory")["used_memory"]) / MIB
                client.close()
        if depth is not None:
            self.queue.append({"t": t, "depth": depth})
        self.sizes.append({"t": t, "redis_mb": redis_mb, "db_mb": self.service.db_size_mb(),
                           "uploads_mb": folder_mb(self.service.upload_dir)})  # fmt: skip

    def snapshot_jobs(self) -> None:
        """Read every job row; keep the latest of each, and mark those gone since."""
        from sqlalchemy import create_engine, func, select

        from shared.store.orm import Job, StoredPrediction

        with self._lock:
            if self._engine is None:
                self._engine = create_engine(self.service.database_url, pool_pre_ping=True)
            try:
                with self._engine.connect() as connection:
                    rows = connection.execute(
                        select(Job.id, Job.status, Job.error_code, Job.finished_at, Job.attempts)
                    ).all()
                    results = dict(connection.execute(
                        select(StoredPrediction.job_id, func.count())
                        .group_by(StoredPrediction.job_id)
                    ).all())  # fmt: skip
            except Exception:
                return  # the database is down (a fault): the next sample sees it
            seen = set()
            for job_id, status, code, finished, attempts in rows:
                seen.add(job_id)
                old = self.jobs.get(job_id, {})
                self.jobs[job_id] = {
                    "status": status, "error_code": code, "attempts": attempts, "gone": False,
                    "finished": _epoch(finished),
                    "n_results": max(old.get("n_results", 0), int(results.get(job_id, 0))),
                }  # fmt: skip
            for job_id, row in self.jobs.items():
                if job_id not in seen:
                    row["gone"] = True

    def load_average(self) -> dict[str, float | None]:
        """Return the mean and the highest 1-minute load average seen."""
        if not self.loads:
            return {"mean": None, "max": None}
        return {"mean": round(sum(self.loads) / len(self.loads), 1), "max": max(self.loads)}


def _parent(pid: int) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return None


def _epoch(when: datetime | str | None) -> float | None:
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
