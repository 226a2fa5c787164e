"""Upload → result latency of a running genreflow service, for a 3-minute mp3.

Start the service first (``genreflow run``, with an active model), then::

    python benchmarks/service_latency.py --url http://127.0.0.1:8000 --repeat 3

Each round synthesises a *different* song (uploads of identical bytes are answered from the
earlier result, which would measure nothing), encodes it as mp3, uploads it, and polls the job
until it is done. It prints, per round: the upload request, the wait in the queue, the worker's
processing time (decode + MFCC + LSTM + vote) and the total from the start of the upload to the
result being visible to a poller. The first round after a worker starts includes loading the
model in that worker process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

POLL_INTERVAL_S = 0.05


def make_song(path: Path, *, seconds: float, seed: int) -> Path:
    """Write a synthetic mp3 of ``seconds`` seconds (genre styles alternate per seed)."""
    from shared.core.learning.demo_data import DEMO_GENRES, synth_track, write_audio

    style = DEMO_GENRES[seed % len(DEMO_GENRES)]
    return write_audio(path, synth_track(style, seconds=seconds, seed=seed))


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def measure_once(base_url: str, song: Path, *, timeout_s: float) -> dict[str, Any]:
    """Upload ``song`` and poll its job until it ends; return the timings in seconds."""
    session = requests.Session()
    started = time.perf_counter()
    with song.open("rb") as handle:
        response = session.post(
            f"{base_url}/api/v1/jobs", files={"file": (song.name, handle, "audio/mpeg")}, timeout=60
        )
    uploaded = time.perf_counter()
    if response.status_code not in (200, 202):
        raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
    job = response.json()
    while job["status"] not in ("done", "failed"):
        if time.perf_counter() - started > timeout_s:
            raise SystemExit(f"job {job['id']} not finished after {timeout_s} s: {job}")
        time.sleep(POLL_INTERVAL_S)
        job = session.get(f"{base_url}/api/v1/jobs/{job['id']}", timeout=10).json()
    finished = time.perf_counter()
    if job["status"] != "done":
        raise SystemExit(f"job failed: {job['error']}")
    created, begun, ended = (_parse(job[k]) for k in ("created_at", "started_at", "finished_at"))
    return {
        "total_s": finished - started,
        "upload_s": uploaded - started,
        "queued_s": (begun - created).total_seconds(),
        "processing_s": (ended - begun).total_seconds(),
        "genre": job["result"]["genre"],
        "n_segments": job["result"]["n_segments"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per round and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="service base URL")
    parser.add_argument("--seconds", type=float, default=180.0, help="song length")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (distinct songs)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-round limit, seconds")
    args = parser.parse_args(argv)
    base_url = args.url.rstrip("/")
    requests.get(f"{base_url}/health", timeout=5).raise_for_status()

    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            song = make_song(
                Path(tmp) / f"bench-{i}.mp3", seconds=args.seconds, seed=int(time.time()) + i
            )
            size_mb = song.stat().st_size / 1e6
            timing = measure_once(base_url, song, timeout_s=args.timeout)
            rounds.append(timing)
            print(
                f"round {i + 1}: {args.seconds:.0f} s mp3 ({size_mb:.1f} MB) → "
                f"{timing['genre']} ({timing['n_segments']} segments): "
                f"total {timing['total_s']:.2f} s = upload {timing['upload_s']:.2f} s, "
                f"queued {timing['queued_s']:.2f} s, processing {timing['processing_s']:.2f} s"
            )
    totals = [r["total_s"] for r in rounds]
    warm = totals[1:] or totals
    print(
        f"upload→result for a {args.seconds:.0f} s mp3: first {totals[0]:.2f} s, "
        f"median of the rest {statistics.median(warm):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
