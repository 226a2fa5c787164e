"""Cluster benchmark: genreflow across hosts, made of Linux network namespaces on this machine.

::

    sudo python benchmarks/cluster.py            # about 5 minutes; --short for a quick check

It needs root (``ip netns``); where it cannot make namespaces it says why and exits 2. It builds
its own hosts, each a network namespace with one address of ``10.213.0.0/24`` on a bridge of its
own (``gfc-br0``); those addresses exist only inside these namespaces, and traffic stays between
them (nothing is routed out). Everything is removed at the end, also after an error or Ctrl-C.

=========  ============  ==========================================================
host       address       runs
=========  ============  ==========================================================
gfc-db     10.213.0.10   a private Redis (append-only) and a private PostgreSQL
gfc-web    10.213.0.11   ``genreflow web`` (after ``genreflow prepare``)
gfc-w1     10.213.0.21   ``genreflow worker`` (its own UTS namespace: host name gfc-w1)
gfc-w2     10.213.0.22   ``genreflow worker`` (host name gfc-w2)
gfc-client 10.213.0.30   the client: uploads and polls over HTTP with an API key
=========  ============  ==========================================================

The uploads and models folders are shared the way a cluster shares them over NFS: one folder,
mounted at the same path on every host (here, the machine's own file system).

Phases, all in one run, with distinct generated songs (numpy tones, beats and chords through
ffmpeg; no kit data):

1. ``one host``: only gfc-w1 runs; a batch of songs; throughput.
2. ``two hosts``: gfc-w2 joins (it finds the active model by itself); the same size of batch.
3. ``cut``: a batch; once gfc-w2 has taken a job, its link goes down and its processes are
   frozen (SIGSTOP). The table shows lost jobs (never ended), stuck ones (not ended 60 s after
   the cut), duplicate results (a job finished by two hosts) and when the last job ended.
4. ``back``: gfc-w2's link comes up and it is thawed; a last batch; the same counts, over every
   job of the run (the thawed host's half-done job included).

Which host did a job is read from the hosts' own logs (``job <id> done``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # run as a script: the repository's tests/ helpers

NET: Final = "10.213.0"
BRIDGE: Final = "gfc-br0"
HOSTS: Final = {"db": 10, "web": 11, "w1": 21, "w2": 22, "client": 30}
WEB_PORT: Final = 8000
REDIS_PORT: Final = 6379
PG_PORT: Final = 5432
STYLES: Final = ("disco", "metal", "classical", "reggae")  # shared.core.learning.demo_data's
#: After the cut, every job must end within this many seconds (the goal the table checks).
CUT_GOAL_S: Final = 60.0
JOB_DONE = re.compile(r"job ([0-9a-f-]{36}) done:")
TASK_RECEIVED = "Task genreflow.classify_song["
FINAL: Final = frozenset({"done", "failed"})


def ns(host: str) -> str:
    """Return the namespace name of ``host``."""
    return f"gfc-{host}"


def address(host: str) -> str:
    """Return the address of ``host``."""
    return f"{NET}.{HOSTS[host]}"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, its output captured."""
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=120)


# --- the hosts ----------------------------------------------------------------------------------


def can_make_namespaces() -> str | None:
    """Return why this machine cannot run the benchmark, or ``None`` when it can."""
    if sys.platform != "linux":
        return "it needs Linux network namespaces"
    if os.geteuid() != 0:
        return "it needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    probe = "gfc-probe"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    return None


def remove_network() -> None:
    """Remove this benchmark's namespaces and bridge (left over from an earlier run too)."""
    for host in HOSTS:
        sh("ip", "netns", "del", ns(host), check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


def make_network() -> None:
    """Make the bridge and one namespace per host, each with its address on the bridge."""
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "link", "set", BRIDGE, "up")
    for host in HOSTS:
        name, veth = ns(host), f"gfc-{host}-h"
        sh("ip", "netns", "add", name)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
        sh("ip", "link", "set", veth, "master", BRIDGE, "up")
        sh("ip", "-n", name, "addr", "add", f"{address(host)}/24", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")


def in_host(host: str, argv: list[str]) -> list[str]:
    """Return ``argv`` run in ``host``'s namespace, under its own host name."""
    return ["ip", "netns", "exec", ns(host), "unshare", "--uts", "--", "sh", "-c",
            f'hostname {ns(host)} && exec "$@"', "sh", *argv]  # fmt: skip


@dataclass
class Cluster:
    """The processes of the run and where their logs go."""

    root: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    postgres: Any = None

    @property
    def shared(self) -> Path:
        """The folder every host mounts at the same path (uploads and models)."""
        return self.root / "shared"

    def env(self, host: str) -> dict[str, str]:
        """Return the environment of a genreflow host."""
        return {
            **os.environ,
            "GENREFLOW_HOME": str(self.root / "hosts" / host),
            "DATABASE_URL": f"postgresql://postgres@{address('db')}:{PG_PORT}/genreflow",
            "REDIS_URL": f"redis://{address('db')}:{REDIS_PORT}/0",
            "GENREFLOW_UPLOAD_DIR": str(self.shared / "uploads"),
            "GENREFLOW_MODEL_DIR": str(self.shared / "models"),
            # Every host signs and encrypts alike: the secrets are set, not generated per host.
            "GENREFLOW_WEBHOOK_SECRET": "whsec_" + "Y2x1c3Rlci1iZW5jaG1hcmstc2VjcmV0",
            "GENREFLOW_SECRET_KEY": "cluster-benchmark-secret-key",
            "GENREFLOW_UPLOADS_PER_MINUTE": "100000",
            "GENREFLOW_UPLOAD_MB_PER_HOUR": "100000",
            "PYTHONPATH": str(PROJECT_ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }

    def log(self, name: str) -> Path:
        """Return the log file of process ``name``."""
        return self.root / "logs" / f"{name}.log"

    def start(self, name: str, host: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` as process ``name`` (its own process group)."""
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("ab") as out:
            process = subprocess.Popen(
                in_host(host, argv), env=self.env(host), cwd=PROJECT_ROOT, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.processes[name] = process
        return process

    def genreflow(self, host: str, *args: str) -> str:
        """Run a one-shot ``genreflow`` command on ``host``; return its standard output."""
        done = subprocess.run(
            in_host(host, [sys.executable, "-m", "shared", *args]), env=self.env(host),
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"genreflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to every process of ``name`` (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, sig)

    def stop_all(self) -> None:
        """Stop every process this run started (thawed first, so they can stop)."""
        for name, process in self.processes.items():
            if process.poll() is None:
                self.signal(name, signal.SIGCONT)
                self.signal(name, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(name, signal.SIGKILL)
                process.wait(timeout=10)
        if self.postgres is not None:
            self.postgres.stop()


def start_data_host(cluster: Cluster) -> None:
    """Start the private Redis and PostgreSQL on the data host."""
    from tests.postgres_server import PrivatePostgres
    from tests.redis_server import redis_executable

    redis_dir = cluster.root / "redis"
    redis_dir.mkdir(parents=True)
    cluster.start("redis", "db", [
        redis_executable(), "--bind", address("db"), "--port", str(REDIS_PORT),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--dir", str(redis_dir),
        "--protected-mode", "no",
    ])  # fmt: skip
    cluster.postgres = PrivatePostgres(
        cluster.root / "postgres",
        PG_PORT,
        host=address("db"),
        allow=f"{NET}.0/24",
        wrap=["ip", "netns", "exec", ns("db")],
    )
    cluster.postgres.start()


# --- the client ---------------------------------------------------------------------------------


def agent(url: str, key: str) -> None:
    """Answer JSON-line requests on stdin (run in the client host): upload, status, ready."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "ready":
            try:
                answer: Any = session.get(f"{url}/ready", timeout=10).status_code
            except requests.RequestException:
                answer = 0
        elif op == "upload":
            answer = []
            for path in request["paths"]:
                with open(path, "rb") as handle:
                    response = session.post(
                        f"{url}/api/v1/jobs", files={"file": (Path(path).name, handle)}, timeout=60
                    )
                body = response.json()
                answer.append({"id": body.get("id"), "status": response.status_code,
                               "code": body.get("code"), "t": time.time()})  # fmt: skip
        else:  # status
            answer = {}
            for job_id in request["ids"]:
                try:
                    job = session.get(f"{url}/api/v1/jobs/{job_id}", timeout=10).json()
                    answer[job_id] = job.get("status", "unknown")
                except (requests.RequestException, ValueError):
                    answer[job_id] = "unreachable"
        print(json.dumps(answer), flush=True)


class Client:
    """The driver's handle on the agent running in the client host."""

    def __init__(self, cluster: Cluster, key: str) -> None:
        argv = [sys.executable, str(Path(__file__).resolve()), "--agent",
                "--url", f"http://{address('web')}:{WEB_PORT}", "--key", key]  # fmt: skip
        self.process = subprocess.Popen(
            in_host("client", argv), env=cluster.env("client"), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        cluster.processes["client"] = self.process  # type: ignore[assignment]

    def ask(self, **request: Any) -> Any:
        """Send one request and return its answer."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the client agent stopped")
        return json.loads(line)


# --- the run ------------------------------------------------------------------------------------


def make_songs(folder: Path, n: int, *, seconds: float) -> list[Path]:
    """Write ``n`` distinct songs: each a mix of two styles at its own seed, as MP3."""
    import numpy as np

    from shared.core.learning.demo_data import synth_track, write_audio

    folder.mkdir(parents=True)
    songs = []
    for i in range(n):
        a = synth_track(STYLES[i % len(STYLES)], seconds=seconds, seed=5000 + i)
        b = synth_track(STYLES[(i // len(STYLES) + 1 + i) % len(STYLES)], seconds=seconds,
                        seed=7000 + i)  # fmt: skip
        weight = 0.55 + 0.4 * ((i * 7) % 10) / 10
        y = (weight * a + (1 - weight) * b).astype(np.float32)
        songs.append(write_audio(folder / f"song{i:03d}.mp3", y))
    return songs


def wait_until(what: str, check: Any, *, timeout_s: float, every_s: float = 0.5) -> None:
    """Wait until ``check()`` is true; raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every_s)


def done_by_host(cluster: Cluster) -> dict[str, list[str]]:
    """Return, for each worker host, the job ids its log says it finished (in order)."""
    out: dict[str, list[str]] = {}
    for host in ("w1", "w2"):
        path = cluster.log(host)
        text = path.read_text(errors="replace") if path.exists() else ""
        out[host] = JOB_DONE.findall(text)
    return out


@dataclass
class Batch:
    """One phase's jobs, and when each was seen to end."""

    name: str
    hosts: int
    ids: list[str]
    sent_at: float
    ended_at: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    def poll(self, client: Client, *, until: float) -> None:
        """Poll the jobs until all have ended or the clock passes ``until``."""
        while True:
            seen = client.ask(op="status", ids=self.ids)
            now = time.time()
            for job_id, status in seen.items():
                self.statuses[job_id] = status
                if status in FINAL:
                    self.ended_at.setdefault(job_id, now)
            if len(self.ended_at) == len(self.ids) or now > until:
                return
            time.sleep(0.5)


def send(client: Client, name: str, hosts: int, songs: list[Path]) -> Batch:
    """Upload ``songs`` (from the client host); every one must be accepted."""
    answers = client.ask(op="upload", paths=[str(song) for song in songs])
    refused = [a for a in answers if a["status"] not in (200, 202)]
    if refused:
        raise RuntimeError(f"uploads refused: {refused[:3]}")
    return Batch(name, hosts, [a["id"] for a in answers], sent_at=answers[0]["t"] - 0.0)


def tally(batch_ids: list[str], statuses: dict[str, str], by_host: dict[str, list[str]]) -> dict:
    """Count lost (not ended), done per host, and duplicates (finished more than once)."""
    finished: dict[str, int] = {}
    for ids in by_host.values():
        for job_id in ids:
            finished[job_id] = finished.get(job_id, 0) + 1
    wanted = set(batch_ids)
    return {
        "lost": sum(1 for job_id in batch_ids if statuses.get(job_id) not in FINAL),
        "failed": sum(1 for job_id in batch_ids if statuses.get(job_id) == "failed"),
        "duplicate": sum(1 for job_id in wanted if finished.get(job_id, 0) > 1),
        "per_host": {h: len(wanted & set(ids)) for h, ids in by_host.items()},
    }


def run(args: argparse.Namespace) -> int:
    """Build the cluster, run the phases, print the table; return the exit status."""
    why = can_make_namespaces()
    if why is not None:
        print(f"cluster benchmark cannot run here: {why}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="genreflow-cluster-"))
    os.chmod(root, 0o755)
    cluster = Cluster(root)
    per_batch = args.songs
    rows: list[dict[str, Any]] = []
    remove_network()
    try:
        songs = make_songs(root / "songs", per_batch * 3 + args.after_songs, seconds=args.seconds)
        batches = [songs[i * per_batch : (i + 1) * per_batch] for i in range(3)]
        batches.append(songs[3 * per_batch :])
        make_network()
        start_data_host(cluster)
        print(f"hosts up: {', '.join(f'{ns(h)} {address(h)}' for h in HOSTS)}", file=sys.stderr)
        wait_until("Redis", lambda: _redis_answers(cluster), timeout_s=30)
        cluster.genreflow("web", "prepare")
        key = cluster.genreflow("web", "keys", "create", "--name", "cluster-bench").strip()
        cluster.start("web", "web", [sys.executable, "-m", "shared", "web", "--host",
                      address("web"), "--port", str(WEB_PORT), "--web-workers", "2"])  # fmt: skip
        worker = [sys.executable, "-m", "shared", "worker", "--concurrency", str(args.concurrency)]
        cluster.start("w1", "w1", worker)
        client = Client(cluster, key)
        wait_until("the web and a warm worker", lambda: client.ask(op="ready") == 200,
                   timeout_s=180)  # fmt: skip
        print("ready: one worker host", file=sys.stderr)

        one = send(client, "one host", 1, batches[0])
        one.poll(client, until=time.time() + args.phase_timeout)
        rows.append(_row(one, done_by_host(cluster)))

        cluster.start("w2", "w2", worker)
        wait_until("gfc-w2 warm", lambda: "warm with model" in _text(cluster.log("w2")),
                   timeout_s=180)  # fmt: skip
        print("ready: two worker hosts", file=sys.stderr)
        two = send(client, "two hosts", 2, batches[1])
        two.poll(client, until=time.time() + args.phase_timeout)
        rows.append(_row(two, done_by_host(cluster)))

        cut = send(client, "w2 cut", 2, batches[2])
        wait_until("gfc-w2 in the middle of a job", lambda: _holds_a_job(cluster, "w2"),
                   timeout_s=120, every_s=0.05)  # fmt: skip
        sh("ip", "-n", ns("w2"), "link", "set", "eth0", "down")
        cluster.signal("w2", signal.SIGSTOP)
        cut_at = time.time()
        print("cut: gfc-w2's link down and its processes frozen", file=sys.stderr)
        cut.poll(client, until=cut_at + CUT_GOAL_S)
        stuck = [job_id for job_id in cut.ids if job_id not in cut.ended_at]
        cut.poll(client, until=cut_at + args.phase_timeout)
        rows.append(_row(cut, done_by_host(cluster), since=cut_at, stuck=len(stuck)))

        sh("ip", "-n", ns("w2"), "link", "set", "eth0", "up")
        cluster.signal("w2", signal.SIGCONT)
        back_at = time.time()
        print("back: gfc-w2's link up and its processes thawed", file=sys.stderr)
        back = send(client, "w2 back", 2, batches[3])
        back.poll(client, until=time.time() + args.phase_timeout)
        time.sleep(args.settle)  # the thawed host finishes whatever it held when frozen
        everything = Batch("all jobs", 2, [i for b in (one, two, cut, back) for i in b.ids], 0.0)
        everything.poll(client, until=time.time() + 30)  # ends at once when all have ended
        rows.append(_row(back, done_by_host(cluster), since=back_at))
        rows.append(_row(everything, done_by_host(cluster), whole=True))
        if args.rows is not None:
            args.rows.write_text(json.dumps(job_rows(cluster), indent=1))
    except Exception as exc:  # report, clean up, fail
        print(f"cluster benchmark failed: {exc}", file=sys.stderr)
        _print_table(rows, args)
        return 1
    finally:
        cluster.stop_all()
        remove_network()
        if args.keep:
            print(f"kept: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    _print_table(rows, args)
    final = rows[-1]
    ok = final["lost"] == 0 and final["duplicate"] == 0 and rows[2]["stuck"] == 0
    return 0 if ok else 1


def job_rows(cluster: Cluster) -> list[dict[str, Any]]:
    """Return every job row of the cluster's database, with its number of stored results."""
    import psycopg

    query = (
        "SELECT j.id, j.status, j.attempts, j.error_code, "
        "(SELECT count(*) FROM predictions p WHERE p.job_id = j.id) FROM jobs j ORDER BY j.id"
    )
    with psycopg.connect(host=str(cluster.root / "postgres"), port=PG_PORT, user="postgres",
                         dbname="genreflow", connect_timeout=10) as conn:  # fmt: skip
        found = conn.execute(query).fetchall()
    keys = ("id", "status", "attempts", "error_code", "results")
    return [dict(zip(keys, row, strict=True)) for row in found]


def _postgres_missing() -> str | None:
    from tests.postgres_server import PostgresUnavailable, postgres_bin_dir

    try:
        postgres_bin_dir(install=False)
    except PostgresUnavailable as exc:
        return str(exc)
    return None


def _holds_a_job(cluster: Cluster, host: str) -> bool:
    """Whether ``host`` has taken a classification it has not finished yet (from its log)."""
    text = _text(cluster.log(host))
    return text.count(TASK_RECEIVED) > len(JOB_DONE.findall(text))


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _redis_answers(cluster: Cluster) -> bool:
    probe = subprocess.run(
        ["ip", "netns", "exec", ns("web"), sys.executable, "-c",
         f"import redis; redis.Redis(host='{address('db')}', port={REDIS_PORT}).ping()"],
        capture_output=True, timeout=30, env=cluster.env("web"),
    )  # fmt: skip
    return probe.returncode == 0


def _row(
    batch: Batch,
    by_host: dict[str, list[str]],
    *,
    since: float | None = None,
    stuck: int | None = None,
    whole: bool = False,
) -> dict[str, Any]:
    counts = tally(batch.ids, batch.statuses, by_host)
    last = max(batch.ended_at.values(), default=float("nan"))
    start = batch.sent_at
    wall = last - start
    return {
        "phase": batch.name,
        "hosts": batch.hosts,
        "songs": len(batch.ids),
        "wall_s": None if whole else wall,
        "per_min": None if whole else 60 * len(batch.ids) / wall if wall > 0 else None,
        "w1": counts["per_host"]["w1"],
        "w2": counts["per_host"]["w2"],
        "lost": counts["lost"],
        "stuck": stuck,
        "duplicate": counts["duplicate"],
        "failed": counts["failed"],
        "last_end_s": None if since is None else last - since,
    }


def _print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    def fmt(value: Any, spec: str = "") -> str:
        if value is None:
            return "-"
        return format(value, spec) if spec else str(value)

    print(f"\ngenreflow cluster benchmark: {args.songs} songs a batch ({args.after_songs} after "
          f"the cut), {args.seconds:g} s each, `genreflow worker --concurrency "
          f"{args.concurrency}` per worker host, the shipped model")  # fmt: skip
    print(
        "| phase | worker hosts | songs | wall s | songs/min | done on w1 | done on w2 | lost "
        "| stuck 60 s after cut | duplicate | failed | last job ended (s after cut/return) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['phase']} | {row['hosts']} | {row['songs']} | {fmt(row['wall_s'], '.1f')} "
              f"| {fmt(row['per_min'], '.1f')} | {row['w1']} | {row['w2']} | {row['lost']} "
              f"| {fmt(row['stuck'])} | {row['duplicate']} | {row['failed']} "
              f"| {fmt(row['last_end_s'], '.1f')} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark (or, with ``--agent``, the client)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=12, help="songs per batch (3 batches)")
    parser.add_argument("--after-songs", type=int, default=8, help="songs after the return")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each song")
    parser.add_argument("--concurrency", type=int, default=1, help="processes per worker host")
    parser.add_argument("--phase-timeout", type=float, default=240.0, help="seconds per batch")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds for the thawed host to finish what it held")  # fmt: skip
    parser.add_argument("--short", action="store_true", help="small batches (the test suite's)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and data folder")
    parser.add_argument("--rows", type=Path,
                        help="write every job row (id, status, attempts, results) here as JSON, "
                        "read from the database before the hosts go")  # fmt: skip
    parser.add_argument(
        "--check", action="store_true", help="only say whether it can run here (exit 0, else 2)"
    )
    parser.add_argument("--agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent:
        agent(args.url, args.key)
        return 0
    if args.check:
        why = can_make_namespaces() or _postgres_missing()
        print(f"cluster benchmark cannot run here: {why}" if why else "it can run here")
        return 2 if why else 0
    if args.short:
        args.songs, args.after_songs, args.seconds = 4, 3, 20.0
    if args.songs * 3 + args.after_songs < 3:
        parser.error("too few songs")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
