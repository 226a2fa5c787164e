"""Soak benchmark: the real service for an hour under a steady load, with faults on a schedule.

::

    python benchmarks/soak.py                          # 60 minutes, SQLite, one host
    python benchmarks/soak.py --minutes 4 --json       # the smoke run
    python benchmarks/soak.py --database postgres --minutes 30
    sudo python benchmarks/soak.py --cluster           # on cluster.py's namespace hosts

It starts genreflow in a temporary folder (``genreflow run`` as chaos.py starts it, with the
shipped model; with ``--cluster`` the hosts of cluster.py: a data host, a web host, two worker
hosts) and a local webhook receiver that answers 500 to a tenth of the deliveries and lets a few
time out. Songs arrive as a Poisson stream at ``--rate`` songs/s: distinct generated songs,
mostly 30 s, some 3 min, and a few bad files. A client that gets 503, 507 or no answer retries
as ``Retry-After`` asks. Faults come on a schedule between the first and the last window, each
logged with its time: kill -9 of the predict worker's main process, kill -9 of a pool process
mid-song, SIGTERM of the web, a restart of Redis, an immediate-mode restart of PostgreSQL (with
``--database postgres``), the upload disk filled past its threshold for 45 s and freed (root: a
tmpfs upload folder), and with ``--cluster`` a worker host cut off for 30 s.

Retention is short (``--retention-min``, swept every minute), so the database and the upload
folder must stay flat. After the last arrival it waits until every accepted job ended and its
webhook arrived, then checks the whole history (``soak_history.py``): from the database (sampled
every few seconds, so a job that retention removed was still seen ending), the receiver's log and
the client's log. It prints a table per 5-minute window, the growth per hour of each process's
RSS and open files after its first 10 minutes, Redis memory, database and upload-folder size,
writes everything to ``--out`` (JSON lines of each log, ``report.json``, ``soak.png``) and, with
``--json``, ends with one JSON line: ``accepted``, ``lost``, ``duplicates``, ``stuck``,
``undelivered`` and more. Exit status 0 when the history is clean.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import JOB_DONE
from soak_history import (
    ACCEPTED,
    BAD_FILE_REFUSALS,
    FINAL,
    check_history,
    flat,
    growth,
    p99_drift,
    windows,
)  # fmt: skip
from soak_probes import Probes, ServiceHandle, SingleHost
from soak_receiver import FlakyReceiver

FAULTS: Final = ("worker-main", "pool-mid-song", "web-term", "redis-restart", "disk-full")
PG_FAULT: Final = "postgres-restart"
CLUSTER_FAULT: Final = "host-cut"
SHORT_S, LONG_S = 30.0, 180.0
STYLES: Final = ("classical", "disco", "metal", "reggae")  # demo_data's DEMO_GENRES
#: The options a report depends on, kept in ``history.json`` for ``--recheck``.
RECHECK_ARGS: Final = ("minutes", "rate", "database", "cluster", "window_min", "retention_min")


# --- songs ------------------------------------------------------------------------------------


class Songs:
    """Distinct generated songs, made ahead of the arrivals by a thread of their own."""

    def __init__(self, folder: Path, *, seed: int, long_fraction: float, bad_every: int) -> None:
        import queue

        self.folder, self.seed = folder, seed
        self.long_fraction, self.bad_every = long_fraction, bad_every
        self.ready: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=6)
        self.stop = threading.Event()
        folder.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self._make_all, daemon=True).start()

    def _make_all(self) -> None:
        i = 0
        while not self.stop.is_set():
            song = self.make(i)
            while not self.stop.is_set():
                with contextlib.suppress(Exception):
                    self.ready.put(song, timeout=1)
                    break
            i += 1

    def make(self, i: int) -> dict[str, Any]:
        """Write song ``i``: a bad file every ``bad_every``-th, else a 30-s or 3-min mp3."""
        import numpy as np

        from shared.core.learning.demo_data import synth_track, write_audio

        rng = random.Random(self.seed * 100_003 + i)
        if self.bad_every and i % self.bad_every == self.bad_every - 1:
            return self._bad(i, rng)
        seconds = LONG_S if rng.random() < self.long_fraction else SHORT_S
        a = synth_track(STYLES[i % 4], seconds=seconds, seed=self.seed + 2 * i)
        b = synth_track(STYLES[(i + 1 + i // 4) % 4], seconds=seconds, seed=self.seed + 2 * i + 1)
        weight = 0.55 + 0.4 * rng.random()
        path = write_audio(self.folder / f"song{i:05d}.mp3", (weight * a + (1 - weight) * b)
                           .astype(np.float32))  # fmt: skip
        return {"i": i, "path": path, "kind": "long" if seconds == LONG_S else "short"}

    def _bad(self, i: int, rng: random.Random) -> dict[str, Any]:
        kind = ("noise", "truncated", "text")[(i // self.bad_every) % 3]
        path = self.folder / f"bad{i:05d}.{'wav' if kind == 'text' else 'mp3'}"
        if kind == "noise":
            path.write_bytes(rng.randbytes(200_000))
        elif kind == "text":
            path.write_bytes(b"this is not a song\n" * 100)
        else:
            good = self.make(i + 1_000_000)["path"]
            path.write_bytes(good.read_bytes()[:6000])  # a header and a few frames
            good.unlink()
        return {"i": i, "path": path, "kind": f"bad:{kind}"}


# --- the client -------------------------------------------------------------------------------


class Client:
    """Uploads songs as they arrive, each in a thread; one log record per attempt."""

    def __init__(
        self, url: str, hook: str, log_path: Path, *, patience_s: float, headers: dict[str, str]
    ) -> None:
        self.url, self.hook, self.patience_s = url, hook, patience_s
        self.headers = headers
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.log = log_path.open("a")

    def submit(self, song: dict[str, Any]) -> None:
        """Upload ``song`` in a thread of its own (open loop: arrivals never wait)."""
        thread = threading.Thread(target=self._send, args=(song,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _send(self, song: dict[str, Any]) -> None:
        deadline = time.time() + self.patience_s
        bad = song["kind"].startswith("bad")
        for attempt in range(1, 1000):
            t0 = time.time()
            status, body, retry_after = 0, {}, 2.0
            try:
                with song["path"].open("rb") as handle:
                    answer = requests.post(
                        f"{self.url}/api/v1/jobs", files={"file": (song["path"].name, handle)},
                        data={"webhook_url": self.hook}, headers=self.headers, timeout=120,
                    )  # fmt: skip
                status = answer.status_code
                with contextlib.suppress(ValueError):
                    body = answer.json()
                retry_after = float(answer.headers.get("Retry-After") or 2)
            except requests.RequestException as exc:
                body = {"code": type(exc).__name__}
            record = {"song": song["path"].name, "kind": song["kind"], "bad": bad,
                      "attempt": attempt, "t0": t0, "t1": time.time(), "status": status,
                      "id": body.get("id") or body.get("job_id"),
                      "code": body.get("code")}  # fmt: skip
            with self.lock:
                self.records.append(record)
                self.log.write(json.dumps(record) + "\n")
                self.log.flush()
            if status in ACCEPTED or (bad and status in BAD_FILE_REFUSALS):
                break
            if status not in (0, 502, 503, 507) or time.time() > deadline:
                break
            time.sleep(min(retry_after, 10.0))
        song["path"].unlink(missing_ok=True)

    def join(self, timeout_s: float) -> None:
        """Wait for every upload thread (all of them retry for ``patience_s`` at most)."""
        deadline = time.time() + timeout_s
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.time()))


# --- faults -----------------------------------------------------------------------------------


def schedule(
    faults: list[str], *, minutes: float, window_s: float, every_s: float
) -> list[tuple[float, str]]:
    """Plan the faults, in turn, every ``every_s`` between the first and the last window.

    The first and the last window stay free of faults (a quarter of the run each, at most, so
    a short run gets every fault too, closer together).
    """
    run_s = minutes * 60
    start = min(window_s, run_s * 0.25)
    stop = max(start, run_s - min(window_s, run_s * 0.25))
    if not faults:
        return []
    step = min(every_s, (stop - start) / len(faults))
    plan, at = [], start + step / 2
    while at < stop:
        plan.append((at, faults[len(plan) % len(faults)]))
        at += step
    return plan


def run_faults(
    plan: list[tuple[float, str]], service: ServiceHandle, t0: float, log_path: Path,
    stop: threading.Event, faults: list[dict[str, Any]],
) -> None:  # fmt: skip
    """Inject each planned fault at its time; log it (time, name, what was done)."""
    with log_path.open("a") as log:
        for at, fault in plan:
            if stop.wait(max(0.0, t0 + at - time.time())):
                return
            began = time.time()
            try:
                detail = service.inject(fault)
            except Exception as exc:  # a fault that could not be injected is logged, not fatal
                detail = f"not injected: {type(exc).__name__}: {exc}"
            record = {"t": began, "at_min": (began - t0) / 60, "fault": fault, "detail": detail,
                      "took_s": time.time() - began}  # fmt: skip
            faults.append(record)
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(f"[{record['at_min']:5.1f} min] fault {fault}: {detail}", flush=True)


# --- the run ----------------------------------------------------------------------------------


def drain(client: Client, receiver: FlakyReceiver, probes: Probes, *, timeout_s: float) -> float:
    """Wait until every accepted job ended and its webhook was answered 2xx; return seconds."""
    started = time.time()
    client.join(timeout_s)
    while time.time() - started < timeout_s:
        probes.snapshot_jobs()
        accepted = {r["id"] for r in client.records if r["status"] in ACCEPTED and r["id"]}
        rows = probes.jobs
        ended = [j for j in accepted if rows.get(j, {}).get("status") in FINAL]
        answered = receiver.delivered()
        if len(ended) == len(accepted) and all(
            (j, "job.completed" if rows[j]["status"] == "done" else "job.failed") in answered
            for j in ended
        ):
            return time.time() - started
        time.sleep(3)
    return time.time() - started


def keep_logs(log_dir: Path, into: Path) -> None:
    """Copy the service's logs (and ``run.log`` beside them) into the report folder."""
    with contextlib.suppress(OSError):
        shutil.copytree(log_dir, into, dirs_exist_ok=True)
        if (run_log := log_dir.parent / "run.log").exists():
            shutil.copy(run_log, into / "run.log")


def done_lines(log_dir: Path) -> Counter[str]:
    """Count ``job <id> done`` in the workers' logs (a job classified twice shows twice)."""
    counts: Counter[str] = Counter()
    for path in log_dir.glob("*.log*"):
        text = path.read_text(errors="replace")
        counts.update(JOB_DONE.findall(text))
    return counts


def report(args: argparse.Namespace, out: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Check the history, fit the growth, print the tables, draw the PNG; return the summary."""
    verdict = check_history(data["client"], data["receiver"], data["jobs"], data["done_lines"])
    rows = windows(data["client"], data["jobs"], data["queue"], data["faults"], t0=data["t0"],
                   end=data["t_end"], width_s=args.window_min * 60)  # fmt: skip
    fits = growth(data["processes"])
    after_s = min(args.retention_min * 60 + 120, args.minutes * 30)
    sizes = {key: flat(data["sizes"], key, after_s=after_s)
             for key in ("db_mb", "uploads_mb", "redis_mb")}  # fmt: skip
    drift = p99_drift(rows)
    summary = {
        "minutes": args.minutes, "rate": args.rate, "database": args.database,
        "cluster": args.cluster, "drain_s": data["drain_s"], **verdict.as_dict(),
        "faults": data["faults"], "windows": rows, "growth": fits, "sizes": sizes,
        "p99": drift, "load_average": data["load"], "late_arrivals": data.get("late_arrivals"),
    }  # fmt: skip
    (out / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    print_tables(summary)
    with contextlib.suppress(Exception):  # the picture is a convenience, never the verdict
        from soak_plot import draw

        draw(out / "soak.png", rows, data["processes"], data["faults"], t0=data["t0"],
             title=f"genreflow soak: {args.minutes:g} min, {args.database}, "
                   f"{args.rate:g} songs/s")  # fmt: skip
    return summary


def print_tables(s: dict[str, Any]) -> None:
    """Print the windows, the growth and the verdict as Markdown tables."""

    def f(value: Any, spec: str = ".1f") -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
            else format(value, spec)  # fmt: skip

    print("\n| window (min) | accepted | finished/min | p50 s | p99 s | queue mean/max | faults |")
    print("|---|---|---|---|---|---|---|")
    for w in s["windows"]:
        print(f"| {w['start_min']:.0f}-{w['start_min'] + 5:.0f} | {w['accepted']} "
              f"| {f(w['per_min'])} | {f(w['p50_s'])} | {f(w['p99_s'])} "
              f"| {f(w['queue_mean'])}/{f(w['queue_max'], '.0f')} "
              f"| {', '.join(w['faults']) or ''} |")  # fmt: skip
    print("\n| process (longest-lived) | lived min | RSS first→at 10 min→last MB "
          "| RSS MB/h after 10 min (least squares, Theil-Sen) | open files "
          "| files/h |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, g in s["growth"].items():
        print(f"| {name} | {g['lived_min']:.0f} | {g['rss_first_mb']:.0f}→"
              f"{f(g.get('rss_settled_mb'), '.0f')}→{g['rss_last_mb']:.0f} "
              f"| {f(g['rss_mb_per_h'], '+.1f')}, {f(g.get('rss_median_mb_per_h'), '+.1f')} "
              f"| {g['fds_last']} "
              f"| {f(g['fds_per_h'], '+.1f')} |")  # fmt: skip
    print("\n| size | first | last | max | growth/h after retention |")
    print("|---|---|---|---|---|")
    for key, v in s["sizes"].items():
        print(f"| {key} | {f(v['first'])} | {f(v['last'])} | {f(v['max'])} "
              f"| {f(v['per_h'], '+.1f')} |")  # fmt: skip
    p = s["p99"]
    print(f"\np99 last window {f(p['last_p99_s'])} s vs first fault-free window "
          f"{f(p['first_calm_p99_s'])} s (ratio {f(p['ratio'], '.2f')}); "
          f"load average during the run {s['load_average']}; "
          f"arrivals late by > 1 s (songs not made in time): {s['late_arrivals']}")  # fmt: skip
    keys = ("accepted", "lost", "duplicates", "stuck", "undelivered", "done", "failed_good",
            "failed_bad", "bad_refused", "refused", "undocumented_refusals", "refused_rows",
            "undocumented_rows", "orphan_rows", "deliveries", "duplicate_deliveries",
            "id_mismatches")  # fmt: skip
    print("\n| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    print("| " + " | ".join(str(s[k]) for k in keys) + " |")
    if s["examples"]:
        print(f"examples: {s['examples']}")


def run(args: argparse.Namespace) -> int:
    """Start everything, drive the load and the faults, drain, check, report."""
    root = Path(tempfile.mkdtemp(prefix="genreflow-soak-"))
    out = args.out or root / "report"
    out.mkdir(parents=True, exist_ok=True)
    print(f"soak: working in {root}, report in {out}", flush=True)
    receiver = FlakyReceiver(out / "receiver.jsonl", seed=args.seed,
                             fail_fraction=0.1, timeout_fraction=args.timeout_fraction)  # fmt: skip
    service: ServiceHandle
    if args.cluster:
        from soak_cluster import ClusterHost

        args.database = "postgres"  # the data host's

        service = ClusterHost(root, args)
    else:
        service = SingleHost(root, args)
    songs = Songs(root / "songs", seed=args.seed, long_fraction=args.long_fraction,
                  bad_every=args.bad_every)  # fmt: skip
    stop = threading.Event()
    faults: list[dict[str, Any]] = []
    try:
        service.start()
        hook = receiver.start(host=service.receiver_host)
        probes = Probes(service, every_s=args.sample_s)
        probes.start()
        client = Client(service.url, hook, out / "client.jsonl", patience_s=args.patience_s,
                        headers=service.headers)  # fmt: skip
        faults_planned = [f for f in args.faults.split(",") if f in service.faults]
        plan = schedule(faults_planned, minutes=args.minutes, window_s=args.window_min * 60,
                        every_s=args.fault_every_min * 60)  # fmt: skip
        rng = random.Random(args.seed)
        t0 = time.time()
        t_end = t0 + args.minutes * 60
        threading.Thread(target=run_faults, args=(plan, service, t0, out / "faults.jsonl", stop,
                                                  faults), daemon=True).start()  # fmt: skip
        next_at, late = t0, 0
        while True:
            next_at += rng.expovariate(args.rate)
            if next_at >= t_end:
                break
            song = songs.ready.get()
            late += time.time() > next_at + 1.0  # the songs could not be made in time
            time.sleep(max(0.0, next_at - time.time()))
            client.submit(song)
        time.sleep(max(0.0, t_end - time.time()))
        stop.set()
        songs.stop.set()
        print(f"soak: arrivals over; draining (up to {args.drain_min:g} min)", flush=True)
        drain_s = drain(client, receiver, probes, timeout_s=args.drain_min * 60)
        probes.snapshot_jobs()
        probes.stop()
        data = {
            "client": client.records, "receiver": receiver.snapshot(), "jobs": probes.jobs,
            "done_lines": done_lines(service.log_dir), "queue": probes.queue,
            "processes": probes.processes, "sizes": probes.sizes, "faults": faults,
            "t0": t0, "t_end": t_end, "drain_s": drain_s, "load": probes.load_average(),
            "late_arrivals": late,
        }  # fmt: skip
        data["args"] = {k: v for k, v in vars(args).items() if k in RECHECK_ARGS}
        (out / "history.json").write_text(json.dumps(data, default=str))
    finally:
        stop.set()
        songs.stop.set()
        service.stop()
        receiver.stop()
        keep_logs(service.log_dir, out / "logs")
        if not args.keep:
            for sub in ("songs", "home", "postgres"):
                shutil.rmtree(root / sub, ignore_errors=True)
    return finish(args, out, data)


def finish(args: argparse.Namespace, out: Path, data: dict[str, Any]) -> int:
    """Report on a run's history; return the exit status (0: clean)."""
    summary = report(args, out, data)
    if args.as_json:
        keys = ("accepted", "lost", "duplicates", "stuck", "undelivered", "done", "failed_good",
                "orphan_rows", "undocumented_refusals", "clean")  # fmt: skip
        print(json.dumps({k: summary[k] for k in keys} | {"report": str(out / "report.json")}))
    return 0 if summary["clean"] else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the soak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of arrivals")
    parser.add_argument("--rate", type=float, default=0.15, help="songs per second (Poisson)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cluster", action="store_true", help="cluster.py's namespace hosts")
    parser.add_argument("--faults", default=",".join((*FAULTS, PG_FAULT, CLUSTER_FAULT)),
                        help="comma-separated; those that apply to the setup run")  # fmt: skip
    parser.add_argument("--fault-every-min", type=float, default=5.0,
                        help="minutes between faults (closer in a short run)")  # fmt: skip
    parser.add_argument("--long-fraction", type=float, default=0.25, help="share of 3-min songs")
    parser.add_argument("--bad-every", type=int, default=25, help="every n-th file is bad")
    parser.add_argument("--timeout-fraction", type=float, default=0.02,
                        help="share of deliveries the receiver lets time out")  # fmt: skip
    parser.add_argument("--retention-min", type=float, default=10.0,
                        help="audio and result retention (minutes)")  # fmt: skip
    parser.add_argument("--window-min", type=float, default=5.0, help="window of the table")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--patience-s", type=float, default=180.0,
                        help="how long a client retries a refused upload")  # fmt: skip
    parser.add_argument("--drain-min", type=float, default=10.0, help="limit of the drain")
    parser.add_argument("--disk-mb", type=int, default=1024, help="tmpfs upload disk (root)")
    parser.add_argument("--min-free-mb", type=int, default=128, help="GENREFLOW_MIN_FREE_MB")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--out", type=Path, help="report folder (default: in the temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the home and the songs")
    parser.add_argument("--json", dest="as_json", action="store_true",
                        help="end with one JSON line of the counts")  # fmt: skip
    parser.add_argument("--recheck", type=Path, metavar="DIR",
                        help="report again on an earlier run's DIR/history.json")  # fmt: skip
    args = parser.parse_args(argv)
    if args.recheck:
        data = json.loads((args.recheck / "history.json").read_text())
        vars(args).update(data["args"])
        return finish(args, args.recheck, data)
    if args.rate <= 0 or args.minutes <= 0:
        parser.error("--rate and --minutes must be positive")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
