"""How much genre the musicnn embedding alone carries: a linear model on it, on the same folds.

    python benchmarks/linear_probe.py ../shared/data/emotify ../shared/data/4q

A logistic regression (standardised inputs, balanced class weights) on each 3-s segment's
musicnn embedding, scored per track by the mean of its segments' probabilities, on the folds of
``benchmarks/accuracy.py`` (by artist where known). It bounds what the LSTM head can draw from
the embedding with a linear read-out; it is not a model genreflow serves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import accuracy

PROBES = (  # (name, embedding, inverse regularisation C)
    ("pool, C=0.01", "pool", 0.01),
    ("penultimate, C=0.05", "penultimate", 0.05),
    ("pool, C=0.001", "pool", 0.001),
)


def main(argv: list[str] | None = None) -> int:
    """Print track accuracy (mean rule) of each probe, overall and per source."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", type=Path, nargs="+")
    parser.add_argument("--cache-dir", type=Path, default=accuracy.DEFAULT_CACHE)
    parser.add_argument("--seed", type=int, default=accuracy.SEED)
    args = parser.parse_args(argv)

    collection = accuracy.Collection.load(args.data_dirs)
    data = accuracy.TrackData(collection.tracks, args.cache_dir, progress=False)
    embeddings = data.embeddings()
    tracks = data.usable
    genres = sorted({t.genre for t in tracks})
    folds = accuracy._folds(
        tracks, n_folds=accuracy.N_FOLDS, seed=args.seed, split_dir=None, groups=collection.group
    )
    for name, output, c in PROBES:
        hits: list[bool] = []
        per_source: dict[str, list[bool]] = {}
        for fold in folds:
            train = fold["train"] + fold["valid"]
            x = np.concatenate([embeddings[t][output] for t in train])
            y = np.concatenate(
                [[genres.index(t.genre)] * len(embeddings[t][output]) for t in train]
            )
            model = make_pipeline(
                StandardScaler(),
                LogisticRegression(C=c, max_iter=300, class_weight="balanced"),
            )
            model.fit(x, y)
            for track in fold["test"]:
                p = model.predict_proba(embeddings[track][output]).mean(axis=0)
                right = genres[int(p.argmax())] == track.genre
                hits.append(right)
                per_source.setdefault(collection.source[track], []).append(right)
        sources = ", ".join(f"{s} {np.mean(v):.1%}" for s, v in per_source.items())
        print(f"{name}: {np.mean(hits):.1%} ({sources})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
