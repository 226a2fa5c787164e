"""Accuracy on real music: cross-validate model variants by track on any ``<genre>/<file>`` folder.

    python benchmarks/accuracy.py ../shared/data/emotify [--variants seed musicnn ...]
    python benchmarks/accuracy.py /path/to/gtzan --split-dir ../shared/data/gtzan/splits

Stratified k-fold cross-validation (5 folds, seeded) over *tracks*, never segments: every fold
trains on the other folds' tracks (15 % of them, again by track, kept aside for early stopping)
and is scored on its own tracks. With ``--split-dir`` the fixed train/valid/test lists are used
instead (GTZAN's artist-filtered split), as one "fold". For each variant it prints, side by side,
mean ± sd over folds of track accuracy by vote (what the service answers) and by mean
probability, segment accuracy and training time; then per-genre F1 and the confusion matrix
pooled over folds. The seed recipe (LSTM(64) → Dense(64, relu) → softmax, Adam 1e-3, batch 32)
is always the first row. Features (MFCCs, musicnn embeddings) are cached on disk by file content
hash + settings, so variants and reruns reuse them; the first run's feature time is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CACHE = Path("benchmarks/out/cache")
SEED = 42
N_FOLDS = 5
VALID_FRACTION = 0.15
EPOCHS = 40
PATIENCE = 6
BATCH_SIZE = 32


@dataclass(frozen=True)
class Variant:
    """One model recipe to cross-validate."""

    name: str
    architecture: str = "baseline"
    deltas: bool = False
    augment: bool = False
    embedding: str | None = None  # musicnn output beside the MFCCs: "penultimate" or "pool"
    networks: tuple[str, ...] = ("MSD_musicnn",)  # pretrained musicnn weights, concatenated

    def describe(self) -> str:
        """One line for the table's legend."""
        parts = [
            "LSTM(64)" if self.architecture == "baseline" else "BiLSTM",
            "13 MFCC + Δ + ΔΔ" if self.deltas else "13 MFCC",
        ]
        if self.augment:
            parts.append("half-segment augmentation")
        if self.embedding:
            nets = " + ".join(n.removesuffix("_musicnn") for n in self.networks)
            parts.append(f"musicnn ({nets}) {self.embedding} embedding beside the LSTM")
        return ", ".join(parts)


VARIANTS = {
    v.name: v
    for v in (
        Variant("seed"),
        Variant("bilstm+deltas+augment", architecture="bilstm", deltas=True, augment=True),
        Variant("musicnn", embedding="penultimate"),
        Variant("musicnn-pool", embedding="pool"),
        Variant(
            "musicnn+bilstm+deltas", architecture="bilstm", deltas=True, embedding="penultimate"
        ),
        Variant("musicnn-mtt", embedding="penultimate", networks=("MTT_musicnn",)),
        Variant(
            "musicnn-msd+mtt", embedding="penultimate", networks=("MSD_musicnn", "MTT_musicnn")
        ),
    )
}


def _folds(
    tracks: list[Any], *, n_folds: int, seed: int, split_dir: Path | None
) -> list[dict[str, list[Any]]]:
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from shared.core.dataset import split_from_lists

    if split_dir is not None:
        return [split_from_lists(tracks, split_dir)]
    labels = [t.genre for t in tracks]
    n_genres = len(set(labels))
    folds = []
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(len(tracks)), labels)):
        train, valid = train_test_split(
            [tracks[i] for i in train_idx],
            test_size=max(n_genres, round(VALID_FRACTION * len(train_idx))),
            stratify=[labels[i] for i in train_idx],
            random_state=seed + fold,
        )
        folds.append({"train": train, "valid": valid, "test": [tracks[i] for i in test_idx]})
    return folds


class TrackData:
    """Every track's cached features, loaded once per benchmark run."""

    def __init__(self, tracks: list[Any], cache_dir: Path, *, progress: bool) -> None:
        from shared.core.dataset import FeatureCache, load_features
        from shared.core.features import FeatureConfig

        self.config = FeatureConfig()
        self.tracks = tracks
        self.cache = FeatureCache(cache_dir, self.config)
        self.cache_dir = cache_dir
        self.progress = progress
        started = time.perf_counter()
        self.mfcc, self.skipped = load_features(tracks, self.cache, progress_bar=progress)
        self.seconds = {"mfcc": time.perf_counter() - started}
        self._shifted: dict[Any, np.ndarray] | None = None
        self._embeddings: dict[str, dict[Any, dict[str, np.ndarray]]] = {}

    @property
    def usable(self) -> list[Any]:
        """Tracks whose audio could be decoded."""
        return [t for t in self.tracks if t in self.mfcc]

    def shifted(self) -> dict[Any, np.ndarray]:
        """Half-segment-shifted MFCC segments of every track (augmentation)."""
        if self._shifted is None:
            from shared.core.dataset import load_features

            started = time.perf_counter()
            self._shifted, _ = load_features(
                self.usable,
                self.cache,
                offset=self.config.samples_per_segment // 2,
                progress_bar=self.progress,
            )
            self.seconds["mfcc_shifted"] = time.perf_counter() - started
        return self._shifted

    def embeddings(self, network: str = "MSD_musicnn") -> dict[Any, dict[str, np.ndarray]]:
        """Embeddings of every track's segments by one pretrained musicnn network."""
        if network not in self._embeddings:
            from tqdm import tqdm

            from shared.core.embeddings import EmbeddingCache

            cache = EmbeddingCache(self.cache_dir, self.config, weights=network)
            started = time.perf_counter()
            self._embeddings[network] = {
                t: cache.embeddings(t.path)
                for t in tqdm(self.usable, desc=network, unit="track", disable=not self.progress)
            }
            self.seconds[network] = time.perf_counter() - started
        return self._embeddings[network]


def _inputs(
    data: TrackData, tracks: list[Any], variant: Variant, genres: list[str], *, train: bool
) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
    from shared.core.features import add_deltas

    index = {g: i for i, g in enumerate(genres)}
    mfcc = [data.mfcc[t] for t in tracks]
    labels = [index[t.genre] for t in tracks]
    counts = [len(m) for m in mfcc]
    x = np.concatenate(mfcc)
    y = np.repeat(labels, counts)
    if variant.augment and train:
        shifted = data.shifted()
        extra = [shifted[t] for t in tracks if t in shifted]
        x = np.concatenate([x, *extra])
        y = np.concatenate([y, np.repeat([index[t.genre] for t in tracks if t in shifted],
                                         [len(e) for e in extra])])  # fmt: skip
    if variant.deltas:
        x = add_deltas(x)
    inputs = [x]
    if variant.embedding:
        per_network = [data.embeddings(network) for network in variant.networks]
        inputs.append(
            np.concatenate(
                [
                    np.concatenate([e[t][variant.embedding] for e in per_network], axis=1)
                    for t in tracks
                ]
            )
        )
    return inputs, np.eye(len(genres), dtype=np.float32)[y], counts


def _build(variant: Variant, inputs: list[np.ndarray], n_classes: int) -> Any:
    from shared.core.fusion_model import build_fusion_head
    from shared.core.model import build_model

    flat = inputs[0].reshape(-1, inputs[0].shape[-1])
    if variant.embedding is None:
        return build_model(
            inputs[0].shape[1:],
            n_classes,
            architecture=variant.architecture,
            feature_mean=flat.mean(axis=0),
            feature_var=flat.var(axis=0),
        )
    return build_fusion_head(
        inputs[0].shape[1:],
        inputs[1].shape[1],
        n_classes,
        architecture=variant.architecture,
        mfcc_mean=flat.mean(axis=0),
        mfcc_var=flat.var(axis=0),
        embedding_mean=inputs[1].mean(axis=0),
        embedding_var=inputs[1].var(axis=0),
    )


def run_fold(
    data: TrackData,
    fold: dict[str, list[Any]],
    variant: Variant,
    genres: list[str],
    *,
    epochs: int,
    patience: int,
    seed: int,
    verbose: int,
    strides: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Train one variant on one fold's training tracks and score its test tracks.

    With ``strides``, a musicnn variant's test tracks are scored again as the fast serving path
    scores them: musicnn's embedding of every k-th segment only, each segment taking its
    nearest patch's (:mod:`shared.core.staged`); ``by_stride`` holds those track accuracies.
    """
    from shared.core.evaluation import evaluate_probabilities
    from shared.core.model import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    x_train, y_train, _ = _inputs(data, fold["train"], variant, genres, train=True)
    x_valid, y_valid, _ = _inputs(data, fold["valid"], variant, genres, train=False)
    x_test, _, counts = _inputs(data, fold["test"], variant, genres, train=False)
    model = _build(variant, x_train, len(genres))
    if len(x_train) == 1:
        x_train, x_valid, x_test = x_train[0], x_valid[0], x_test[0]
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_valid, y_valid),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        shuffle=True,
        verbose=verbose,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
        ],
    )
    train_seconds = time.perf_counter() - started
    probabilities = np.asarray(model.predict(x_test, batch_size=256, verbose=0))
    per_track = np.split(probabilities, np.cumsum(counts)[:-1])
    metrics = evaluate_probabilities(per_track, [t.genre for t in fold["test"]], genres)
    if strides and variant.embedding:
        metrics["by_stride"] = {
            str(k): _accuracy_at_stride(model, x_test, counts, fold["test"], genres, k)
            for k in strides
        }
    metrics["train_seconds"] = round(train_seconds, 1)
    metrics["epochs_run"] = len(history.history["loss"])
    return metrics


def _accuracy_at_stride(
    model: Any,
    x_test: list[np.ndarray],
    counts: list[int],
    tracks: list[Any],
    genres: list[str],
    stride: int,
) -> float:
    """Track accuracy (vote) when each test track's embedding rows come from every k-th patch."""
    from shared.core.evaluation import evaluate_probabilities
    from shared.core.staged import nearest_patches, patch_segments

    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = []
    for start, n in zip(starts, counts, strict=True):
        patches = patch_segments(n, stride)
        patches = patches if patches.size else np.array([n - 1])
        rows.append(start + patches[nearest_patches(n, patches)])
    embedding = x_test[1][np.concatenate(rows)]
    probabilities = np.asarray(model.predict([x_test[0], embedding], batch_size=256, verbose=0))
    per_track = np.split(probabilities, np.cumsum(counts)[:-1])
    metrics = evaluate_probabilities(per_track, [t.genre for t in tracks], genres)
    return float(metrics["track_accuracy_vote"])


def summarise(variant: Variant, folds: list[dict[str, Any]], genres: list[str]) -> dict[str, Any]:
    """Mean ± sd over folds, and per-genre F1 and confusion pooled over folds."""
    confusion = np.sum([f["confusion_matrix"] for f in folds], axis=0)
    tp = np.diag(confusion).astype(float)
    precision = tp / np.maximum(confusion.sum(axis=0), 1)
    recall = tp / np.maximum(confusion.sum(axis=1), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0)

    def stat(key: str) -> list[float]:
        values = np.array([f[key] for f in folds], dtype=float)
        return [round(float(values.mean()), 4), round(float(values.std()), 4)]

    by_stride = {}
    for k in folds[0].get("by_stride", {}):
        values = np.array([f["by_stride"][k] for f in folds])
        by_stride[k] = [round(float(values.mean()), 4), round(float(values.std()), 4)]
    return {
        "by_stride": by_stride,
        "variant": asdict(variant),
        "description": variant.describe(),
        "track_accuracy_vote": stat("track_accuracy_vote"),
        "track_accuracy_mean": stat("track_accuracy_mean"),
        "segment_accuracy": stat("segment_accuracy"),
        "train_seconds": stat("train_seconds"),
        "epochs_run": [f["epochs_run"] for f in folds],
        "per_genre_f1": {g: round(float(v), 3) for g, v in zip(genres, f1, strict=True)},
        "confusion_matrix": confusion.tolist(),
        "folds": folds,
    }


def format_report(summaries: list[dict[str, Any]], genres: list[str], header: str) -> str:
    """Return the results as Markdown: the side-by-side table, legend, then confusion matrices."""

    def pct(pair: list[float]) -> str:
        return f"{pair[0]:.1%} ± {pair[1]:.1%}"

    lines = [
        header,
        "",
        "| variant | track acc. (vote) | track acc. (mean prob.) | segment acc. | "
        + " | ".join(f"F1 {g}" for g in genres)
        + " | train s / fold |",
        "|---|---|---|---|" + "---|" * len(genres) + "---|",
    ]
    for s in summaries:
        f1 = " | ".join(f"{s['per_genre_f1'][g]:.2f}" for g in genres)
        lines.append(
            f"| {s['variant']['name']} | {pct(s['track_accuracy_vote'])} | "
            f"{pct(s['track_accuracy_mean'])} | {pct(s['segment_accuracy'])} | {f1} | "
            f"{s['train_seconds'][0]:.0f} ± {s['train_seconds'][1]:.0f} |"
        )
    lines.append("")
    lines += [f"- **{s['variant']['name']}**: {s['description']}" for s in summaries]
    strided = [s for s in summaries if s.get("by_stride")]
    if strided:
        lines += ["", "musicnn on every k-th segment only, as served (the same fold models):", ""]
        lines += ["| variant | k | track acc. (vote) |", "|---|---|---|"]
        lines += [
            f"| {s['variant']['name']} | {k} | {pct(value)} |"
            for s in strided
            for k, value in s["by_stride"].items()
        ]
    for s in summaries:
        lines += ["", f"Confusion of **{s['variant']['name']}** (rows true, columns vote), pooled:"]
        lines.append("")
        lines.append("| | " + " | ".join(genres) + " |")
        lines.append("|---|" + "---|" * len(genres))
        for genre, row in zip(genres, s["confusion_matrix"], strict=True):
            lines.append(f"| {genre} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Cross-validate the chosen variants and print (and save) the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="<genre>/<file> folder")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="the seed recipe is always run first",
    )
    parser.add_argument("--folds", type=int, default=N_FOLDS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="cap; early stopping ends most")
    parser.add_argument("--patience", type=int, default=PATIENCE)
    parser.add_argument("--split-dir", type=Path, help="fixed *train*/*valid*/*test*.txt lists")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, help="write the report (.md) and figures (.json) here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--strides",
        nargs="+",
        type=int,
        default=[],
        help="also score musicnn variants with musicnn on every k-th segment (fast path)",
    )
    parser.add_argument("--skip-seed", action="store_true", help="do not run the seed recipe")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the variants already in --out's JSON (same folds and settings), run the rest",
    )
    args = parser.parse_args(argv)

    from shared.core.dataset import find_tracks

    names = [*([] if args.skip_seed else ["seed"]), *[n for n in args.variants if n != "seed"]]
    tracks = find_tracks(args.data_dir)
    started = time.perf_counter()
    data = TrackData(tracks, args.cache_dir, progress=not args.quiet)
    usable = data.usable
    genres = sorted({t.genre for t in usable})
    folds = _folds(usable, n_folds=args.folds, seed=args.seed, split_dir=args.split_dir)
    split = (
        f"fixed split {args.split_dir}"
        if args.split_dir
        else f"stratified {args.folds}-fold CV by track, seed {args.seed}"
    )

    def header() -> str:
        return (
            f"{args.data_dir.name}: {len(usable)} tracks, {len(genres)} genres, {split}; "
            f"epochs ≤ {args.epochs}, early stopping (patience {args.patience}) on 15 % of the "
            "training tracks; features "
            + ", ".join(f"{k} {v:.0f} s" for k, v in data.seconds.items())
            + f" (0 s when cached); total {time.perf_counter() - started:.0f} s"
        )

    summaries = []
    if args.resume and args.out and args.out.with_suffix(".json").is_file():
        previous = json.loads(args.out.with_suffix(".json").read_text())
        settings = (previous["header"].split(";")[:2], previous["patience"], previous["epochs"])
        if settings != (header().split(";")[:2], args.patience, args.epochs):
            parser.error(f"{args.out}.json was measured with other folds or settings")
        done = {s["variant"]["name"]: s for s in previous["variants"]}
        summaries = [done[n] for n in names if n in done]
        names = [n for n in names if n not in done]
    for name in names:
        variant = VARIANTS[name]
        results = []
        for number, fold in enumerate(folds):
            metrics = run_fold(
                data,
                fold,
                variant,
                genres,
                epochs=args.epochs,
                patience=args.patience,
                seed=args.seed + number,
                verbose=0 if args.quiet else 2,
                strides=tuple(args.strides),
            )
            results.append(metrics)
            print(
                f"{name} fold {number + 1}/{len(folds)}: vote {metrics['track_accuracy_vote']:.1%}"
                f" mean {metrics['track_accuracy_mean']:.1%}"
                f" segment {metrics['segment_accuracy']:.1%}"
                f" ({metrics['train_seconds']:.0f} s, {metrics['epochs_run']} epochs)",
                file=sys.stderr,
                flush=True,
            )
        summaries.append(summarise(variant, results, genres))
        if args.out:  # after every variant, so a long run can be read as it goes
            _write(args.out, header(), summaries, genres, args)
    print(format_report(summaries, genres, header()))
    return 0


def _write(
    out: Path, header: str, summaries: list[dict[str, Any]], genres: list[str], args: Any
) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(format_report(summaries, genres, header) + "\n")
    document = {
        "header": header,
        "genres": genres,
        "patience": args.patience,
        "epochs": args.epochs,
        "variants": summaries,
    }
    out.with_suffix(".json").write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    sys.exit(main())
