"""Songs per minute of ``genreflow predict FOLDER`` with ``--jobs 1`` and ``--jobs 2``.

A folder of ``--songs`` 3-minute mp3s (44.1 kHz, 128 kb/s) is written once: each song is real
music when ``--clips DIR`` names a folder of clips (six of them, decoded and joined; the kit's
``data/samples`` works), else generated sound. Then, for each ``--jobs`` value, the command is
run as a user runs it, in a fresh process with a fresh output file, and timed from start to
exit: start-up, each process loading the model once, every song decoded and scored.
Songs per minute = songs / wall time x 60; CPU seconds are those of the command and all its
processes (on a busy machine they say more about the cost than the wall time does). The model
is the default one (the registry's active one, the shipped model on a fresh home) unless
``--model`` names another.

    python benchmarks/library_speed.py [--songs 8] [--jobs 1 2] [--clips DIR] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SONG_SECONDS = 180.0  # a 3-minute song
CLIPS_PER_SONG = 6  # six 30-s clips make one song


def write_songs(folder: Path, n_songs: int, clips: Path | None) -> list[Path]:
    """Write ``n_songs`` 3-minute mp3s to ``folder``; return their paths."""
    from shared.core.audio.audio import decode_audio
    from shared.core.learning.demo_data import DEMO_GENRES, synth_track, write_audio

    sr = 44_100
    sources = sorted(p for p in clips.iterdir() if p.is_file()) if clips else []
    songs = []
    for i in range(n_songs):
        if sources:
            picked = [sources[(i + k) % len(sources)] for k in range(CLIPS_PER_SONG)]
            y = np.concatenate([decode_audio(p, sr=sr) for p in picked])
        else:
            part = SONG_SECONDS / len(DEMO_GENRES)
            y = np.concatenate([synth_track(s, seconds=part, sr=sr, seed=i) for s in DEMO_GENRES])
        songs.append(write_audio(folder / f"song{i:03d}.mp3", y[: int(SONG_SECONDS * sr)], sr=sr))
    return songs


def time_run(folder: Path, jobs: int, home: Path, model: str | None) -> tuple[float, float]:
    """Run ``genreflow predict FOLDER --jobs N --output ...`` once; return wall and CPU seconds.

    The CPU seconds are user + system time of the command and every process it started.
    """
    out = home / f"out-{jobs}-{time.monotonic_ns()}.csv"
    argv = [sys.executable, "-m", "shared", "predict", str(folder), "--jobs", str(jobs),
            "--output", str(out)] + (["--model", model] if model else [])  # fmt: skip
    env = {**os.environ, "GENREFLOW_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"predict failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    """Write the folder, time each --jobs value, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=8)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clips", type=Path, help="a folder of audio clips to build songs from")
    parser.add_argument("--model", help="a .keras model (default: the registry's active one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genreflow-library-speed-") as tmp:
        folder, home = Path(tmp, "songs"), Path(tmp, "home")
        songs = write_songs(folder, args.songs, args.clips)
        print(f"{len(songs)} songs of {SONG_SECONDS / 60:.0f} min (mp3) in {folder}")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
        print(f"{'jobs':>4} {'wall s':>8} {'songs/min':>10} {'CPU s':>7} {'CPU s/song':>11}")
        for jobs in args.jobs:
            wall, cpu = time_run(folder, jobs, home, args.model)
            rate = len(songs) / wall * 60
            print(f"{jobs:>4} {wall:>8.1f} {rate:>10.1f} {cpu:>7.1f} {cpu / len(songs):>11.2f}")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
