"""Prediction speed on one 3-minute mp3, three ways side by side in one run.

(a) the article's loop: ``librosa.load``, then per 3-s segment one ``librosa.feature.mfcc`` and
    one ``model.predict`` of that one segment;
(b) genreflow's ``predict_file`` (streamed decode overlapped with batched MFCCs, one traced
    LSTM call, vote);
(c) the floor: genreflow's decode + batched MFCCs alone, no model.

The model is a baseline LSTM with untrained weights (speed does not depend on the weights), built
and loaded once before timing, as a worker holds it. The mp3 is generated, not music.
The ways run in rotating order for ``--repeat`` rounds; each way's median is reported.
Target: a/b >= 12 and b/c <= 1.2.

    python benchmarks/predict_speed.py [--seconds 180] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_song(path: Path, seconds: float) -> Path:
    """Write a synthetic song that moves through the demo styles, as a 44.1 kHz stereo-free mp3."""
    from shared.core.learning.demo_data import DEMO_GENRES, synth_track, write_audio

    part = seconds / len(DEMO_GENRES)
    y = np.concatenate(
        [synth_track(style, seconds=part, sr=44_100, seed=i) for i, style in enumerate(DEMO_GENRES)]
    )
    return write_audio(path, y, sr=44_100)


def article_predict(path: Path, keras_model, config) -> str:
    """Run the seed article's loop: one MFCC and one ``model.predict`` per segment."""
    import librosa

    y, sr = librosa.load(path, sr=config.sample_rate)
    length = config.samples_per_segment
    votes = []
    for start in range(0, len(y) - length + 1, length):
        mfcc = librosa.feature.mfcc(
            y=y[start : start + length],
            sr=sr,
            n_mfcc=config.n_mfcc,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
        ).T
        votes.append(int(np.argmax(keras_model.predict(mfcc[np.newaxis], verbose=0))))
    return str(np.bincount(votes).argmax())


def timed_side_by_side(ways: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Return each way's median wall time over ``repeat`` rounds, after one untimed warm-up.

    Every round runs every way once, in a rotating order, so a passing load on a shared
    machine hits all ways alike instead of whichever happened to run then.
    """
    for function in ways.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for round_ in range(repeat):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = time.perf_counter()
            ways[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Run the three ways and print their times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="song length")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per way")
    args = parser.parse_args()

    from shared.core.audio.audio import decode_audio
    from shared.core.audio.features import DEFAULT_FEATURES, mfcc_segments
    from shared.core.nets.model import build_model, load_genre_model, new_version, save_model
    from shared.core.serving.predict import predict_file

    config = DEFAULT_FEATURES
    with tempfile.TemporaryDirectory() as tmp:
        song = make_song(Path(tmp) / "song.mp3", args.seconds)
        keras_model = build_model((config.n_frames, config.n_features), 10)
        genres = ["blues", "classical", "country", "disco", "hiphop",
                  "jazz", "metal", "pop", "reggae", "rock"]  # fmt: skip
        model_path = save_model(
            keras_model, tmp, version=new_version(), genres=genres, feature_config=config
        )
        model = load_genre_model(model_path)

        def floor() -> np.ndarray:
            return mfcc_segments(decode_audio(song), config=config)

        n_segments = len(floor())
        medians = timed_side_by_side(
            {
                "a": lambda: article_predict(song, model.keras_model, config),
                "b": lambda: predict_file(song, model),
                "c": floor,
                "decode": lambda: decode_audio(song),
            },
            args.repeat,
        )
    a, b, c, decode = (medians[k] for k in ("a", "b", "c", "decode"))

    print(
        f"song: {args.seconds:.0f} s synthetic mp3, {n_segments} segments; cpus: {os.cpu_count()}"
    )
    print(f"(a) article loop (librosa.load + per-segment mfcc + predict): {a:8.3f} s")
    print(f"(b) genreflow predict_file:                                 {b:8.3f} s")
    print(f"(c) floor, decode + batched MFCC:                           {c:8.3f} s")
    print(f"    of which decode:                                        {decode:8.3f} s")
    print(f"a/b = {a / b:.1f}x faster than the article (target >= 12)")
    print(f"b/c = {b / c:.2f}x the floor (target <= 1.2)")
    print(
        f"a/decode = {a / decode:.1f}x: the most a/b could be here, even with free MFCCs and LSTM"
    )


if __name__ == "__main__":
    main()
