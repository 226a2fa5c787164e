"""Train the model genreflow ships, on every track of the kit's folders, and write its model card.

    python scripts/train_default_model.py ../shared/data/emotify ../shared/data/4q \
        --benchmark benchmarks/out/nine.json --variant musicnn-pool+balanced

The recipe is a variant of ``benchmarks/accuracy.py``; its cross-validated figures (read from the
benchmark's JSON) go into the sidecar and the card, because a model trained on all tracks has no
held-out tracks left. So do the answer's honesty settings, all fitted on the benchmark's held-out
songs: the song rule (vote or mean probability, whichever scored better), the temperature that
calibrates the probabilities, and the "not sure" threshold (from songs of genres left out of
training, ``--open-set`` in the benchmark); and the novelty check's threshold, from the MFCC
statistics of held-out songs. With no validation tracks left, it trains for a fixed number of
epochs: the median of the folds' best epochs in that benchmark run. The model goes to
``shared/default_model/`` (the folder the registry registers on first start).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "shared" / "default_model"
SEED = 42


def _variant(benchmark: dict, name: str) -> dict:
    for summary in benchmark["variants"]:
        if summary["variant"]["name"] == name:
            return summary
    raise SystemExit(f"variant {name!r} is not in the benchmark file")


def fit_policy(
    benchmark: dict, summary: dict, novelty: Any, *, open_set_variant: str | None = None
) -> Any:
    """Fit the answer policy on the benchmark's held-out songs (shared.core.serving.calibration).

    The "not sure" threshold looks at songs of genres left out of training, scored by the
    benchmark's ``--open-set`` variant: the shipped one, or ``open_set_variant`` when that is
    named (a near variant, said so in the policy's ``fitted_on``).
    """
    from shared.core.serving.calibration import fit_answer_policy

    genres = benchmark["genres"]
    records = [r for fold in summary["folds"] for r in fold["tracks"]]
    rules = summary["pooled_by_rule"]
    rule = "mean" if rules["mean"] >= rules["vote"] else "vote"
    open_set = benchmark.get("open_set") or {}
    wanted = open_set_variant or summary["variant"]["name"]
    unknown = (
        [np.asarray(r["mean"]) for r in open_set["tracks"]]
        if open_set.get("variant") == wanted
        else []
    )
    by = "" if wanted == summary["variant"]["name"] else f" (variant {wanted})"
    return fit_answer_policy(
        np.array([r["mean"] for r in records]),
        [genres.index(r["genre"]) for r in records],
        rule=rule,
        fitted_on=(
            f"{len(records)} held-out songs of {len(summary['folds'])} cross-validation folds by "
            f"artist; {len(unknown)} songs scored by models that left their genre out{by}"
        ),
        unknown_mean_probabilities=unknown,
        novelty=novelty,
    )


def fit_song_novelty(data: Any, collection: Any) -> Any:
    """Fit the novelty check on all songs; set its threshold on held-out songs' distances."""
    from sklearn.model_selection import GroupKFold

    from shared.core.serving.calibration import (
        NOVELTY_QUANTILE,
        Novelty,
        fit_novelty,
        song_statistics,
    )

    tracks = data.usable
    n_mfcc = data.config.n_mfcc
    stats = np.stack([song_statistics(data.mfcc[t], n_mfcc=n_mfcc) for t in tracks])
    groups = [collection.group[t] for t in tracks]
    held_out = []
    for train_idx, test_idx in GroupKFold(n_splits=5).split(stats, groups=groups):
        fold = fit_novelty(stats[train_idx])
        held_out += [fold.distance(stats[i]) for i in test_idx]
    final = fit_novelty(stats)
    return Novelty(
        mean=final.mean,
        precision=final.precision,
        threshold=round(float(np.quantile(held_out, NOVELTY_QUANTILE)), 3),
    )


def _percent(value: float) -> str:
    return f"{value:.1%}"


def answer_section(policy: Any, genres: list[str]) -> str:
    """Return the card's "How sure it is" section: calibration, threshold, flagging's cost."""
    figures = policy.figures
    rows = [
        "| threshold | songs of its genres flagged | accuracy of the rest | "
        "songs of a left-out genre flagged |",
        "|---|---|---|---|",
    ]
    for row in figures["curve"]:
        chosen = " (chosen)" if row["threshold"] == policy.uncertain_below else ""
        unknown = row.get("unknown_flagged")
        rows.append(
            f"| {row['threshold']:.2f}{chosen} | {_percent(row['flagged'])} | "
            f"{_percent(row['accuracy_answered'])} | "
            f"{'-' if unknown is None else _percent(unknown)} |"
        )
    table = "\n".join(rows)
    rule = (
        "the genre of highest mean probability over its 3-s slices"
        if policy.rule == "mean"
        else "the genre most of its 3-s slices vote for"
    )
    return f"""## How sure it is

- **The answer** is {rule}: on the held-out songs that rule scored better (see "Song rule" in the
  benchmark tables above).
- **Calibrated probabilities.** The song's probabilities (mean over its slices) are
  temperature-scaled with T = {policy.temperature:g}, fitted on {figures["n_songs"]} held-out
  songs. Expected calibration error (10 bins): **{figures["ece_before"]:.3f} before, {
        figures["ece_after"]:.3f} after**.
- **"Not sure".** An answer whose calibrated probability is under
  **{policy.uncertain_below:.2f}** comes back `uncertain: true` (the page says "Not sure —
  closest: …"). The threshold was chosen to flag as many songs of genres the model does not
  know as possible ({
        figures["n_unknown_songs"]
    } songs, scored by models trained with their genre left
  out; fitted on {policy.fitted_on}) while flagging at most 20 % of the songs of its own genres:

{table}

- **Sounds unlike music it knows.** A song whose MFCC statistics (mean and spread of each of the
  13 coefficients) lie farther from the training songs' than 99 % of held-out songs
  (squared Mahalanobis distance over {policy.novelty.threshold if policy.novelty else "-"}) is
  also `uncertain`, with `uncertain_reason: "unfamiliar_sound"`: a steady tone, white noise
  and a sine sweep are caught there (tested), even when the network's softmax is confident
  about them; speech is expected to be, but was not measured.
"""


def rewrite_card(args: Any, benchmark: dict, summary: dict) -> int:
    """Write MODEL_CARD.md again for the model already in ``args.out`` (its sidecar's figures)."""
    from model_card import model_card

    from shared.core.serving.calibration import AnswerPolicy

    sidecar_path = next(p for p in args.out.glob("*.json"))
    sidecar = json.loads(sidecar_path.read_text())
    if sidecar["recipe"]["name"] != args.variant:
        raise SystemExit(f"the shipped model is {sidecar['recipe']['name']}, not {args.variant}")
    policy = AnswerPolicy.from_dict(sidecar["answer"])
    (args.out / "MODEL_CARD.md").write_text(
        model_card(
            version=sidecar["version"],
            genres=sidecar["genres"],
            benchmark=benchmark,
            shipped=summary,
            policy=policy,
            epochs=int(sidecar["epochs_run"]),
            n_tracks=int(sidecar["training_data"]["n_tracks"]),
            sources=sidecar["training_data"]["sources"],
            train_seconds=float(sidecar["timings"]["training_s"]),
            answer=answer_section(policy, sidecar["genres"]),
            benchmark_command=args.benchmark_command,
        )
    )
    print(f"{args.out / 'MODEL_CARD.md'} rewritten for {sidecar['version']}")
    return 0


def main() -> int:
    """Train on all tracks, save model + sidecar into the package, write MODEL_CARD.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", type=Path, nargs="+", help="one folder per source")
    parser.add_argument("--benchmark", type=Path, required=True, help="accuracy.py --out JSON")
    parser.add_argument("--variant", default="musicnn-pool+balanced")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / "out" / "cache")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="do not train: rewrite the shipped model's MODEL_CARD.md from --benchmark",
    )
    parser.add_argument(
        "--open-set-variant",
        help="the benchmark's --open-set variant to set the threshold with, when it is not "
        "the shipped one (a near variant)",
    )
    parser.add_argument(
        "--benchmark-command",
        default="python benchmarks/accuracy.py ../shared/data/emotify ../shared/data/4q "
        "--third-source ../shared/data/samples --out benchmarks/out/eleven",
        help="how the benchmark run was made (for the card's Reproduce line)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "scripts"))
    import accuracy

    from shared.core.audio.features import FeatureConfig
    from shared.core.learning.training import balanced_class_weights
    from shared.core.nets.model import import_keras, new_version, save_model

    benchmark = json.loads(args.benchmark.read_text())
    summary = _variant(benchmark, args.variant)
    variant = accuracy.VARIANTS[args.variant]
    if args.card_only:
        return rewrite_card(args, benchmark, summary)
    patience = int(benchmark.get("patience", accuracy.PATIENCE))
    best_epochs = [max(1, n - patience) for n in summary["epochs_run"]]
    epochs = int(np.median(best_epochs))

    collection = accuracy.Collection.load(args.data_dirs)
    started = time.perf_counter()
    data = accuracy.TrackData(
        collection.tracks, args.cache_dir, progress=True, loudness_db=variant.loudness_db
    )
    for network in variant.networks if variant.embedding else ():
        data.embeddings(network)
    if variant.audioset:
        data.audioset()
    features_seconds = time.perf_counter() - started
    usable = data.usable
    genres = sorted({t.genre for t in usable})
    if genres != benchmark["genres"]:
        raise SystemExit(f"the folders hold genres {genres}, the benchmark {benchmark['genres']}")
    policy = fit_policy(
        benchmark,
        summary,
        fit_song_novelty(data, collection),
        open_set_variant=args.open_set_variant,
    )

    inputs, labels, _ = accuracy._inputs(data, usable, variant, genres, train=True)
    keras = import_keras()
    keras.utils.set_random_seed(SEED)
    model = accuracy._build(variant, inputs, len(genres), labels)
    started = time.perf_counter()
    model.fit(
        inputs if len(inputs) > 1 else inputs[0],
        labels,
        epochs=epochs,
        batch_size=variant.batch_size,
        shuffle=True,
        verbose=2,
        class_weight=balanced_class_weights(labels) if variant.balanced else None,
    )
    train_seconds = time.perf_counter() - started
    if variant.embedding:
        from shared.core.nets.fusion_model import compose_served_model

        model = compose_served_model(model, embedding=variant.embedding, networks=variant.networks)

    config = FeatureConfig(
        deltas=variant.deltas,
        musicnn=bool(variant.embedding),
        loudness_db=variant.loudness_db,
        cmvn=variant.cmvn,
        audioset=variant.audioset,
    )
    confusion = np.asarray(summary["confusion_matrix"])
    tp = np.diag(confusion).astype(float)
    precision = tp / np.maximum(confusion.sum(axis=0), 1)
    recall = tp / np.maximum(confusion.sum(axis=1), 1)
    per_genre = {
        g: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": summary["per_genre_f1"][g],
            "support": int(confusion[i].sum()),
        }
        for i, g in enumerate(genres)
    }
    metrics = {
        "evaluation": f"{len(summary['folds'])}-fold cross-validation by artist "
        f"({benchmark['header'].split(';')[0]})",
        "track_accuracy_vote": summary["track_accuracy_vote"][0],
        "track_accuracy_vote_sd": summary["track_accuracy_vote"][1],
        "track_accuracy_mean": summary["track_accuracy_mean"][0],
        "track_accuracy_mean_sd": summary["track_accuracy_mean"][1],
        "segment_accuracy": summary["segment_accuracy"][0],
        "n_test_tracks": int(np.sum(summary["confusion_matrix"])),
        "per_source": summary["per_source"],
        "per_genre": per_genre,
        "confusion_matrix": summary["confusion_matrix"],
        "genres": genres,
    }
    sources = {d.name: sum(collection.source[t] == d.name for t in usable) for d in args.data_dirs}
    for old in args.out.glob("*"):
        if old.suffix in {".keras", ".onnx", ".json", ".png"}:
            old.unlink()
    version = f"{new_version()[:8]}-{len(genres)}genres-{args.variant.replace('+', '-')}"
    path = save_model(
        model,
        args.out,
        version=version,
        genres=genres,
        feature_config=config,
        extra={
            "metrics": metrics,
            "answer": policy.to_dict(),
            "default_model": True,
            "card": "MODEL_CARD.md",
            "training_data": {
                "name": " + ".join(f"{s} (research use)" for s in sources),
                "n_tracks": len(usable),
                "sources": sources,
                "split": "all tracks (figures from cross-validation by artist)",
            },
            "options": {
                "variant": variant.name,
                "epochs": epochs,
                "batch_size": variant.batch_size,
                "balanced": variant.balanced,
            },
            # what a service training run copies from the active model (shared/core/nets/recipe.py):
            # the variant, with early stopping on validation tracks in place of fixed epochs
            "recipe": variant.to_dict(),
            "epochs_run": epochs,
            "timings": {
                "features_s": round(features_seconds, 1),
                "training_s": round(train_seconds, 1),
            },
        },
    )
    from shared.core.learning.evaluation import save_confusion_png

    save_confusion_png(
        metrics["confusion_matrix"],
        genres,
        path.with_suffix(".confusion.png"),
        title=f"{version}\n{len(summary['folds'])}-fold CV by artist, "
        f"track accuracy {summary['pooled_by_rule'][policy.rule]:.1%} ({policy.rule})",
    )
    from model_card import model_card

    (args.out / "MODEL_CARD.md").write_text(
        model_card(
            version=version,
            genres=genres,
            benchmark=benchmark,
            shipped=summary,
            policy=policy,
            epochs=epochs,
            n_tracks=len(usable),
            sources=sources,
            train_seconds=train_seconds,
            answer=answer_section(policy, genres),
            benchmark_command=args.benchmark_command,
        )
    )
    size = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(
        f"{path}: {epochs} epochs on {len(usable)} tracks in {train_seconds:.0f} s "
        f"(features {features_seconds:.0f} s); folder {size / 1e6:.1f} MB; answer policy "
        f"{json.dumps({k: v for k, v in policy.to_dict().items() if k != 'novelty'})}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
