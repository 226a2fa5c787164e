"""Accuracy on real music: train and evaluate on GTZAN with the artist-filtered split.

    python benchmarks/gtzan_accuracy.py [--gtzan ../shared/data/gtzan] [--architecture bilstm]

Expects the GTZAN audio in GTZAN layout (``<gtzan>/<genre>/<genre>.000NN.<ext>``) and the split
lists in ``<gtzan>/splits/`` (the team kit's layout). Each architecture is trained on the
train list, early-stopped on the valid list and scored on the test list, so no artist is on both
sides. It prints track accuracy by vote (what the service answers), by mean probability, and
segment accuracy. Without the audio it says so and exits 2: it never substitutes synthetic data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_GTZAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan"


def main() -> int:
    """Train each requested architecture on GTZAN and print its held-out figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gtzan", type=Path, default=DEFAULT_GTZAN)
    parser.add_argument("--splits", type=Path, help="split lists (default: <gtzan>/splits)")
    parser.add_argument("--architecture", nargs="+", default=["baseline", "bilstm"])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument(
        "--augment", action="store_true", help="half-segment-shifted extra segments"
    )
    parser.add_argument("--deltas", action="store_true", help="add delta and delta-delta MFCCs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/gtzan"))
    args = parser.parse_args()

    splits = args.splits or args.gtzan / "splits"
    genres = [p for p in args.gtzan.glob("*") if p.is_dir() and p.name != "splits"]
    if not genres or not any(any(g.iterdir()) for g in genres):
        print(
            f"No GTZAN audio under {args.gtzan}: no accuracy on real music can be measured here.\n"
            "Put the 1,000 clips there as <genre>/<genre>.000NN.<ext> and run this again.",
            file=sys.stderr,
        )
        return 2

    from shared.core.features import FeatureConfig
    from shared.core.training import TrainOptions, train_from_folder

    rows = []
    for architecture in args.architecture:
        report = train_from_folder(
            args.gtzan,
            args.out,
            options=TrainOptions(
                epochs=args.epochs,
                architecture=architecture,
                split_dir=str(splits),
                cache_dir=str(args.out / "cache"),
                augment=args.augment,
            ),
            feature_config=FeatureConfig(deltas=args.deltas),
        )
        rows.append((architecture, report))
    print(f"\nGTZAN, artist-filtered split ({splits}):")
    print(f"{'architecture':<14}{'tracks':>7}{'vote':>8}{'mean':>8}{'segment':>9}  model")
    for architecture, report in rows:
        m = report.metrics
        print(
            f"{architecture:<14}{m['n_test_tracks']:>7}{m['track_accuracy_vote']:>8.1%}"
            f"{m['track_accuracy_mean']:>8.1%}{m['segment_accuracy']:>9.1%}  {report.model_path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
