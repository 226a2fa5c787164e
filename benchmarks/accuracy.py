"""Accuracy on real music: cross-validate model variants by artist (else by track) on real songs.

    python benchmarks/accuracy.py ../shared/data/emotify ../shared/data/4q [--variants ...]
    python benchmarks/accuracy.py /path/to/gtzan --split-dir ../shared/data/gtzan/splits

Each folder is ``<genre>/<file>`` and is one *source*; an ``artists.csv`` (file, genre, artist)
in a folder groups its tracks by artist, and a folder without one is grouped by track. Stratified
group k-fold cross-validation (5 folds, seeded, ``--repeats`` times with other seeds) over
*artists*, never segments: every fold trains on the other folds' artists (15 % of them kept
aside for early stopping) and is scored on its own tracks. With ``--split-dir`` the fixed
train/valid/test lists are used instead (GTZAN's artist-filtered split), as one "fold".

For each variant it prints, side by side, mean ± sd over folds of track accuracy by vote and by
mean probability, segment accuracy and training time; pooled accuracy by each song rule (vote,
mean, geometric mean) and per source (a model that learns which source a clip came from instead
of its genre shows it there, and in the source probe); then per-genre F1 and the confusion
matrix pooled over folds. Every held-out track's song-level scores are kept in the JSON, so the
song rule, calibration and the "not sure" threshold are chosen on songs the models never saw
(``scripts/train_default_model.py``). The seed recipe (LSTM(64) → Dense(64, relu) → softmax,
Adam 1e-3, batch 32) is always the first row. Features (MFCCs, musicnn embeddings) are cached on
disk by file content hash + settings, so variants and reruns reuse them; the first run's feature
time is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import generalisation
import numpy as np

from shared.core.nets.recipe import RECIPES, Recipe

DEFAULT_CACHE = Path("benchmarks/out/cache")
SEED = 42
N_FOLDS = 5
VALID_FRACTION = 0.15
EPOCHS = 40
PATIENCE = 6


#: A variant is a training recipe; the service trains the same recipes
#: (``shared/core/nets/recipe.py``).
Variant = Recipe
VARIANTS = RECIPES


@dataclass(frozen=True)
class Collection:
    """Tracks from one or more source folders, with each track's source and artist group."""

    tracks: list[Any]
    source: dict[Any, str]
    group: dict[Any, str]

    @classmethod
    def load(cls, folders: list[Path]) -> Collection:
        """Read ``<genre>/<file>`` folders; a folder's ``artists.csv`` groups it by artist."""
        from shared.core.learning.dataset import find_tracks, read_artists

        tracks, source, group = [], {}, {}
        for folder in folders:
            artists = read_artists(folder)
            for track in find_tracks(folder):
                tracks.append(track)
                source[track] = folder.name
                artist = artists.get(track.relpath)
                group[track] = (
                    f"{folder.name}:{artist}" if artist else f"{folder.name}:{track.relpath}"
                )
        return cls(tracks, source, group)

    @property
    def by_artist(self) -> bool:
        """Whether any folder named its artists (else every group is one track)."""
        return len(set(self.group.values())) < len(self.tracks)


def _folds(
    tracks: list[Any],
    *,
    n_folds: int,
    seed: int,
    split_dir: Path | None,
    groups: dict[Any, str] | None = None,
) -> list[dict[str, list[Any]]]:
    """Split into folds; tracks of one group (artist) always stay on one side of every split."""
    from sklearn.model_selection import StratifiedGroupKFold

    from shared.core.learning.dataset import split_from_lists

    if split_dir is not None:
        return [split_from_lists(tracks, split_dir)]
    labels = [t.genre for t in tracks]
    group_of = [groups[t] if groups else t.relpath for t in tracks]
    folds = []
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(
        splitter.split(np.zeros(len(tracks)), labels, group_of)
    ):
        fit, valid = _hold_out(
            [tracks[i] for i in train_idx], [group_of[i] for i in train_idx], seed=seed + fold
        )
        folds.append({"train": fit, "valid": valid, "test": [tracks[i] for i in test_idx]})
    return folds


def _hold_out(tracks: list[Any], groups: list[str], *, seed: int) -> tuple[list[Any], list[Any]]:
    """Keep about :data:`VALID_FRACTION` of the groups (artists) aside for early stopping."""
    from sklearn.model_selection import StratifiedGroupKFold

    genres = [t.genre for t in tracks]
    smallest = min(genres.count(g) for g in set(genres))
    n_splits = max(2, min(round(1 / VALID_FRACTION), len(set(groups)), smallest))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fit_idx, valid_idx = next(splitter.split(np.zeros(len(tracks)), genres, groups))
    return [tracks[i] for i in fit_idx], [tracks[i] for i in valid_idx]


class TrackData:
    """Every track's cached features, loaded once per benchmark run."""

    def __init__(
        self,
        tracks: list[Any],
        cache_dir: Path,
        *,
        progress: bool,
        loudness_db: float | None = None,
    ) -> None:
        from shared.core.audio.features import FeatureConfig
        from shared.core.learning.dataset import FeatureCache, load_features

        self.config = FeatureConfig(loudness_db=loudness_db)
        self.tracks = tracks
        self.cache = FeatureCache(cache_dir, self.config)
        self.cache_dir = cache_dir
        self.progress = progress
        started = time.perf_counter()
        self.mfcc, self.skipped = load_features(tracks, self.cache, progress_bar=progress)
        self.seconds = {"mfcc": time.perf_counter() - started}
        self._shifted: dict[Any, np.ndarray] | None = None
        self._embeddings: dict[str, dict[Any, dict[str, np.ndarray]]] = {}
        self._channel: dict[Any, np.ndarray] | None = None
        self._audioset: dict[Any, dict[str, np.ndarray]] | None = None

    @property
    def usable(self) -> list[Any]:
        """Tracks whose audio could be decoded."""
        return [t for t in self.tracks if t in self.mfcc]

    def shifted(self) -> dict[Any, np.ndarray]:
        """Half-segment-shifted MFCC segments of every track (augmentation)."""
        if self._shifted is None:
            from shared.core.learning.dataset import load_features

            started = time.perf_counter()
            self._shifted, _ = load_features(
                self.usable,
                self.cache,
                offset=self.config.samples_per_segment // 2,
                progress_bar=self.progress,
            )
            self.seconds["mfcc_shifted"] = time.perf_counter() - started
        return self._shifted

    def channel(self) -> dict[Any, np.ndarray]:
        """MFCC segments of every track's channel-augmented copy (EQ, gain, re-encoding)."""
        if self._channel is None:
            from shared.core.learning.augment import ChannelAugmentedCache
            from shared.core.learning.dataset import load_features

            started = time.perf_counter()
            self._channel, _ = load_features(
                self.usable,
                ChannelAugmentedCache(self.cache_dir, self.config),
                progress_bar=self.progress,
            )
            self.seconds["mfcc_channel"] = time.perf_counter() - started
        return self._channel

    def audioset(self) -> dict[Any, dict[str, np.ndarray]]:
        """Return the AudioSet network's embedding and logits of every track's segments."""
        if self._audioset is None:
            from tqdm import tqdm

            from shared.core.learning.embeddings import AudioSetCache

            cache = AudioSetCache(self.cache_dir, self.config)
            started = time.perf_counter()
            self._audioset = {
                t: cache.embeddings(t.path)
                for t in tqdm(self.usable, desc="audioset", unit="track", disable=not self.progress)
            }
            self.seconds["audioset"] = time.perf_counter() - started
        return self._audioset

    def embeddings(self, network: str = "MSD_musicnn") -> dict[Any, dict[str, np.ndarray]]:
        """Embeddings of every track's segments by one pretrained musicnn network."""
        if network not in self._embeddings:
            from tqdm import tqdm

            from shared.core.learning.embeddings import EmbeddingCache

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
    from shared.core.audio.features import FeatureConfig, add_deltas
    from shared.core.learning.model_inputs import TrackInputs

    index = {g: i for i, g in enumerate(genres)}
    inputs = TrackInputs(FeatureConfig(cmvn=variant.cmvn, audioset=variant.audioset), data.mfcc)
    if variant.embedding:
        per_network = [data.embeddings(network) for network in variant.networks]
        inputs.musicnn = {
            t: np.concatenate([e[t][variant.embedding] for e in per_network], axis=1)
            for t in tracks
        }
        if variant.audioset:
            inputs.audioset = {t: data.audioset()[t]["embedding"] for t in tracks}
    copies = []
    if variant.augment and train:
        copies.append(data.shifted())
    if variant.channel_augment and train:
        copies.append(data.channel())
    stacked, owners = inputs.stack(tracks, copies)
    stacked = stacked if isinstance(stacked, list) else [stacked]
    if variant.deltas:
        stacked[0] = add_deltas(stacked[0])
    y = [index.get(t.genre, 0) for t in owners]  # a left-out genre's tests: unused label
    return stacked, np.eye(len(genres), dtype=np.float32)[y], [len(data.mfcc[t]) for t in tracks]


def _build(
    variant: Variant, inputs: list[np.ndarray], n_classes: int, labels: np.ndarray | None = None
) -> Any:
    """Build the variant's network as a service training run builds it."""
    from shared.core.learning.options import TrainOptions
    from shared.core.learning.training import build_network

    rows = inputs if len(inputs) > 1 else inputs[0]
    return build_network(rows, n_classes, TrainOptions.from_recipe(variant), labels)


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
    third: list[Any] | None = None,
) -> dict[str, Any]:
    """Train one variant on one fold's training tracks and score its test tracks.

    ``third``: clips of a source never trained on, scored too (``third_source`` records).

    Besides the fold's metrics, ``tracks`` holds every test track's song-level scores: the
    mean of its segments' probabilities, their geometric mean and the vote shares.
    With ``strides``, a musicnn variant's test tracks are scored again as the fast serving path
    scores them: musicnn's embedding of every k-th segment only, each segment taking its
    nearest patch's (:mod:`shared.core.serving.staged`); ``by_stride`` holds those track accuracies.
    """
    from shared.core.learning.evaluation import evaluate_probabilities, song_scores
    from shared.core.learning.training import balanced_class_weights
    from shared.core.nets.model import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    x_train, y_train, _ = _inputs(data, fold["train"], variant, genres, train=True)
    x_valid, y_valid, _ = _inputs(data, fold["valid"], variant, genres, train=False)
    x_test, _, counts = _inputs(data, fold["test"], variant, genres, train=False)
    model = _build(variant, x_train, len(genres), y_train)
    if len(x_train) == 1:
        x_train, x_valid, x_test = x_train[0], x_valid[0], x_test[0]
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_valid, y_valid),
        epochs=epochs,
        batch_size=variant.batch_size,
        shuffle=True,
        verbose=verbose,
        class_weight=balanced_class_weights(y_train) if variant.balanced else None,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
        ],
    )
    train_seconds = time.perf_counter() - started
    probabilities = np.asarray(model.predict(x_test, batch_size=256, verbose=0))
    per_track = np.split(probabilities, np.cumsum(counts)[:-1])
    known = all(t.genre in genres for t in fold["test"])  # not so in the open-set runs
    metrics = (
        evaluate_probabilities(per_track, [t.genre for t in fold["test"]], genres) if known else {}
    )
    if strides and variant.embedding and known:
        metrics["by_stride"] = {
            str(k): _accuracy_at_stride(model, x_test, counts, fold["test"], genres, k)
            for k in strides
        }
    metrics["train_seconds"] = round(train_seconds, 1)
    metrics["epochs_run"] = len(history.history["loss"])
    metrics["tracks"] = [
        {"track": t.relpath, "genre": t.genre, **song_scores(p)}
        for t, p in zip(fold["test"], per_track, strict=True)
    ]
    if third:
        x_third, _, third_counts = _inputs(data, third, variant, genres, train=False)
        if len(x_third) == 1:
            x_third = x_third[0]
        p_third = np.asarray(model.predict(x_third, batch_size=256, verbose=0))
        metrics["third_source"] = generalisation.third_source_records(
            third, np.split(p_third, np.cumsum(third_counts)[:-1])
        )
    return metrics


def open_set(
    data: TrackData,
    collection: Collection,
    variant: Variant,
    genres: list[str],
    *,
    epochs: int,
    patience: int,
    seed: int,
    verbose: int,
) -> list[dict[str, Any]]:
    """Songs of a genre the model does not know: leave each genre out of training in turn.

    For every genre, a model of the other genres is trained (15 % of its artists kept for
    early stopping) and scores every track of the left-out genre. Those song-level scores show
    how an answer looks for music of none of a model's genres, which is what the "not sure"
    threshold must catch.
    """
    records = []
    for number, left_out in enumerate(genres):
        known = [g for g in genres if g != left_out]
        usable = [t for t in data.usable if t in collection.source]  # no third-source clips
        train = [t for t in usable if t.genre != left_out]
        fit, valid = _hold_out(train, [collection.group[t] for t in train], seed=seed + number)
        fold = {
            "train": fit,
            "valid": valid,
            "test": [t for t in usable if t.genre == left_out],
        }
        metrics = run_fold(
            data,
            fold,
            variant,
            known,
            epochs=epochs,
            patience=patience,
            seed=seed + number,
            verbose=verbose,
        )
        for record in metrics["tracks"]:
            records.append({**record, "known": known})
        top = np.mean([max(r["mean"]) for r in metrics["tracks"]])
        print(
            f"open set: {left_out} unknown, mean top probability {top:.2f}",
            file=sys.stderr,
            flush=True,
        )
    return records


def _accuracy_at_stride(
    model: Any,
    x_test: list[np.ndarray],
    counts: list[int],
    tracks: list[Any],
    genres: list[str],
    stride: int,
) -> float:
    """Track accuracy (vote) when each test track's embedding rows come from every k-th patch."""
    from shared.core.learning.evaluation import evaluate_probabilities
    from shared.core.serving.staged import nearest_patches, patch_segments

    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = []
    for start, n in zip(starts, counts, strict=True):
        patches = patch_segments(n, stride)
        patches = patches if patches.size else np.array([n - 1])
        rows.append(start + patches[nearest_patches(n, patches)])
    chosen = np.concatenate(rows)  # the embeddings (musicnn's, AudioSet's) of the nearest patch
    inputs = [x_test[0], *(part[chosen] for part in x_test[1:])]
    probabilities = np.asarray(model.predict(inputs, batch_size=256, verbose=0))
    per_track = np.split(probabilities, np.cumsum(counts)[:-1])
    metrics = evaluate_probabilities(per_track, [t.genre for t in tracks], genres)
    return float(metrics["track_accuracy_vote"])


RULES = ("vote", "mean", "geometric")


def _winner(record: dict[str, Any], rule: str) -> int:
    """Return the column a song rule picks from a held-out track's scores.

    The vote breaks a tie by the mean probability, as the service does
    (:func:`shared.core.serving.predict.vote_genre`).
    """
    scores = np.asarray(record[rule])
    if rule != "vote":
        return int(scores.argmax())
    tied = np.flatnonzero(scores == scores.max())
    return int(tied[np.argmax(np.asarray(record["mean"])[tied])])


def summarise(
    variant: Variant,
    folds: list[dict[str, Any]],
    genres: list[str],
    sources: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Mean ± sd over folds, per-source accuracy, and per-genre F1 and confusion pooled."""
    confusion = np.sum([f["confusion_matrix"] for f in folds], axis=0)
    tp = np.diag(confusion).astype(float)
    precision = tp / np.maximum(confusion.sum(axis=0), 1)
    recall = tp / np.maximum(confusion.sum(axis=1), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0)

    def stat(key: str) -> list[float]:
        values = np.array([f[key] for f in folds], dtype=float)
        return [round(float(values.mean()), 4), round(float(values.std()), 4)]

    records = [r for f in folds for r in f.get("tracks", [])]
    by_rule = {}
    for rule in RULES:
        hits = [genres[_winner(r, rule)] == r["genre"] for r in records]
        by_rule[rule] = round(float(np.mean(hits)), 4) if hits else None
    per_source: dict[str, dict[str, Any]] = {}
    for record in records:
        source = (sources or {}).get(record["track"], "all")
        for key in (
            source,
            f"{source}:{record['genre']}" if record["genre"] == "electronic" else None,
        ):
            if key is None:
                continue
            entry = per_source.setdefault(key, {"n": 0, "mean": 0, "vote": 0})
            entry["n"] += 1
            entry["mean"] += int(genres[_winner(record, "mean")] == record["genre"])
            entry["vote"] += int(genres[_winner(record, "vote")] == record["genre"])
    for entry in per_source.values():
        entry["mean"] = round(entry["mean"] / entry["n"], 4)
        entry["vote"] = round(entry["vote"] / entry["n"], 4)
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
        "pooled_by_rule": by_rule,
        "per_source": per_source,
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
    keys = sorted({k for s in summaries for k in s.get("per_source", {})})
    if keys:
        lines += ["", "Song rule and source, pooled over all held-out tracks (track accuracy):", ""]
        lines.append(
            "| variant | "
            + " | ".join(f"by {r}" for r in RULES)
            + " | "
            + " | ".join(f"{k} (n)" for k in keys)
            + " |"
        )
        lines.append("|---|" + "---|" * (len(RULES) + len(keys)))
        for s in summaries:
            rules = " | ".join(
                f"{s['pooled_by_rule'][r]:.1%}" if s["pooled_by_rule"].get(r) is not None else "-"
                for r in RULES
            )
            per = s["per_source"]
            cells = " | ".join(
                f"{per[k]['mean']:.1%} ({per[k]['n']})" if k in per else "-" for k in keys
            )
            lines.append(f"| {s['variant']['name']} | {rules} | {cells} |")
    lines += generalisation.format_generalisation(summaries)
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


def source_probe(data: TrackData, collection: Collection, *, seed: int) -> dict[str, float]:
    """How well the *source* can be told from what a model sees, within one genre.

    Only genres found in more than one source are used (electronic in the kit): a logistic
    regression on each track's mean features predicts its source, cross-validated by group;
    balanced accuracy 0.5 means the features carry no source, 1.0 that they give it away.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sources_of: dict[str, set[str]] = {}
    usable = [t for t in data.usable if t in collection.source]  # no third-source clips
    for track in usable:
        sources_of.setdefault(track.genre, set()).add(collection.source[track])
    shared_genres = [g for g, found in sources_of.items() if len(found) > 1]
    tracks = [t for t in usable if t.genre in shared_genres]
    if not tracks:
        return {}
    y = [collection.source[t] for t in tracks]
    groups = [collection.group[t] for t in tracks]
    views = {
        "MFCC mean+sd": np.stack(
            [
                np.concatenate([data.mfcc[t].mean(axis=(0, 1)), data.mfcc[t].std(axis=(0, 1))])
                for t in tracks
            ]
        ),
        "musicnn pool": np.stack([data.embeddings()[t]["pool"].mean(axis=0) for t in tracks]),
    }
    n_splits = min(5, min(y.count(v) for v in set(y)))
    result = {}
    for name, x in views.items():
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000)
        )
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        predicted = cross_val_predict(model, x, y, groups=groups, cv=splitter)
        result[name] = round(float(balanced_accuracy_score(y, predicted)), 3)
    return result


def merge_reports(paths: list[Path], out: Path | None) -> int:
    """Print (and save) one report of runs made apart with the same folds and settings."""
    documents = [json.loads(path.read_text()) for path in paths]
    first = documents[0]
    for path, document in zip(paths, documents, strict=True):
        same = (document["header"].split(";")[:2], document["genres"], document["patience"])
        if same != (first["header"].split(";")[:2], first["genres"], first["patience"]):
            raise SystemExit(f"{path} was measured with other folds or settings than {paths[0]}")
    seen: set[str] = set()
    summaries = []
    for document in documents:
        for summary in document["variants"]:
            if summary["variant"]["name"] not in seen:
                seen.add(summary["variant"]["name"])
                summaries.append(summary)
    merged = {**first, "variants": summaries}
    for document in documents:
        merged["source_probe"] = {**merged["source_probe"], **document.get("source_probe", {})}
        merged.setdefault("open_set", document.get("open_set"))
        if document.get("open_set"):
            merged["open_set"] = document["open_set"]
    report = format_report(summaries, first["genres"], first["header"] + " (merged runs)")
    print(report)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(report + "\n")
        out.with_suffix(".json").write_text(json.dumps(merged, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Cross-validate the chosen variants and print (and save) the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "data_dirs", type=Path, nargs="*", help="<genre>/<file> folders, one per source"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="the seed recipe is always run first",
    )
    parser.add_argument("--folds", type=int, default=N_FOLDS)
    parser.add_argument("--repeats", type=int, default=1, help="cross-validations, other seeds")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="cap; early stopping ends most")
    parser.add_argument("--patience", type=int, default=PATIENCE)
    parser.add_argument("--split-dir", type=Path, help="fixed *train*/*valid*/*test*.txt lists")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, help="write the report (.md) and figures (.json) here")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--open-set",
        choices=list(VARIANTS),
        help="also leave each genre out of this variant's training and score it (for the "
        '"not sure" threshold)',
    )
    parser.add_argument(
        "--strides",
        nargs="+",
        type=int,
        default=[],
        help="also score musicnn variants with musicnn on every k-th segment (fast path)",
    )
    parser.add_argument("--skip-seed", action="store_true", help="do not run the seed recipe")
    parser.add_argument(
        "--third-source",
        type=Path,
        help="a flat folder of <genre>.<n>.<ext> clips from another source (the kit's "
        "data/samples), scored by every fold's model",
    )
    parser.add_argument(
        "--no-readout", action="store_true", help="skip the linear read-out baseline rows"
    )
    parser.add_argument("--no-cross-source", action="store_true", help="skip the cross-source runs")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the variants already in --out's JSON (same folds and settings), run the rest",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="only merge the reports of runs made apart (same folds) into one (--out)",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge_reports(args.merge, args.out)
    if not args.data_dirs:
        parser.error("give at least one <genre>/<file> folder (or --merge)")

    names = [*([] if args.skip_seed else ["seed"]), *[n for n in args.variants if n != "seed"]]
    collection = Collection.load(args.data_dirs)
    third = generalisation.load_third_source(args.third_source) if args.third_source else []
    started = time.perf_counter()
    datas: dict[float | None, TrackData] = {}

    def data_for(variant: Variant) -> TrackData:
        if variant.loudness_db not in datas:
            datas[variant.loudness_db] = TrackData(
                [*collection.tracks, *third],
                args.cache_dir,
                progress=not args.quiet,
                loudness_db=variant.loudness_db,
            )
        return datas[variant.loudness_db]

    data = data_for(VARIANTS["seed"])
    known_tracks = set(collection.tracks)
    usable = [t for t in data.usable if t in known_tracks]
    third = [t for t in third if t in data.mfcc]
    genres = sorted({t.genre for t in usable})
    folds = [
        fold
        for repeat in range(args.repeats)
        for fold in _folds(
            usable,
            n_folds=args.folds,
            seed=args.seed + 1000 * repeat,
            split_dir=args.split_dir,
            groups=collection.group,
        )
    ]
    unit = "artist" if collection.by_artist else "track"
    split = (
        f"fixed split {args.split_dir}"
        if args.split_dir
        else f"stratified {args.folds}-fold CV by {unit}, seed {args.seed}"
        + (f", {args.repeats} repeats" if args.repeats > 1 else "")
    )
    sources = {t.relpath: collection.source[t] for t in usable}
    name = "+".join(d.name for d in args.data_dirs)

    def header() -> str:
        seconds = {
            f"{key}{'' if level is None else f' ({level:g} dB)'}": value
            for level, d in datas.items()
            for key, value in d.seconds.items()
        }
        return (
            f"{name}: {len(usable)} tracks, {len(genres)} genres, {split}; "
            f"epochs ≤ {args.epochs}, early stopping (patience {args.patience}) on 15 % of the "
            "training artists; features "
            + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
            + f" (0 s when cached); total {time.perf_counter() - started:.0f} s"
        )

    summaries = []
    if args.resume and args.out and args.out.with_suffix(".json").is_file():
        previous = json.loads(args.out.with_suffix(".json").read_text())
        settings = (previous["header"].split(";")[:2], previous["patience"], previous["epochs"])
        if settings != (header().split(";")[:2], args.patience, args.epochs):
            parser.error(f"{args.out}.json was measured with other folds or settings")
        done = {s["variant"]["name"] for s in previous["variants"]}
        summaries = [
            s for s in previous["variants"] if s["variant"]["name"].split(" · ")[0] in names
        ]
        names = [n for n in names if n not in done]
    probes = {}
    readouts: dict[tuple[Any, ...], dict[str, Any]] = {}
    # the same cross-source folds for every variant (they depend on the songs alone)
    cross_folds = (
        []
        if args.no_cross_source
        else generalisation.cross_source_folds(
            usable, collection, seed=args.seed, hold_out=_hold_out
        )
    )
    for variant_name in names:
        variant = VARIANTS[variant_name]
        variant_data = data_for(variant)
        if variant.embedding and variant.loudness_db not in probes and len(args.data_dirs) > 1:
            probes[variant.loudness_db] = source_probe(variant_data, collection, seed=args.seed)
            print(
                f"source probe ({variant.loudness_db} dB): {probes[variant.loudness_db]}",
                file=sys.stderr,
            )

        def fold_runner(
            fold: dict[str, Any], number: int, variant: Variant = variant, **scoring: Any
        ) -> dict:
            return run_fold(
                data_for(variant),
                fold,
                variant,
                genres,
                epochs=args.epochs,
                patience=args.patience,
                seed=args.seed + number,
                verbose=0 if args.quiet else 2,
                **scoring,
            )

        results = []
        for number, fold in enumerate(folds):
            metrics = fold_runner(fold, number, strides=tuple(args.strides), third=third)
            results.append(metrics)
            print(
                f"{variant_name} fold {number + 1}/{len(folds)}: "
                f"vote {metrics['track_accuracy_vote']:.1%}"
                f" mean {metrics['track_accuracy_mean']:.1%}"
                f" segment {metrics['segment_accuracy']:.1%}"
                f" ({metrics['train_seconds']:.0f} s, {metrics['epochs_run']} epochs)",
                file=sys.stderr,
                flush=True,
            )
        summary = summarise(variant, results, genres, sources)
        _add_generalisation(summary, results, cross_folds, fold_runner, genres)
        summaries.append(summary)
        print(_one_line(summary), file=sys.stderr, flush=True)
        if args.out:  # before the read-out, so a run stopped there keeps the variant
            _write(args.out, header(), summaries, genres, args, probes)
        if not args.no_readout:
            key = generalisation.readout_key(variant)
            if key not in readouts:
                read = [
                    generalisation.run_readout_fold(
                        variant_data, fold, variant, genres, third=third
                    )
                    for fold in folds
                ]
                readout = summarise(variant, read, genres, sources)

                def readout_runner(fold: dict[str, Any], number: int, v: Variant = variant) -> dict:
                    return generalisation.run_readout_fold(data_for(v), fold, v, genres)

                _add_generalisation(readout, read, cross_folds, readout_runner, genres)
                readouts[key] = readout
            summaries.append(
                {
                    **readouts[key],
                    "variant": {**asdict(variant), "name": f"{variant_name} · read-out"},
                    "description": "linear read-out (logistic regression, C "
                    f"{generalisation.READOUT_C}) of the same "
                    + ("embeddings" if variant.embedding else "MFCCs' per-segment mean and sd"),
                    "readout": True,
                }
            )
            print(_one_line(summaries[-1]), file=sys.stderr, flush=True)
        if args.out:  # after every variant, so a long run can be read as it goes
            _write(args.out, header(), summaries, genres, args, probes)
    if args.open_set:
        variant = VARIANTS[args.open_set]
        open_records = open_set(
            data_for(variant),
            collection,
            variant,
            genres,
            epochs=args.epochs,
            patience=args.patience,
            seed=args.seed,
            verbose=0 if args.quiet else 2,
        )
        if args.out:
            _write(args.out, header(), summaries, genres, args, probes, open_records)
    print(format_report(summaries, genres, header()))
    if probes:
        print(
            "\nSource probe (balanced accuracy of telling the source from track-mean features "
            "within genres found in both sources; 0.5 = no source information):"
        )
        for loudness, probe in probes.items():
            print(
                f"- loudness {'as decoded' if loudness is None else f'{loudness:g} dBFS'}: {probe}"
            )
    return 0


def _add_generalisation(
    summary: dict[str, Any],
    cv_folds: list[dict[str, Any]],
    cross_folds: list[dict[str, Any]],
    runner: Any,
    genres: list[str],
) -> None:
    """Add the cross-source and third-source figures to a variant's (or read-out's) summary."""
    runs = []
    for number, fold in enumerate(cross_folds):
        metrics = runner(fold, 100 + number)
        runs.append({"genre": fold["genre"], "source": fold["source"], **metrics})
    records = [r for f in cv_folds for r in f.get("tracks", [])]
    if runs:
        summary["cross_source"] = generalisation.cross_source_summary(records, runs, genres)
    summary["third_source"] = generalisation.third_source_summary(cv_folds, genres)


def _one_line(summary: dict[str, Any]) -> str:
    """Return a variant's headline figures on one line, for the log."""
    cross = (summary.get("cross_source") or {}).get("overall")
    third = (summary.get("third_source") or {}).get("accuracy")
    per = summary.get("per_source", {})
    sources = ", ".join(f"{k} {v['mean']:.1%}" for k, v in per.items())
    return (
        f"{summary['variant']['name']}: mean rule {summary['pooled_by_rule']['mean']:.1%} "
        f"({sources}); cross-source {'-' if cross is None else f'{cross:.1%}'}; "
        f"third source {'-' if third is None else f'{third:.1%}'}"
    )


def _write(
    out: Path,
    header: str,
    summaries: list[dict[str, Any]],
    genres: list[str],
    args: Any,
    probes: dict[Any, dict[str, float]] | None = None,
    open_records: list[dict[str, Any]] | None = None,
) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(format_report(summaries, genres, header) + "\n")
    document = {
        "header": header,
        "genres": genres,
        "patience": args.patience,
        "epochs": args.epochs,
        "variants": summaries,
        "source_probe": {str(k): v for k, v in (probes or {}).items()},
    }
    if open_records:
        document["open_set"] = {"variant": args.open_set, "tracks": open_records}
    out.with_suffix(".json").write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    sys.exit(main())
