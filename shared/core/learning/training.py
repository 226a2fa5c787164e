"""Train a genre model on a GTZAN-layout folder and evaluate it by track.

The options and recipes live in :mod:`shared.core.learning.options`, how a track becomes the
network's inputs in :mod:`shared.core.learning.model_inputs`, and scoring on held-out songs in
:mod:`shared.core.learning.held_out`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from shared.core.audio.features import DEFAULT_FEATURES, FeatureConfig
from shared.core.learning.augment import ChannelAugmentedCache
from shared.core.learning.dataset import (
    FeatureCache,
    Track,
    dataset_fingerprint,
    find_tracks,
    load_features,
    split_from_lists,
    split_tracks,
    tracks_fingerprint,
)
from shared.core.learning.embeddings import EmbeddingCache
from shared.core.learning.evaluation import evaluate_probabilities, save_confusion_png
from shared.core.learning.held_out import fit_validation_policy
from shared.core.learning.model_inputs import TrackInputs, load_embeddings
from shared.core.learning.options import TrainOptions, recipe_features, recipe_of
from shared.core.learning.readout import readout_for
from shared.core.nets.fusion_model import build_fusion_head, compose_served_model
from shared.core.nets.model import build_model, import_keras, new_version, save_model
from shared.core.nets.recipe import RECIPE_KEY, Recipe
from shared.core.nets.sidecar import confusion_png_path, model_path_for
from shared.errors import DatasetError

__all__ = ["TrainOptions", "TrainingReport", "recipe_features", "recipe_of", "train_from_folder"]

log = logging.getLogger(__name__)

TrainingProgress = Callable[[str, float], None]


def balanced_class_weights(one_hot: np.ndarray) -> dict[int, float]:
    """Return Keras ``class_weight`` that gives every genre the same total weight."""
    counts = one_hot.sum(axis=0)
    return {i: float(len(one_hot) / (len(counts) * n)) for i, n in enumerate(counts) if n > 0}


@dataclass
class TrainingReport:
    """What a training run produced."""

    version: str
    model_path: Path
    confusion_png: Path
    metrics: dict[str, Any]
    test_tracks: list[str]
    data_fingerprint: str
    skipped: dict[str, str] = field(default_factory=dict)
    epochs_run: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    #: Usable tracks by source: ``folder`` (the training folder) and ``labels`` (users' labels).
    sources: dict[str, int] = field(default_factory=dict)


def build_network(
    train_inputs: Any, n_classes: int, options: TrainOptions, labels: np.ndarray
) -> Any:
    """Build the network a run trains: the MFCC LSTM, or the head beside the embeddings.

    Normalisation statistics come from the training rows (``train_inputs`` as
    :meth:`TrackInputs.stack` gives them).
    """
    x = train_inputs[0] if isinstance(train_inputs, list) else train_inputs
    flat = x.reshape(-1, x.shape[-1])
    mfcc_mean = flat.mean(axis=0) if options.normalize else None
    mfcc_var = flat.var(axis=0) if options.normalize else None
    if not isinstance(train_inputs, list):
        return build_model(
            x.shape[1:],
            n_classes,
            architecture=options.architecture,
            feature_mean=mfcc_mean,
            feature_var=mfcc_var,
            learning_rate=options.learning_rate,
        )
    embedding = train_inputs[1]
    audioset = train_inputs[2] if len(train_inputs) > 2 else None
    return build_fusion_head(
        x.shape[1:],
        embedding.shape[1],
        n_classes,
        architecture=options.architecture,
        mfcc_mean=mfcc_mean,
        mfcc_var=mfcc_var,
        embedding_mean=embedding.mean(axis=0),
        embedding_var=embedding.var(axis=0),
        learning_rate=options.learning_rate,
        audioset_dim=0 if audioset is None else audioset.shape[1],
        audioset_mean=None if audioset is None else audioset.mean(axis=0),
        audioset_var=None if audioset is None else audioset.var(axis=0),
        fusion=options.fusion,
        lstm_units=options.lstm_units,
        mfcc_dropout=options.mfcc_dropout,
        readout=(
            readout_for(train_inputs, labels, balanced=options.balanced)
            if options.fusion == "residual"
            else None
        ),
        **{
            name: value
            for name in ("l2", "embedding_dropout")
            if (value := getattr(options, name)) is not None
        },
    )


def train_from_folder(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    options: TrainOptions | None = None,
    feature_config: FeatureConfig = DEFAULT_FEATURES,
    progress: TrainingProgress | None = None,
    recipe: Recipe | None = None,
    extra_tracks: Sequence[Track] = (),
) -> TrainingReport:
    """Train, evaluate by track, and save a model with its sidecar and confusion matrix.

    Parameters
    ----------
    data_dir : path-like
        GTZAN-layout folder ``<genre>/<file>``.
    out_dir : path-like
        Where ``<version>.keras``, ``<version>.json`` and ``<version>.confusion.png`` go.
    options : TrainOptions, optional
        Hyper-parameters, split and cache settings (default: the seed recipe's).
    feature_config : FeatureConfig
        MFCC settings; stored in the sidecar.
    progress : callable(stage, fraction), optional
        Called as work advances (stages ``features``, ``training``, ``evaluating``).
    recipe : Recipe, optional
        Recorded in the sidecar as the model's recipe; by default the one ``options`` and
        ``feature_config`` make (:func:`recipe_of`). A service run passes the recipe it was
        asked for, whose ``epochs`` it may have capped in ``options``.
    extra_tracks : sequence of Track, optional
        More labelled tracks (users' labels). They only ever join the training part: the
        validation and test tracks are the folder's own fixed split, so models stay comparable.
        Their genres join the model's genre list.

    Raises
    ------
    DatasetError
        The folder is unusable (missing, fewer than two genres, too few tracks per genre).
    """
    options = options or TrainOptions()
    report = progress or (lambda stage, fraction: None)
    data_dir = Path(data_dir)
    tracks = find_tracks(data_dir)
    extra_tracks = list(extra_tracks)
    keras = import_keras()
    fingerprint = tracks_fingerprint(dataset_fingerprint(data_dir), extra_tracks)
    # MFCCs are cached apart from the musicnn embeddings, so both recipes share them.
    cache = FeatureCache(options.cache_dir, replace(feature_config, musicnn=False))
    share = 0.5 if feature_config.musicnn else 1.0
    features_started = time.perf_counter()
    report("features", 0.0)
    features, skipped = load_features(
        tracks + extra_tracks,
        cache,
        progress_bar=options.progress_bar,
        progress=lambda fraction: report("features", share * fraction),
    )
    usable = [t for t in tracks if t in features]
    usable_extra = [t for t in extra_tracks if t in features]
    inputs = TrackInputs(feature_config, features)
    musicnn_share = 0.25 if feature_config.audioset else 0.5
    if feature_config.musicnn:
        inputs.musicnn = load_embeddings(
            usable + usable_extra,
            [
                EmbeddingCache(options.cache_dir, feature_config, weights=network)
                for network in options.networks
            ],
            options.embedding,
            progress=lambda fraction: report("features", 0.5 + musicnn_share * fraction),
            progress_bar=options.progress_bar,
        )
        if feature_config.audioset:
            from shared.core.learning.embeddings import AudioSetCache

            inputs.audioset = load_embeddings(
                usable + usable_extra,
                [AudioSetCache(options.cache_dir, feature_config)],
                "embedding",
                progress=lambda fraction: report("features", 0.75 + 0.25 * fraction),
                progress_bar=options.progress_bar,
                desc="audioset",
            )
    genres = sorted({t.genre for t in usable + usable_extra})
    if len({t.genre for t in usable}) < 2:
        raise DatasetError(f"{data_dir} needs at least two genre folders with readable audio.")
    if options.split_dir:
        parts = split_from_lists(usable, options.split_dir)
    else:
        parts = split_tracks(
            usable,
            valid_fraction=options.valid_fraction,
            test_fraction=options.test_fraction,
            seed=options.seed,
        )
    parts["train"] = parts["train"] + usable_extra  # never valid or test: the split stays fixed
    sources = {"folder": len(usable), "labels": len(usable_extra)}
    # augmented copies of the training tracks only, never of validation or test tracks
    copies = []
    if options.augment:  # half-segment-shifted segments: new views of the same songs
        offset = feature_config.samples_per_segment // 2
        copies.append(
            load_features(parts["train"], cache, offset=offset, progress_bar=options.progress_bar)[
                0
            ]
        )
    if options.channel_augment:  # the songs as other recording chains would colour them
        copies.append(
            load_features(
                parts["train"],
                ChannelAugmentedCache(options.cache_dir, replace(feature_config, musicnn=False)),
                progress_bar=options.progress_bar,
            )[0]
        )
    features_seconds = time.perf_counter() - features_started
    report("training", 0.0)

    keras.utils.set_random_seed(options.seed)
    train_inputs, owners = inputs.stack(parts["train"], copies)
    y_train = inputs.labels(owners, genres)
    valid_inputs, valid_owners = inputs.stack(parts["valid"])
    y_valid = inputs.labels(valid_owners, genres)
    model = build_network(train_inputs, len(genres), options, y_train)

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            report("training", (epoch + 1) / options.epochs)

    started = time.perf_counter()
    history = model.fit(
        train_inputs,
        y_train,
        validation_data=(valid_inputs, y_valid),
        epochs=options.epochs,
        batch_size=options.batch_size,
        shuffle=True,
        verbose=1 if options.progress_bar else 0,
        class_weight=balanced_class_weights(y_train) if options.balanced else None,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=options.patience, restore_best_weights=True
            ),
            _Progress(),
        ],
    )
    train_seconds = time.perf_counter() - started
    report("evaluating", 0.0)
    version = new_version()
    test = parts["test"]
    metrics = evaluate_probabilities(
        [np.asarray(model.predict_on_batch(inputs.song(t))) for t in test],
        [t.genre for t in test],
        genres,
    )
    answer = fit_validation_policy(model, parts, inputs, genres)
    if inputs.musicnn:
        model = compose_served_model(
            model, embedding=options.embedding, networks=tuple(options.networks)
        )
    out_dir = Path(out_dir)
    n_tracks = {name: len(part) for name, part in parts.items()}
    model_path = save_model(
        model,
        out_dir,
        version=version,
        genres=genres,
        feature_config=feature_config,
        extra={
            "metrics": metrics,
            "data_fingerprint": fingerprint,
            "training_data": {
                "root": str(data_dir.resolve()),
                "n_tracks": n_tracks,
                "n_segments_train": len(owners),
                "sources": sources,
                "split": "lists:" + str(options.split_dir)
                if options.split_dir
                else "stratified-by-track",
                "skipped": {t.relpath: reason for t, reason in skipped.items()},
            },
            "test_tracks": [t.relpath for t in test],
            "options": asdict(options),
            "answer": answer.to_dict(),
            RECIPE_KEY: (recipe or recipe_of(options, feature_config)).to_dict(),
            "epochs_run": len(history.history["loss"]),
            "timings": {
                "features_s": round(features_seconds, 1),
                "training_s": round(train_seconds, 1),
            },
        },
    )
    confusion = save_confusion_png(
        metrics["confusion_matrix"],
        genres,
        confusion_png_path(model_path_for(out_dir, version)),
        title=f"{version}\ntrack accuracy {metrics['track_accuracy_vote']:.1%} (vote)",
    )
    report("evaluating", 1.0)
    return TrainingReport(
        version=version,
        model_path=model_path,
        confusion_png=confusion,
        metrics=metrics,
        test_tracks=[t.relpath for t in test],
        data_fingerprint=fingerprint,
        skipped={t.relpath: reason for t, reason in skipped.items()},
        epochs_run=len(history.history["loss"]),
        timings={"features_s": round(features_seconds, 1), "training_s": round(train_seconds, 1)},
        sources=sources,
    )
