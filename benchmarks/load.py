"""Load benchmark: the whole service under concurrent clients, against standalone prediction.

::

    python benchmarks/load.py --songs 24 --concurrency 4

In one run it

1. makes N distinct songs in a temporary folder, half 30 s and half 3 min: the team kit's real
   clips when it is there (``../shared/data/samples`` 30-s GTZAN clips; three ``emotify`` excerpts
   joined into one 3-minute mp3), otherwise synthetic tracks; nothing is copied into the repo;
2. times the standalone prediction of the same files in this process (ONNX Runtime, as the
   worker runs it): CPU seconds per song, ffmpeg's included;
3. starts the service (``genreflow run``) in a temporary home with a model (``--model``, else
   the packaged default model, else a fresh untrained LSTM: speed does not depend on weights),
   waits for ``/ready``, and times the first job right after it;
4. sends the songs from ``--concurrency`` client threads (upload, then poll the job until it is
   done) and prints p50/p95/p99 upload → result, songs/s, the service's CPU seconds per song
   (every process of the service, summed) beside the standalone figure, and the peak RSS of each
   kind of process.

The machine it runs on may be shared; compare the ratios it prints, measured side by side, more
than the absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KIT_DATA = PROJECT_ROOT.parent / "shared" / "data"
POLL_INTERVAL_S = 0.1  # each client polls its job 10 times a second (adds <= 0.1 s)
SHORT_S, LONG_S = 30.0, 180.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOALS = {
    "first_job_s": 1.5,
    "long_p50_s": 1.0,
    "long_p99_s": 2.5,
    "songs_per_s": 3.0,
    "predict_rss_mb": 500.0,
}


@dataclass
class Song:
    """One benchmark song."""

    path: Path
    seconds: float
    source: str


@dataclass
class Outcome:
    """What a client saw for one song."""

    song: Song
    latency_s: float
    status: str
    upload_status: int
    processing_s: float = 0.0


@dataclass
class ProcessStats:
    """CPU and memory of the service's processes, sampled while it runs."""

    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)


# --- songs -----------------------------------------------------------------------------------


def make_songs(
    folder: Path, n_songs: int, *, synthetic: bool, seed: int, kit: Path = KIT_DATA
) -> list[Song]:
    """Write ``n_songs`` distinct songs, alternately 30 s and 3 min, into ``folder``."""
    from shared.core.audio.audio import ffmpeg_executable

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    samples = sorted((kit / "samples").glob("*.au"))
    excerpts = sorted((kit / "emotify").glob("*/*.mp3"))
    real = not synthetic and len(samples) >= 2 and len(excerpts) >= 3
    songs = []
    for i in range(n_songs):
        long = i % 2 == 1
        seconds = LONG_S if long else SHORT_S
        path = folder / f"song-{i:03d}.mp3"
        if real and long:
            parts = rng.sample(excerpts, 3)
            _join(ffmpeg_executable(), parts, path, seconds=seconds)
            source = " + ".join(p.stem for p in parts)
        elif real:
            clip = samples[(i // 2) % len(samples)]
            # The same clip recurs once N > 20: a tiny gain change keeps the bytes distinct.
            _join(ffmpeg_executable(), [clip], path, seconds=seconds, gain_db=0.01 * i)
            source = clip.stem
        else:
            from shared.core.learning.demo_data import DEMO_GENRES, synth_track, write_audio

            style = DEMO_GENRES[i % len(DEMO_GENRES)]
            write_audio(path, synth_track(style, seconds=seconds, seed=seed + i))
            source = f"synthetic {style}"
        songs.append(Song(path=path, seconds=seconds, source=source))
    return songs


def _join(ffmpeg: str, parts: list[Path], out: Path, *, seconds: float, gain_db: float = 0) -> None:
    inputs = [arg for part in parts for arg in ("-i", str(part))]
    streams = "".join(f"[{k}:a]" for k in range(len(parts)))
    graph = f"{streams}concat=n={len(parts)}:v=0:a=1,volume={gain_db}dB[out]"
    subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *inputs,
         "-filter_complex", graph, "-map", "[out]", "-t", f"{seconds}", "-ac", "1",
         "-ar", "22050", "-b:a", "128k", str(out)],
        check=True,
    )  # fmt: skip


# --- standalone ------------------------------------------------------------------------------


def cpu_seconds_self_and_children() -> float:
    """Return this process's CPU time plus that of its waited-for children (ffmpeg)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def standalone(model_path: Path, songs: list[Song]) -> dict[str, float]:
    """Predict every song in this process, as the worker does; return CPU and wall per song."""
    from shared.core.serving.inference import load_served_model, use_one_math_thread
    from shared.core.serving.predict import predict_file

    use_one_math_thread()  # as a predict pool process runs
    model = load_served_model(model_path)
    predict_file(songs[0].path, model)  # warm, as a warm worker is
    cpu0, wall0 = cpu_seconds_self_and_children(), time.perf_counter()
    long_walls = []
    for song in songs:
        t0 = time.perf_counter()
        predict_file(song.path, model)
        if song.seconds == LONG_S:
            long_walls.append(time.perf_counter() - t0)
    cpu = cpu_seconds_self_and_children() - cpu0
    return {
        "cpu_per_song": cpu / len(songs),
        "wall_per_song": (time.perf_counter() - wall0) / len(songs),
        "long_wall_median": statistics.median(long_walls) if long_walls else float("nan"),
        "runtime": model.runtime,
    }


def door_probe_ms(song: Song, *, rounds: int = 9) -> float:
    """Return the median time of the web's door check (ffmpeg reads the header) on ``song``."""
    from shared.core.audio.probe import probe_audio

    probe_audio(song.path)  # the first call finds the ffmpeg binary
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        probe_audio(song.path)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def cli_missing_file() -> tuple[float, list[str]]:
    """Time ``genreflow predict /nonexistent.mp3`` as a user runs it; return seconds and stderr."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "shared", "predict", "/nonexistent.mp3"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return time.perf_counter() - t0, done.stderr.splitlines()


# --- the service -----------------------------------------------------------------------------


def default_model(folder: Path) -> Path:
    """Return the packaged default model if any, else save an untrained baseline LSTM."""
    from shared.store.registry import DEFAULT_MODEL_DIR

    packaged = sorted(DEFAULT_MODEL_DIR.glob("*.keras")) if DEFAULT_MODEL_DIR.is_dir() else []
    if packaged:
        return packaged[-1]
    from shared.core.audio.features import FeatureConfig
    from shared.core.nets.model import build_model, new_version, save_model

    config = FeatureConfig()
    keras_model = build_model((config.n_frames, config.n_features), 10)
    genres = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
              "reggae", "rock"]  # fmt: skip
    return save_model(
        keras_model, folder, version=f"bench-{new_version()}", genres=genres,
        feature_config=config, extra={"note": "untrained, for load benchmarks only"},
    )  # fmt: skip


@contextlib.contextmanager
def running_service(home: Path, port: int, model: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``genreflow run`` in ``home`` with ``model`` in its model folder; stop it after."""
    import shutil

    models = home / "models"
    models.mkdir(parents=True)
    for sibling in model.parent.glob(f"{model.stem}.*"):
        shutil.copy(sibling, models / sibling.name)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GENREFLOW_") and k not in {"REDIS_URL", "DATABASE_URL"}
    }
    env.update(GENREFLOW_HOME=str(home), GENREFLOW_MAX_UPLOAD_MB="50")
    log = (home / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shared", "run", "--port", str(port), "--no-beat"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def descendants(root: int) -> list[int]:
    """Return the pids of every live descendant of ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def label(pid: int, parent_label: str | None) -> str:
    """Name a service process by its command line: web, predict pool, train, redis..."""
    try:
        argv = (Path(f"/proc/{pid}/cmdline").read_bytes()).split(b"\0")
    except OSError:
        return "gone"
    text = " ".join(a.decode(errors="replace") for a in argv)
    if "ffmpeg" in text:
        return "ffmpeg (decoding)"
    if "redis-server" in text:
        return "redis"
    if "gunicorn" in text:
        return "web worker (gunicorn)" if parent_label == "web master" else "web master"
    if parent_label in ("predict main", "train main"):
        return parent_label.replace("main", "pool process")
    if "celery" in text:
        for role in ("predict", "train"):
            if f"{role}@" in text:
                return f"{role} main"
        if "beat" in text:
            return "beat"
    return "runner" if parent_label is None else f"{parent_label} child"


def cpu_of_tree(root: int) -> float:
    """Return the CPU seconds of ``root`` and its descendants, waited-for children included."""
    total = 0.0
    for pid in [root, *descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
    return total


def sample_memory(root: int, stats: ProcessStats, stop: threading.Event) -> None:
    """Record each service process's peak RSS (VmHWM) until ``stop`` is set."""
    while not stop.is_set():
        parents: dict[int, int] = {}
        for pid in descendants(root):
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        for pid in sorted(parents):
            if pid not in stats.labels:
                stats.labels[pid] = label(pid, stats.labels.get(parents[pid]))
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    mb = int(line.split()[1]) / 1024
                    key = stats.labels[pid]
                    stats.peak_rss_mb[key] = max(stats.peak_rss_mb.get(key, 0.0), mb)
        stop.wait(0.5)


def wait_ready(base_url: str, process: subprocess.Popen[bytes], *, timeout_s: float) -> float:
    """Wait for ``/ready`` to answer 200; return the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise SystemExit("the service exited before it was ready; see its service.log")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.1)
    raise SystemExit(f"/ready did not answer 200 within {timeout_s:.0f} s")


def classify(session: requests.Session, base_url: str, song: Song) -> Outcome:
    """Upload ``song``, poll its job until it ends; return the upload → result latency."""
    started = time.perf_counter()
    with song.path.open("rb") as handle:
        response = session.post(
            f"{base_url}/api/v1/jobs",
            files={"file": (song.path.name, handle, "audio/mpeg")},
            timeout=120,
        )
    if response.status_code not in (200, 202):
        return Outcome(song, time.perf_counter() - started, "refused", response.status_code)
    job = response.json()
    while job["status"] not in ("done", "failed"):
        time.sleep(POLL_INTERVAL_S)
        job = session.get(f"{base_url}/api/v1/jobs/{job['id']}", timeout=30).json()
    latency = time.perf_counter() - started
    outcome = Outcome(song, latency, job["status"], response.status_code)
    if job.get("started_at") and job.get("finished_at"):
        begun, ended = (_when(job[key]) for key in ("started_at", "finished_at"))
        outcome.processing_s = (ended - begun).total_seconds()
    return outcome


def _when(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_load(base_url: str, songs: list[Song], concurrency: int) -> tuple[list[Outcome], float]:
    """Send every song from ``concurrency`` client threads; return the outcomes and wall time."""
    todo = list(songs)
    lock = threading.Lock()
    outcomes: list[Outcome] = []

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                if not todo:
                    return
                song = todo.pop(0)
            outcome = classify(session, base_url, song)
            with lock:
                outcomes.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    """Return the ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=24, help="distinct songs (half 3-min)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--model", type=Path, help="a .keras model (its .onnx beside it)")
    parser.add_argument("--synthetic", action="store_true", help="generated songs, not kit clips")
    parser.add_argument("--kit", type=Path, default=KIT_DATA, help="the team kit's data folder")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--json", dest="as_json", action="store_true", help="also print JSON")
    args = parser.parse_args(argv)
    if args.songs < 2:
        parser.error("--songs must be at least 2")

    tmp = Path(tempfile.mkdtemp(prefix="genreflow-load-"))
    print(f"working in {tmp}", flush=True)
    songs = make_songs(
        tmp / "songs", args.songs + 1, synthetic=args.synthetic, seed=args.seed, kit=args.kit
    )
    first_song, songs = songs[1], [s for i, s in enumerate(songs) if i != 1]  # first job: 3 min
    print(f"{len(songs)} songs ({songs[0].source}, ...); first-job song {first_song.source}")
    model = args.model or default_model(tmp / "model")
    alone = standalone(model, songs)
    print(
        f"standalone ({alone['runtime']}): {alone['cpu_per_song']:.3f} CPU-s per song, "
        f"3-min song {alone['long_wall_median']:.2f} s wall",
        flush=True,
    )

    probe_ms = door_probe_ms(first_song)
    cli_s, cli_lines = cli_missing_file()
    print(f"door probe of a 3-min mp3: {probe_ms:.0f} ms; CLI on a missing file: {cli_s:.2f} s")

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    stats = ProcessStats()
    stop = threading.Event()
    with running_service(tmp / "home", port, model) as service:
        sampler = threading.Thread(target=sample_memory, args=(service.pid, stats, stop))
        sampler.start()
        try:
            ready_s = wait_ready(base_url, service, timeout_s=300)
            first = classify(requests.Session(), base_url, first_song)
            cpu0 = cpu_of_tree(service.pid)
            outcomes, wall = run_load(base_url, songs, args.concurrency)
            service_cpu = cpu_of_tree(service.pid) - cpu0
        finally:
            stop.set()
            sampler.join()
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)

    failed = [o for o in outcomes if o.status != "done"]
    latencies = [o.latency_s for o in outcomes if o.status == "done"]
    long = [o.latency_s for o in outcomes if o.status == "done" and o.song.seconds == LONG_S]
    short = [o.latency_s for o in outcomes if o.status == "done" and o.song.seconds == SHORT_S]
    cpu_per_song = service_cpu / len(outcomes)
    result: dict[str, Any] = {
        "songs": len(outcomes),
        "concurrency": args.concurrency,
        "failed": len(failed),
        "ready_after_start_s": ready_s,
        "first_job_s": first.latency_s,
        "first_job_status": first.status,
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "p99_s": percentile(latencies, 99),
        "long_p50_s": percentile(long, 50) if long else None,
        "long_p99_s": percentile(long, 99) if long else None,
        "short_p50_s": percentile(short, 50) if short else None,
        "long_worker_p50_s": percentile(
            [o.processing_s for o in outcomes if o.status == "done" and o.song.seconds == LONG_S],
            50,
        )
        if long
        else None,
        "first_job_worker_s": first.processing_s,
        "standalone_long_wall_s": alone["long_wall_median"],
        "songs_per_s": len(outcomes) / wall,
        "service_cpu_per_song_s": cpu_per_song,
        "standalone_cpu_per_song_s": alone["cpu_per_song"],
        "queue_overhead_ratio": cpu_per_song / alone["cpu_per_song"],
        "peak_rss_mb": dict(sorted(stats.peak_rss_mb.items())),
        "runtime": alone["runtime"],
        "cores": os.cpu_count(),
        "door_probe_ms": probe_ms,
        "cli_missing_file_s": cli_s,
        "cli_missing_file_stderr": cli_lines,
    }
    print_table(result)
    if args.as_json:
        print(json.dumps(result, indent=2))
    return 1 if failed or first.status != "done" else 0


def print_table(r: dict[str, Any]) -> None:
    """Print the result as a Markdown table with the goals beside it."""

    def verdict(value: float | None, goal: float, *, at_least: bool = False) -> str:
        if value is None:
            return "n/a"
        met = value >= goal if at_least else value <= goal
        return "met" if met else f"missed by {abs(value - goal) / goal:.0%}"

    g = GOALS
    cli_lines = r["cli_missing_file_stderr"]
    rows = [
        ("door check of a 3-min mp3 (ffmpeg header probe, median)",
         f"{r['door_probe_ms']:.0f} ms", "≤ 100 ms", verdict(r["door_probe_ms"], 100.0)),
        ("`genreflow predict /nonexistent.mp3`",
         f"{r['cli_missing_file_s']:.2f} s, {len(cli_lines)} line: {' / '.join(cli_lines)}",
         "< 0.5 s, one line", verdict(r["cli_missing_file_s"], 0.5)),
        ("/ready after start", f"{r['ready_after_start_s']:.1f} s", "", ""),
        ("first job after ready (3-min song)",
         f"{r['first_job_s']:.2f} s ({r['first_job_worker_s']:.2f} s in the worker)",
         f"≤ {g['first_job_s']} s", verdict(r["first_job_s"], g["first_job_s"])),
        (f"upload → result, all songs (p50 / p95 / p99), {r['concurrency']} clients",
         f"{r['p50_s']:.2f} / {r['p95_s']:.2f} / {r['p99_s']:.2f} s", "", ""),
        ("3-min song p50",
         f"{r['long_p50_s']:.2f} s ({r['long_worker_p50_s']:.2f} s in the worker; standalone "
         f"{r['standalone_long_wall_s']:.2f} s)",
         f"≤ {g['long_p50_s']} s", verdict(r["long_p50_s"], g["long_p50_s"])),
        ("3-min song p99", f"{r['long_p99_s']:.2f} s", f"≤ {g['long_p99_s']} s",
         verdict(r["long_p99_s"], g["long_p99_s"])),
        ("30-s song p50", f"{r['short_p50_s']:.2f} s", "", ""),
        ("throughput", f"{r['songs_per_s']:.2f} songs/s", f"≥ {g['songs_per_s']:g} songs/s",
         verdict(r["songs_per_s"], g["songs_per_s"], at_least=True)),
        ("CPU per song: service (all processes) / standalone predict",
         f"{r['service_cpu_per_song_s']:.3f} / {r['standalone_cpu_per_song_s']:.3f} s "
         f"= {r['queue_overhead_ratio']:.2f}x", "", ""),
    ]  # fmt: skip
    for name, mb in r["peak_rss_mb"].items():
        goal = f"≤ {g['predict_rss_mb']:g} MB" if name == "predict pool process" else ""
        check = verdict(mb, g["predict_rss_mb"]) if name == "predict pool process" else ""
        rows.append((f"peak RSS, {name}", f"{mb:.0f} MB", goal, check))
    print()
    print(
        f"{r['songs']} songs (half 3-min), {r['concurrency']} clients, {r['cores']} cores, "
        f"runtime {r['runtime']}, {r['failed']} failed"
    )
    print("| what | measured | goal | |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    sys.exit(main())
