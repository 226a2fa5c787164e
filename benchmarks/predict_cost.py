"""CPU cost of predicting one 3-minute song with a served model, split by stage, every variant.

::

    python benchmarks/predict_cost.py [MODEL] [--repeat 3] [--fidelity fidelity.json]

``MODEL`` is a ``.keras`` file (its ``.onnx`` and sidecar beside it) or a folder holding one;
the packaged default model when omitted. In one process, with one math thread (as a predict
pool process runs, :func:`shared.core.serving.inference.use_one_math_thread`), it

1. writes a 3-minute 44.1 kHz stereo 192 kbps mp3: the team kit's 30-s clips
   (``../shared/data/samples``) joined, or generated audio with ``--synthetic`` or without the kit;
2. measures CPU seconds (this process plus its ffmpeg, ``getrusage`` SELF + CHILDREN) of each
   stage alone: decode, MFCCs, log-mel of every segment and of every k-th, musicnn per runtime
   and precision, the head, and the AudioSet ear ("sounds like", every model) on every k-th;
3. measures ``predict_file`` end to end for every serving variant, beside the floor
   (decode + MFCCs, what a model without musicnn costs), and prints CPU per song and its ratio
   to the floor. With ``--fidelity`` (written by ``benchmarks/fidelity.py``) each variant's
   agreement with the exact path on the kit's songs stands in the same row.

Each variant runs ``--repeat`` times in a rotating order after one untimed run; the median is
reported. The machine may be shared: compare the ratios of one run more than absolute times.
Goal (issue 15): the default within 1.5 x the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KIT_SAMPLES = PROJECT_ROOT.parent / "shared" / "data" / "samples"
SONG_SECONDS = 180.0
SONG_RATE = 44_100
SONG_BITRATE = "192k"
GOAL_RATIO = 1.5
DEFAULT_ROW = "staged OpenVINO bf16, k=4 (>= 10 patches)"


def cpu_seconds() -> float:
    """Return CPU seconds (user + system) of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def make_song(
    path: Path, *, samples: Path | None = KIT_SAMPLES, seconds: float = SONG_SECONDS
) -> str:
    """Write the benchmark mp3 (44.1 kHz stereo, 192 kbps); return what it is made of.

    ``samples`` is a folder of ``.au`` clips to join (the kit's); ``None`` generates audio.
    """
    from shared.core.audio.audio import decode_audio, ffmpeg_executable

    sr = 22_050
    clips = sorted(samples.glob("*.au")) if samples is not None and samples.is_dir() else []
    if clips:
        y = np.concatenate([decode_audio(clip, sr=sr) for clip in clips])
        source = f"kit samples joined ({len(clips)} GTZAN clips, looped)"
    else:
        from shared.core.learning.demo_data import DEMO_GENRES, synth_track

        part = seconds / len(DEMO_GENRES)
        y = np.concatenate(
            [synth_track(s, seconds=part, sr=sr, seed=i) for i, s in enumerate(DEMO_GENRES)]
        )
        source = "generated (demo styles)"
    n = int(seconds * sr)
    y = np.resize(y, n).astype(np.float32)  # loops the clips up to the length
    stereo = np.stack([y, np.roll(y, 441)], axis=1)  # a 20 ms offset: not a mono file in disguise
    pcm = (np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes()
    command = [
        ffmpeg_executable(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(sr), "-ac", "2", "-i", "pipe:0",
        "-ar", str(SONG_RATE), "-ac", "2", "-b:a", SONG_BITRATE, str(path),
    ]  # fmt: skip
    subprocess.run(command, input=pcm, check=True, capture_output=True, timeout=300)
    return source


def median_cpu(ways: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Return each way's median CPU seconds over ``repeat`` rotating rounds, after a warm-up."""
    for way in ways.values():
        way()
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for round_ in range(repeat):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = cpu_seconds()
            ways[name]()
            times[name].append(cpu_seconds() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def find_model(path: Path | None) -> Path:
    """Return the ``.keras`` file named by ``path`` (a file or a folder), or the default model."""
    if path is None:
        path = PROJECT_ROOT / "shared" / "default_model"
    if path.is_dir():
        found = sorted(path.glob("*.keras"))
        if not found:
            sys.exit(f"no .keras model in {path}")
        return found[-1]
    return path


def variants() -> dict[str, Any]:
    """Return the serving variants measured, by row name (``DEFAULT_ROW`` is the default)."""
    from shared.core.serving.staged import EXACT, FAST, ServingOptions

    def fixed(k: int, **options: Any) -> ServingOptions:
        return ServingOptions(musicnn_stride=k, musicnn_min_patches=1, **options)

    rows: dict[str, Any] = {"exact: whole graph, ONNX Runtime f32, k=1": EXACT}
    rows["staged ONNX Runtime f32, k=1"] = fixed(1, runtime="onnxruntime")
    rows["staged OpenVINO f32, k=1"] = fixed(1, precision="f32")
    rows["staged OpenVINO bf16, k=1"] = fixed(1, precision="bf16")
    for k in (2, 4, 6, 8):
        rows[f"staged OpenVINO bf16, k={k}"] = fixed(k, precision="bf16")
    rows[DEFAULT_ROW] = FAST
    # the default's fallbacks: a CPU without bf16, a machine without OpenVINO
    rows["staged OpenVINO f32, k=4 (>= 10 patches)"] = replace(FAST, precision="f32")
    rows["staged ONNX Runtime f32, k=4 (>= 10 patches)"] = replace(FAST, runtime="onnxruntime")
    return rows


def main() -> None:
    """Measure and print the stage costs and the variants' table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, help=".keras file or folder")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--synthetic", action="store_true", help="generated audio, not the kit")
    parser.add_argument("--samples", type=Path, default=KIT_SAMPLES, help="folder of .au clips")
    parser.add_argument("--fidelity", type=Path, help="JSON from benchmarks/fidelity.py")
    parser.add_argument("--json", dest="as_json", action="store_true", help="also print JSON")
    args = parser.parse_args()

    from shared.core.audio.audio import decode_audio
    from shared.core.audio.audioset_input import audioset_segments
    from shared.core.audio.features import logmel_segments, mfcc_segments
    from shared.core.nets.audioset import get_ear
    from shared.core.serving.inference import load_served_model, use_one_math_thread
    from shared.core.serving.predict import predict_file
    from shared.core.serving.runtimes import cpu_flags
    from shared.core.serving.staged import FAST, patch_segments

    use_one_math_thread()
    model_path = find_model(args.model)
    rows = variants()
    models = {name: load_served_model(model_path, serving=o) for name, o in rows.items()}
    exact = models[next(iter(rows))]
    config = exact.feature_config
    with tempfile.TemporaryDirectory() as tmp:
        song = Path(tmp) / "song.mp3"
        source = make_song(song, samples=None if args.synthetic else args.samples)
        y = decode_audio(song)
        mfcc = mfcc_segments(y, config=config)
        n_segments = len(mfcc)
        stages: dict[str, Callable[[], Any]] = {
            "decode": lambda: decode_audio(song),
            "MFCCs": lambda: mfcc_segments(y, config=config),
            "floor: decode + MFCCs": lambda: mfcc_segments(decode_audio(song), config=config),
        }
        if config.musicnn:
            k = FAST.musicnn_stride
            chosen = patch_segments(n_segments, k)
            logmel = logmel_segments(y, config=config)
            stages["log-mel, every segment"] = lambda: logmel_segments(y, config=config)
            stages[f"log-mel, every {k}th"] = lambda: logmel_segments(
                y, config=config, segments=chosen
            )
            for name, model in models.items():
                staged = model.staged
                if staged is None or "k=1" not in name:
                    continue
                label = name.split(",")[0].removeprefix("staged ")
                stages[f"musicnn, every segment: {label}"] = lambda s=staged: s.embed(logmel)
            fast = models[DEFAULT_ROW].staged
            embedded = fast.embed(logmel)
            whole = {"mfcc": mfcc, "logmel": logmel}
            if config.audioset:  # the AudioSet embedding is an input of the head too
                heard_all = audioset_segments(y, config=config)
                whole["audioset"] = embedded["audioset"] = get_ear().outputs(heard_all)["embedding"]
            stages["head (LSTM + dense), every segment"] = lambda: fast.head(mfcc, embedded)
            stages["exact whole graph, every segment"] = lambda: exact.predict_segments(whole)
        k, ear = FAST.musicnn_stride, get_ear()
        heard = patch_segments(n_segments, k)
        ear_input = audioset_segments(y, config=config, segments=heard)
        ear.outputs(ear_input[:1])  # the session opens once per process, not per song
        stages[f"AudioSet ear input (32 kHz log-mel), every {k}th"] = lambda: audioset_segments(
            y, config=config, segments=heard
        )
        stages[f"AudioSet ear (mn04, ONNX Runtime), every {k}th"] = lambda: ear.outputs(ear_input)
        stage_cpu = median_cpu(stages, args.repeat)
        ends = {name: (lambda m=model: predict_file(song, m)) for name, model in models.items()}
        ends["floor: decode + MFCCs"] = stages["floor: decode + MFCCs"]
        end_cpu = median_cpu(ends, args.repeat)
    fidelity = json.loads(args.fidelity.read_text()) if args.fidelity else {}
    floor = end_cpu["floor: decode + MFCCs"]
    flags = cpu_flags()
    bf16 = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni") if f in flags]
    print(f"model: {model_path.name}; song: 180 s mp3 44.1 kHz stereo 192 kbps, {source}")
    print(f"{n_segments} segments; cpus: {os.cpu_count()}; CPU flags: {', '.join(bf16) or 'none'}")
    print(f"one math thread; CPU s = this process + ffmpeg; median of {args.repeat}\n")
    print("| stage | CPU s per 3-min song |")
    print("|---|---|")
    for name, value in stage_cpu.items():
        print(f"| {name} | {value:.3f} |")
    print()
    header = "| variant | CPU s per 3-min song | x floor |"
    rule = "|---|---|---|"
    if fidelity:
        header += " same top genre (songs) | max abs Δp (song) | accuracy (in-sample) |"
        rule += "---|---|---|"
    print(header)
    print(rule)
    print(f"| floor: decode + MFCCs | {floor:.3f} | 1.00 |" + (" | | |" if fidelity else ""))
    for name in rows:
        mark = " (default)" if name == DEFAULT_ROW else ""
        line = f"| {name}{mark} | {end_cpu[name]:.3f} | {end_cpu[name] / floor:.2f} |"
        if fidelity:
            row = fidelity.get("variants", {}).get(name)
            line += (
                f" {row['top_agreement']:.1%} | {row['max_abs_dp']:.3f} | {row['accuracy']:.1%} |"
                if row
                else " | | |"
            )
        print(line)
    ratio = end_cpu[DEFAULT_ROW] / floor
    print(f"\ndefault / floor = {ratio:.2f} (goal <= {GOAL_RATIO})")
    if args.as_json:
        print(json.dumps({"stages": stage_cpu, "variants": end_cpu, "floor": floor}))


if __name__ == "__main__":
    main()
