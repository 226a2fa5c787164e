"""Train the LSTM on a GTZAN-layout folder and evaluate it by track."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from shared.core.audio.audio import decode_audio
from shared.core.audio.features import DEFAULT_FEATURES, FeatureConfig, logmel_segments
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
from shared.core.nets import hparams
from shared.core.nets.fusion_model import build_fusion_head, compose_served_model
from shared.core.nets.genre_model import GenreModel
from shared.core.nets.model import build_model, import_keras, new_version, save_model
from shared.core.nets.recipe import RECIPE_KEY, Recipe
from shared.core.nets.sidecar import confusion_png_path, model_path_for
from shared.core.serving.calibration import (
    AnswerPolicy,
    fit_answer_policy,
    fit_novelty,
    song_statistics,
)
from shared.core.serving.predict import vote_genre
from shared.errors import DatasetError

log = logging.getLogger(__name__)

TrainingProgress = Callable[[str, float], None]


@dataclass(frozen=True)
class TrainOptions:
    """Training hyper-parameters; the defaults are the article's baseline."""

    epochs: int = hparams.EPOCHS
    batch_size: int = hparams.BATCH_SIZE
    learning_rate: float = hparams.LEARNING_RATE
    architecture: str = hparams.ARCHITECTURE
    patience: int = hparams.PATIENCE
    seed: int = hparams.SEED
    valid_fraction: float = hparams.VALID_FRACTION
    test_fraction: float = hparams.TEST_FRACTION
    split_dir: str | None = None
    cache_dir: str | None = None
    normalize: bool = True
    augment: bool = False
    progress_bar: bool = True
    embedding: str = "pool"  # musicnn output fed beside the MFCCs (FeatureConfig.musicnn)
    networks: tuple[str, ...] = ("MSD_musicnn",)  # musicnn weights whose embeddings are joined
    balanced: bool = False  # every genre weighs the same in the loss
    l2: float | None = None  # the musicnn head's weight decay (None: its default)
    embedding_dropout: float | None = None  # dropout on the embedding (None: the default)

    @classmethod
    def from_recipe(cls, recipe: Recipe, **settings: Any) -> TrainOptions:
        """Return the options of ``recipe``; ``settings`` (cache, split, progress...) override."""
        values: dict[str, Any] = {
            "epochs": recipe.epochs,
            "batch_size": recipe.batch_size,
            "learning_rate": recipe.learning_rate,
            "architecture": recipe.architecture,
            "patience": recipe.patience,
            "normalize": recipe.normalize,
            "augment": recipe.augment,
            "embedding": recipe.embedding or cls.embedding,
            "networks": recipe.networks,
            "balanced": recipe.balanced,
            "l2": recipe.l2,
            "embedding_dropout": recipe.embedding_dropout,
        }
        return cls(**{**values, **settings})


def recipe_features(recipe: Recipe, base: FeatureConfig = DEFAULT_FEATURES) -> FeatureConfig:
    """Return the feature config a model of ``recipe`` reads (``base`` for the rest)."""
    return replace(
        base,
        n_mfcc=recipe.n_mfcc,
        deltas=recipe.deltas,
        musicnn=recipe.musicnn,
        loudness_db=recipe.loudness_db,
    )


def recipe_of(options: TrainOptions, feature_config: FeatureConfig) -> Recipe:
    """Return the recipe that ``options`` and ``feature_config`` train (named after its preset)."""
    return Recipe(
        architecture=options.architecture,
        n_mfcc=feature_config.n_mfcc,
        deltas=feature_config.deltas,
        augment=options.augment,
        normalize=options.normalize,
        embedding=options.embedding if feature_config.musicnn else None,
        networks=tuple(options.networks),
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        patience=options.patience,
        balanced=options.balanced,
        loudness_db=feature_config.loudness_db,
        l2=options.l2,
        embedding_dropout=options.embedding_dropout,
    ).named()


def fit_validation_policy(
    model: Any,
    parts: dict[str, list[Track]],
    features: dict[Track, np.ndarray],
    embeddings: dict[Track, np.ndarray],
    genres: list[str],
    *,
    n_mfcc: int,
) -> AnswerPolicy:
    """Fit a new model's answer policy on its validation tracks (songs it never trained on).

    The temperature calibrates its song probabilities there; the song rule is the one that
    scored better there; the novelty check is the training songs' MFCC statistics, with its
    threshold at the validation songs' 99th percentile. With no songs of other genres to
    look at, the "not sure" threshold is one half (see :func:`choose_threshold`).
    """
    valid = parts["valid"]
    scores = [
        np.asarray(
            model.predict_on_batch([features[t], embeddings[t]] if embeddings else features[t])
        )
        for t in valid
    ]
    labels = [genres.index(t.genre) for t in valid]
    by_vote = np.mean([vote_genre(p, genres)[0] == y for p, y in zip(scores, labels, strict=True)])
    by_mean = np.mean([p.mean(axis=0).argmax() == y for p, y in zip(scores, labels, strict=True)])
    novelty = fit_novelty(
        np.stack([song_statistics(features[t], n_mfcc=n_mfcc) for t in parts["train"]]),
        np.stack([song_statistics(features[t], n_mfcc=n_mfcc) for t in valid]),
    )
    return fit_answer_policy(
        np.stack([p.mean(axis=0) for p in scores]),
        labels,
        rule="mean" if by_mean >= by_vote else "vote",
        fitted_on=f"{len(valid)} validation tracks of this training run",
        novelty=novelty,
    )


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


def _stack(tracks: Sequence[Track], features: dict[Track, np.ndarray], genres: list[str]):
    index = {genre: i for i, genre in enumerate(genres)}
    x = np.concatenate([features[t] for t in tracks])
    labels = np.concatenate([np.full(len(features[t]), index[t.genre]) for t in tracks])
    return x, np.eye(len(genres), dtype=np.float32)[labels]


def _load_embeddings(
    tracks: Sequence[Track],
    caches: Sequence[EmbeddingCache],
    name: str,
    *,
    offset: int = 0,
    progress: Callable[[float], None] | None = None,
    progress_bar: bool = False,
) -> dict[Track, np.ndarray]:
    """Musicnn embeddings (``name``: penultimate or pool) of tracks, cached.

    Several networks' embeddings are joined per segment. Uncached, this is the longest step
    before training (musicnn on every segment), so it shows a ``musicnn`` bar, as
    :func:`load_features` does, and reports ``progress``.
    """
    from tqdm import tqdm

    result = {}
    bar = tqdm(tracks, desc="musicnn", unit="track", disable=not progress_bar)
    for i, track in enumerate(bar):
        parts = [cache.embeddings(track.path, offset=offset)[name] for cache in caches]
        result[track] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        if progress:
            progress((i + 1) / len(tracks))
    return result


def train_from_folder(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    options: TrainOptions = TrainOptions(),
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
    options : TrainOptions
        Hyper-parameters, split and cache settings.
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
    embedding_caches = [
        EmbeddingCache(options.cache_dir, feature_config, weights=network)
        for network in options.networks
    ]
    embeddings: dict[Track, np.ndarray] = {}
    if feature_config.musicnn:
        embeddings = _load_embeddings(
            usable + usable_extra,
            embedding_caches,
            options.embedding,
            progress=lambda fraction: report("features", 0.5 + 0.5 * fraction),
            progress_bar=options.progress_bar,
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
    features_seconds = time.perf_counter() - features_started
    report("training", 0.0)

    keras.utils.set_random_seed(options.seed)
    x_train, y_train = _stack(parts["train"], features, genres)
    e_train = _stack(parts["train"], embeddings, genres)[0] if embeddings else None
    if options.augment:
        # Half-segment-shifted segments of the training tracks only: new views of the same
        # songs, never of validation or test tracks.
        offset = feature_config.samples_per_segment // 2
        shifted, _ = load_features(
            parts["train"], cache, offset=offset, progress_bar=options.progress_bar
        )
        if shifted:
            x_more, y_more = _stack(list(shifted), shifted, genres)
            x_train, y_train = np.concatenate([x_train, x_more]), np.concatenate([y_train, y_more])
            if e_train is not None:
                e_more = _load_embeddings(
                    list(shifted),
                    embedding_caches,
                    options.embedding,
                    offset=offset,
                    progress_bar=options.progress_bar,
                )
                e_train = np.concatenate([e_train, *(e_more[t] for t in shifted)])
    x_valid, y_valid = _stack(parts["valid"], features, genres)
    flat = x_train.reshape(-1, x_train.shape[-1])
    if e_train is None:
        model = build_model(
            x_train.shape[1:],
            len(genres),
            architecture=options.architecture,
            feature_mean=flat.mean(axis=0) if options.normalize else None,
            feature_var=flat.var(axis=0) if options.normalize else None,
            learning_rate=options.learning_rate,
        )
        train_inputs: Any = x_train
        valid_inputs: Any = x_valid
    else:
        model = build_fusion_head(
            x_train.shape[1:],
            e_train.shape[1],
            len(genres),
            architecture=options.architecture,
            mfcc_mean=flat.mean(axis=0) if options.normalize else None,
            mfcc_var=flat.var(axis=0) if options.normalize else None,
            embedding_mean=e_train.mean(axis=0),
            embedding_var=e_train.var(axis=0),
            learning_rate=options.learning_rate,
            **{
                name: value
                for name in ("l2", "embedding_dropout")
                if (value := getattr(options, name)) is not None
            },
        )
        train_inputs = [x_train, e_train]
        valid_inputs = [x_valid, _stack(parts["valid"], embeddings, genres)[0]]

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
        [
            np.asarray(
                model.predict_on_batch([features[t], embeddings[t]] if embeddings else features[t])
            )
            for t in test
        ],
        [t.genre for t in test],
        genres,
    )
    answer = fit_validation_policy(
        model, parts, features, embeddings, genres, n_mfcc=feature_config.n_mfcc
    )
    if embeddings:
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
                "n_segments_train": len(x_train),
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


def evaluate_on_tracks(
    model: GenreModel,
    data_dir: str | Path,
    tracks: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    progress_bar: bool = False,
) -> dict[str, Any]:
    """Evaluate a loaded model on named tracks of a GTZAN-layout folder.

    Parameters
    ----------
    model : GenreModel
    data_dir : path-like
    tracks : sequence of str
        ``<genre>/<file name>`` paths relative to ``data_dir`` (a report's ``test_tracks``).
    cache_dir : path-like, optional
        Feature cache; features are computed with the model's own feature config.

    Returns
    -------
    dict
        The metrics of :func:`shared.core.learning.evaluation.evaluate_probabilities`.
    """
    data_dir = Path(data_dir)
    chosen = [Track(path=data_dir / rel, genre=rel.split("/", 1)[0]) for rel in tracks]
    missing = [t.relpath for t in chosen if not t.path.is_file()]
    if missing:
        raise DatasetError(f"Test tracks missing from {data_dir}: {', '.join(missing[:5])}.")
    config = model.feature_config
    features, _ = load_features(
        chosen, FeatureCache(cache_dir, replace(config, musicnn=False)), progress_bar=progress_bar
    )
    usable = [t for t in chosen if t in features]

    def inputs(track: Track) -> np.ndarray | dict[str, np.ndarray]:
        if not config.musicnn:
            return features[track]
        y = decode_audio(track.path, sr=config.sample_rate, min_duration_s=config.segment_seconds)
        return {"mfcc": features[track], "logmel": logmel_segments(y, config=config)}

    return evaluate_probabilities(
        [model.predict_segments(inputs(t)) for t in usable],
        [t.genre for t in usable],
        model.genres,
    )


def evaluate_folder(
    model: GenreModel,
    data_dir: str | Path,
    *,
    split_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Evaluate a model on a whole folder, or on the test list of ``split_dir`` when given."""
    tracks = find_tracks(data_dir)
    if split_dir:
        tracks = split_from_lists(tracks, split_dir)["test"]
    return evaluate_on_tracks(
        model, data_dir, [t.relpath for t in tracks], cache_dir=cache_dir, progress_bar=progress_bar
    )
