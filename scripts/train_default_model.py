"""Train the model genreflow ships, on every track of a folder, and write its model card.

    python scripts/train_default_model.py ../shared/data/emotify \
        --benchmark benchmarks/out/emotify.json --variant musicnn

The recipe is a variant of ``benchmarks/accuracy.py``; its cross-validated figures (read from the
benchmark's JSON) go into the sidecar and the card, because a model trained on all tracks has no
held-out tracks left. With no validation tracks either, it trains for a fixed number of epochs:
the median of the folds' best epochs in that benchmark run. The model goes to
``shared/default_model/`` (the folder the registry registers on first start).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "shared" / "default_model"
SEED = 42


def _variant(benchmark: dict, name: str) -> dict:
    for summary in benchmark["variants"]:
        if summary["variant"]["name"] == name:
            return summary
    raise SystemExit(f"variant {name!r} is not in the benchmark file")


def model_card(
    *,
    version: str,
    genres: list[str],
    benchmark: dict,
    shipped: dict,
    epochs: int,
    n_tracks: int,
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
    table = accuracy.format_report(benchmark["variants"], benchmark["genres"], "")
    return f"""# Model card: genreflow's shipped model `{version}`

The model genreflow registers and activates on first start, so a fresh installation answers
real songs with no training step. A model you train yourself takes over through the normal
activation policy (`GENREFLOW_ACTIVATE_POLICY`), and you can roll back to this one on the models
page or with `POST /api/v1/models/{version}/activate`.

## What it answers

One of **{len(genres)} broad genres: {", ".join(genres)}**. Every song is mapped to one of
them, whatever it is: a jazz, hip-hop or folk song gets the nearest of these four. The
confidence (mean probability of the winning genre over the song's 3-s slices) is shown with
every answer; a low one (say under 0.5) means the slices disagree or the song fits none of
the four well, and should be read as such.

## Accuracy

{len(shipped["folds"])}-fold cross-validation **by track** (stratified, seed 42) on the
{n_tracks} songs it was then trained on: **{vote:.1%} ± {vote_sd:.1%}** track accuracy by
vote (what the service answers; mean ± sd over folds). Measured with
`benchmarks/accuracy.py` on the 2-core development VM; every variant of that run, the seed
recipe first:
{table}

The shipped model is the **{name}** row, trained once more on all {n_tracks} songs for
{epochs} epoch(s) (the median best epoch of its folds: these heads reach their best validation
loss after one to three epochs) in {train_seconds:.0f} s. These songs
are ~60-s excerpts; accuracy on other music, recordings and genres is not measured here.

## Cost (measured 2026-11-25 on the shared 2-core development VM, load 4-9)

- Features from scratch (decode, MFCCs, log-mel patches and musicnn embeddings of the 300
  songs): 470 s; the half-segment-shifted MFCCs for augmentation another 114 s. They are cached
  by file content, so a second training reads them in about 2 s.
- `genreflow train DATA --musicnn` on the cached features: 99 s of training (early stopping on
  its own validation tracks), well under the 5-minute goal.
- Prediction: musicnn runs on every 3-s segment (about 1.4 G multiply-adds each), so a 3-minute
  song takes about 3-4 s of one core through ONNX Runtime, several times the LSTM alone.

## Data and its terms

Trained on 300 songs of the **Emotify** dataset, 75 each of classical, electronic, pop and
rock (~60-s excerpts, re-encoded as 22,050 Hz mono mp3): A. Aljanaki, F. Wiering and
R. C. Veltkamp, "Studying emotion induced by music through a crowdsourcing game",
*Information Processing & Management* 52(1), 2016. Emotify is published for research use;
this model inherits that: use it for research and evaluation, and check the dataset's terms
before any other use. The audio is not part of genreflow. No artist lists come with the
data, so the folds are by track; songs by one artist may sit on both sides of a fold, which
can flatter the figures.

## Method

Audio → ffmpeg (pydub) → 22,050 Hz mono → 3-s segments. Per segment: 13 MFCCs (librosa,
n_fft 2048, hop 512: 130 x 13) and a 16 kHz, 96-band log-mel patch (187 x 96). The MFCC
sequence goes through an LSTM(64) and dropout; the patch goes through **musicnn** (Pons &
Serra, 2019), frozen: {networks}. Its {shipped["variant"]["embedding"]} embedding goes
through dropout and Dense(64, relu, L2); the two meet in dropout → Dense(64, relu, L2) →
softmax, trained with Adam (1e-3), batch 32, on cached embeddings. The segments vote
(ties go to the higher mean probability). musicnn's weights were converted once from its TF1
checkpoint (`scripts/convert_musicnn.py`) into our Keras 3 port (`shared/core/musicnn.py`), checked
against a raw-TensorFlow reference of the original graph (`tests/core/test_musicnn.py`);
they are used under the ISC licence (`shared/core/musicnn_weights/LICENSE`).

Model inputs (one row per segment): `mfcc` float32 `(n, 130, 13)`, `logmel` float32
`(n, 187, 96)`; output `(n, {len(genres)})` softmax in the order of `genres` in the sidecar.
The predict worker and `genreflow predict` serve `{version}.onnx` (ONNX Runtime, musicnn
included); `{version}.keras` is the same model for Keras.

Reproduce: `python benchmarks/accuracy.py DATA --out benchmarks/out/emotify`, then
`python scripts/train_default_model.py DATA --benchmark benchmarks/out/emotify.json
--variant {name}`.
"""


def main() -> int:
    """Train on all tracks, save model + sidecar into the package, write MODEL_CARD.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--benchmark", type=Path, required=True, help="accuracy.py --out JSON")
    parser.add_argument("--variant", default="musicnn")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / "out" / "cache")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="rewrite MODEL_CARD.md of the model in --out from the benchmark (no training)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import accuracy

    from shared.core.model import import_keras, new_version, save_model

    benchmark = json.loads(args.benchmark.read_text())
    summary = _variant(benchmark, args.variant)
    variant = accuracy.VARIANTS[args.variant]
    patience = int(benchmark.get("patience", accuracy.PATIENCE))
    best_epochs = [max(1, n - patience) for n in summary["epochs_run"]]
    epochs = int(np.median(best_epochs))

    if args.card_only:
        sidecar = json.loads(next(args.out.glob("*.json")).read_text())
        timings = sidecar["timings"]
        (args.out / "MODEL_CARD.md").write_text(
            model_card(
                version=sidecar["version"],
                genres=sidecar["genres"],
                benchmark=benchmark,
                shipped=summary,
                epochs=sidecar["epochs_run"],
                n_tracks=sidecar["training_data"]["n_tracks"],
                train_seconds=timings["training_s"],
            )
        )
        return 0

    from shared.core.dataset import find_tracks

    tracks = find_tracks(args.data_dir)
    started = time.perf_counter()
    data = accuracy.TrackData(tracks, args.cache_dir, progress=True)
    for network in variant.networks if variant.embedding else ():
        data.embeddings(network)
    features_seconds = time.perf_counter() - started
    usable = data.usable
    genres = sorted({t.genre for t in usable})
    inputs, labels, _ = accuracy._inputs(data, usable, variant, genres, train=True)
    keras = import_keras()
    keras.utils.set_random_seed(SEED)
    model = accuracy._build(variant, inputs, len(genres))
    started = time.perf_counter()
    model.fit(
        inputs if len(inputs) > 1 else inputs[0],
        labels,
        epochs=epochs,
        batch_size=accuracy.BATCH_SIZE,
        shuffle=True,
        verbose=2,
    )
    train_seconds = time.perf_counter() - started
    if variant.embedding:
        from shared.core.fusion_model import compose_served_model

        model = compose_served_model(model, embedding=variant.embedding, networks=variant.networks)

    from shared.core.features import FeatureConfig

    config = FeatureConfig(deltas=variant.deltas, musicnn=bool(variant.embedding))
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
        "evaluation": f"{len(summary['folds'])}-fold cross-validation by track "
        f"({benchmark['header'].split(';')[0]})",
        "track_accuracy_vote": summary["track_accuracy_vote"][0],
        "track_accuracy_vote_sd": summary["track_accuracy_vote"][1],
        "track_accuracy_mean": summary["track_accuracy_mean"][0],
        "segment_accuracy": summary["segment_accuracy"][0],
        "n_test_tracks": int(np.sum(summary["confusion_matrix"])),
        "per_genre": per_genre,
        "confusion_matrix": summary["confusion_matrix"],
        "genres": genres,
    }
    for old in args.out.glob("*"):
        if old.suffix in {".keras", ".onnx", ".json", ".png"}:
            old.unlink()
    version = f"{new_version()[:8]}-emotify-{args.variant.replace('+', '-')}"
    path = save_model(
        model,
        args.out,
        version=version,
        genres=genres,
        feature_config=config,
        extra={
            "metrics": metrics,
            "default_model": True,
            "card": "MODEL_CARD.md",
            "training_data": {
                "name": "Emotify (Aljanaki, Wiering & Veltkamp), research use",
                "n_tracks": len(usable),
                "split": "all tracks (figures from cross-validation)",
            },
            "options": {"variant": variant.name, "epochs": epochs, "batch_size": 32},
            # what a service training run copies from the active model (shared/core/recipe.py):
            # the variant, with early stopping on validation tracks in place of fixed epochs
            "recipe": variant.to_dict(),
            "epochs_run": epochs,
            "timings": {
                "features_s": round(features_seconds, 1),
                "training_s": round(train_seconds, 1),
            },
        },
    )
    from shared.core.evaluation import save_confusion_png

    save_confusion_png(
        metrics["confusion_matrix"],
        genres,
        path.with_suffix(".confusion.png"),
        title=f"{version}\n5-fold CV track accuracy {metrics['track_accuracy_vote']:.1%} (vote)",
    )
    (args.out / "MODEL_CARD.md").write_text(
        model_card(
            version=version,
            genres=genres,
            benchmark=benchmark,
            shipped=summary,
            epochs=epochs,
            n_tracks=len(usable),
            train_seconds=train_seconds,
        )
    )
    size = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
    print(
        f"{path}: {epochs} epochs on {len(usable)} tracks in {train_seconds:.0f} s "
        f"(features {features_seconds:.0f} s); folder {size / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
