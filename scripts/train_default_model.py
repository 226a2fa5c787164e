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
DATASETS = {
    "emotify": (
        'Emotify: A. Aljanaki, F. Wiering and R. C. Veltkamp, "Studying emotion induced by music '
        'through a crowdsourcing game", *Information Processing & Management* 52(1), 2016 '
        "(research use)"
    ),
    "4q": (
        '4Q audio emotion dataset: R. Panda, R. Malheiro and R. P. Paiva, "Novel audio '
        'features for music emotion recognition", *IEEE Transactions on Affective Computing*, '
        "2018; 30-s "
        "AllMusic previews (research use)"
    ),
}


def _variant(benchmark: dict, name: str) -> dict:
    for summary in benchmark["variants"]:
        if summary["variant"]["name"] == name:
            return summary
    raise SystemExit(f"variant {name!r} is not in the benchmark file")


def fit_policy(benchmark: dict, summary: dict, novelty: Any) -> Any:
    """Fit the answer policy on the benchmark's held-out songs (shared.core.serving.calibration)."""
    from shared.core.serving.calibration import fit_answer_policy

    genres = benchmark["genres"]
    records = [r for fold in summary["folds"] for r in fold["tracks"]]
    rules = summary["pooled_by_rule"]
    rule = "mean" if rules["mean"] >= rules["vote"] else "vote"
    open_set = benchmark.get("open_set") or {}
    unknown = (
        [np.asarray(r["mean"]) for r in open_set["tracks"]]
        if open_set.get("variant") == summary["variant"]["name"]
        else []
    )
    return fit_answer_policy(
        np.array([r["mean"] for r in records]),
        [genres.index(r["genre"]) for r in records],
        rule=rule,
        fitted_on=(
            f"{len(records)} held-out songs of {len(summary['folds'])} cross-validation folds by "
            f"artist; {len(unknown)} songs scored by models that left their genre out"
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
  out) while flagging at most 20 % of the songs of its own genres:

{table}

- **Sounds unlike music it knows.** A song whose MFCC statistics (mean and spread of each of the
  13 coefficients) lie farther from the training songs' than 99 % of held-out songs
  (squared Mahalanobis distance over {policy.novelty.threshold if policy.novelty else "-"}) is
  also `uncertain`, with `uncertain_reason: "unfamiliar_sound"`: a steady tone, white noise
  and a sine sweep are caught there (tested), even when the network's softmax is confident
  about them; speech is expected to be, but was not measured.
"""


def model_card(
    *,
    version: str,
    genres: list[str],
    benchmark: dict,
    shipped: dict,
    policy: Any,
    epochs: int,
    n_tracks: int,
    sources: dict[str, int],
    train_seconds: float,
) -> str:
    """Return the model card (Markdown) with the benchmark's cross-validated figures."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import accuracy

    name = shipped["variant"]["name"]
    pretrained = {
        "MSD_musicnn": "`MSD_musicnn`, pretrained to tag the Million Song Dataset",
        "MTT_musicnn": "`MTT_musicnn`, pretrained to tag MagnaTagATune",
    }
    networks = " and ".join(pretrained[n] for n in shipped["variant"]["networks"])
    vote, vote_sd = shipped["track_accuracy_vote"]
    mean, mean_sd = shipped["track_accuracy_mean"]
    table = accuracy.format_report(benchmark["variants"], benchmark["genres"], "")
    probe = benchmark.get("source_probe") or {}
    probe_lines = "\n".join(
        f"- segments {'as decoded' if level == 'None' else f'normalised to {level} dBFS'}: "
        + ", ".join(f"{view} {value:.2f}" for view, value in views.items())
        for level, views in probe.items()
    )
    data_lines = "\n".join(
        f"- **{source}** ({n} songs): {DATASETS.get(source, source)}"
        for source, n in sources.items()
    )
    loudness = shipped["variant"].get("loudness_db")
    chosen = [r for r in policy.figures["curve"] if r["threshold"] == policy.uncertain_below]
    unknown = chosen[0].get("unknown_flagged") if chosen else None
    caught = "an unmeasured share" if unknown is None else f"{unknown:.0%}"
    return f"""# Model card: genreflow's shipped model `{version}`

The model genreflow registers and activates on first start, so a fresh installation answers
real songs with no training step. A model you train yourself takes over through the normal
activation policy (`GENREFLOW_ACTIVATE_POLICY`), and you can roll back to this one on the models
page or with `POST /api/v1/models/{version}/activate`.

## What it answers

One of **{len(genres)} genres: {", ".join(genres)}**, with the probability of each, and
`uncertain: true` when it is not sure (below). A song of another genre (metal, folk, disco,
…) gets the closest of these; in the test below, {caught} of such songs were flagged
uncertain, and the rest got a confident answer of a neighbouring genre.

**Sounds like.** Every answer also carries `sounds_like`: the top three of AudioSet's fifty
music-genre classes ("Heavy metal", "Disco", "Soul music", …) with their scores, a second opinion
from a network trained on AudioSet (EfficientAT mn04, MIT; `shared/core/nets/audioset_weights/`),
in AudioSet's names. It is not one of this model's genres and does not change its answer; it is
most useful when the answer is `uncertain` or the song's genre is not among those above.

## Accuracy

{len(shipped["folds"])}-fold cross-validation **by artist** (stratified by genre, seed 42;
the Emotify songs, which come without artist lists, by track) on the {n_tracks} songs it was
then trained on: **{mean:.1%} ± {mean_sd:.1%}** track accuracy by mean probability and
**{vote:.1%} ± {vote_sd:.1%}** by vote (mean ± sd over folds). Measured with
`benchmarks/accuracy.py` on the 2-core development VM; every variant of that run, the seed
recipe first:
{table}

**Two sources, one shortcut.** Every genre but electronic comes from one source only, so a
model could learn which data set a clip came from instead of its genre. The columns per
source above show accuracy on each; electronic, the one genre in both, is shown per source.
The source probe says how well the source of an electronic track can be told from what the
model sees (balanced accuracy of a logistic regression on track means, cross-validated by
artist; 0.5 = nothing, 1.0 = gives it away):

{probe_lines or "- not measured"}

{answer_section(policy, genres)}
## The shipped model

The **{name}** row, trained once more on all {n_tracks} songs for {epochs} epoch(s) (the
median best epoch of its folds) in {train_seconds:.0f} s, genres weighted equally
{
        "and every 3-s slice scaled to " + f"{loudness:g} dBFS RMS before its features"
        if loudness is not None
        else ""
    }. Accuracy on songs from other sources, recordings and
genres is not measured here; the held-back songs the team keeps are the real test.

## Data and its terms

{data_lines}

Both are published for research use; this model inherits that: use it for research and
evaluation, and check the datasets' terms before any other use. The audio is not part of
genreflow.

## Method

Audio → ffmpeg (pydub) → 22,050 Hz mono → 3-s segments{
        f", each scaled to {loudness:g} dBFS RMS" if loudness is not None else ""
    }. Per segment: 13
MFCCs (librosa, n_fft 2048, hop 512: 130 x 13) and a 16 kHz, 96-band log-mel patch
(187 x 96). The MFCC sequence goes through an LSTM(64) and dropout; the patch goes through
**musicnn** (Pons & Serra, 2019), frozen: {networks}. Its
{shipped["variant"]["embedding"]} embedding goes through dropout and Dense(64, relu, L2); the
two meet in dropout → Dense(64, relu, L2) → softmax, trained with Adam (1e-3), batch 32, on
cached embeddings, each genre weighted by the inverse of its share of segments. musicnn's
weights were converted once from its TF1 checkpoint into our Keras 3 port
(`shared/core/nets/musicnn.py`), checked against a raw-TensorFlow reference of the original graph
(`tests/core/test_musicnn.py`); they are used under the ISC licence
(`shared/core/nets/musicnn_weights/LICENSE`).

Model inputs (one row per segment): `mfcc` float32 `(n, 130, 13)`, `logmel` float32
`(n, 187, 96)`; output `(n, {len(genres)})` softmax in the order of `genres` in the sidecar.
The answer policy (song rule, temperature, threshold, novelty check) is the sidecar's
`answer` entry.

Reproduce: `python benchmarks/accuracy.py ../shared/data/emotify ../shared/data/4q --variants
... --open-set {name} --out benchmarks/out/nine`, then `python scripts/train_default_model.py
../shared/data/emotify ../shared/data/4q --benchmark benchmarks/out/nine.json --variant {name}`.
"""


def main() -> int:
    """Train on all tracks, save model + sidecar into the package, write MODEL_CARD.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", type=Path, nargs="+", help="one folder per source")
    parser.add_argument("--benchmark", type=Path, required=True, help="accuracy.py --out JSON")
    parser.add_argument("--variant", default="musicnn-pool+balanced")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / "out" / "cache")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import accuracy

    from shared.core.audio.features import FeatureConfig
    from shared.core.learning.training import balanced_class_weights
    from shared.core.nets.model import import_keras, new_version, save_model

    benchmark = json.loads(args.benchmark.read_text())
    summary = _variant(benchmark, args.variant)
    variant = accuracy.VARIANTS[args.variant]
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
    policy = fit_policy(benchmark, summary, fit_song_novelty(data, collection))

    inputs, labels, _ = accuracy._inputs(data, usable, variant, genres, train=True)
    keras = import_keras()
    keras.utils.set_random_seed(SEED)
    model = accuracy._build(variant, inputs, len(genres))
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
