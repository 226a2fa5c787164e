"""How well the demo recipe learns the synthetic sounds: a sanity figure, not accuracy on music.

    python benchmarks/demo_accuracy.py [--genres classical disco metal] [--per-genre 2]

Trains the seed recipe on a synthetic GTZAN-layout folder (as the suite's tiny model: 5 tracks of
9 s per style, 25 epochs) and scores new synthetic tracks of each style (other seeds, 12-s mp3s)
through the serving path. It prints how many the model named right. The suite once asserted 5 of
6 here; the goal lives in this benchmark now, and the test checks only the mechanism.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

TINY_GENRES = ("classical", "disco", "metal")


def main(argv: list[str] | None = None) -> int:
    """Train, score held-out synthetic tracks, print the tally; exit 1 below ``--goal``."""
    from shared.core.learning.demo_data import synth_track, write_audio, write_demo_dataset
    from shared.core.learning.training import TrainOptions, train_from_folder
    from shared.core.nets.model import load_genre_model
    from shared.core.serving.predict import predict_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genres", nargs="+", default=list(TINY_GENRES))
    parser.add_argument("--per-genre", type=int, default=2, help="held-out tracks per style")
    parser.add_argument("--goal", type=float, default=5 / 6, help="share to name right")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="genreflow-demo-accuracy-") as tmp:
        root = Path(tmp)
        write_demo_dataset(root / "data", genres=args.genres, tracks_per_genre=5, seconds=9.0,
                           seed=7)  # fmt: skip
        options = TrainOptions(epochs=25, patience=25, valid_fraction=0.2, test_fraction=0.2,
                               cache_dir=str(root / "cache"), progress_bar=False)  # fmt: skip
        report = train_from_folder(root / "data", root / "model", options=options)
        model = load_genre_model(report.model_path)
        right = total = 0
        print("| style | seed | answer | confidence |\n|---|---|---|---|")
        for genre in args.genres:
            for seed in range(101, 101 + args.per_genre):
                path = write_audio(root / f"{genre}-{seed}.mp3",
                                   synth_track(genre, seconds=12.0, seed=seed))  # fmt: skip
                answer = predict_file(path, model)
                right += answer.genre == genre
                total += 1
                print(f"| {genre} | {seed} | {answer.genre} | {answer.confidence:.2f} |")
    share = right / total
    print(f"named right: {right} of {total} ({share:.0%}); goal {args.goal:.0%}: "
          f"{'met' if share >= args.goal else 'missed'}")  # fmt: skip
    return 0 if share >= args.goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
