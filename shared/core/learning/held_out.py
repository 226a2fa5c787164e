"""Score a model on songs it never trained on: its validation tracks, test tracks, a folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from shared.core.audio.audio import decode_audio
from shared.core.audio.features import logmel_segments
from shared.core.learning.dataset import (
    FeatureCache,
    Track,
    find_tracks,
    load_features,
    split_from_lists,
)
from shared.core.learning.evaluation import evaluate_probabilities
from shared.core.learning.model_inputs import TrackInputs
from shared.core.nets.genre_model import GenreModel
from shared.core.serving.calibration import (
    AnswerPolicy,
    fit_answer_policy,
    fit_novelty,
    song_statistics,
)
from shared.core.serving.predict import vote_genre
from shared.errors import DatasetError


def fit_validation_policy(
    model: Any,
    parts: dict[str, list[Track]],
    inputs: TrackInputs,
    genres: list[str],
) -> AnswerPolicy:
    """Fit a new model's answer policy on its validation tracks (songs it never trained on).

    The temperature calibrates its song probabilities there; the song rule is the one that
    scored better there; the novelty check is the training songs' MFCC statistics, with its
    threshold at the validation songs' 99th percentile. With no songs of other genres to
    look at, the "not sure" threshold is one half (see
    :func:`shared.core.serving.calibration.choose_threshold`).
    """
    valid = parts["valid"]
    scores = [np.asarray(model.predict_on_batch(inputs.song(t))) for t in valid]
    labels = [genres.index(t.genre) for t in valid]
    by_vote = np.mean([vote_genre(p, genres)[0] == y for p, y in zip(scores, labels, strict=True)])
    by_mean = np.mean([p.mean(axis=0).argmax() == y for p, y in zip(scores, labels, strict=True)])
    n_mfcc = inputs.config.n_mfcc
    novelty = fit_novelty(
        np.stack([song_statistics(inputs.mfcc[t], n_mfcc=n_mfcc) for t in parts["train"]]),
        np.stack([song_statistics(inputs.mfcc[t], n_mfcc=n_mfcc) for t in valid]),
    )
    return fit_answer_policy(
        np.stack([p.mean(axis=0) for p in scores]),
        labels,
        rule="mean" if by_mean >= by_vote else "vote",
        fitted_on=f"{len(valid)} validation tracks of this training run",
        novelty=novelty,
    )


def song_inputs(
    model: GenreModel, track: Track, mfcc: np.ndarray
) -> np.ndarray | dict[str, np.ndarray]:
    """Every input a loaded model reads for a whole song, given its (cached) MFCCs."""
    config = model.feature_config
    if not config.musicnn:
        return mfcc
    y = decode_audio(track.path, sr=config.sample_rate, min_duration_s=config.segment_seconds)
    features = {"mfcc": mfcc, "logmel": logmel_segments(y, config=config)}
    if config.audioset:
        from shared.core.audio.audioset_input import audioset_segments
        from shared.core.nets.audioset import get_ear

        features["audioset"] = get_ear().outputs(audioset_segments(y, config=config))["embedding"]
    return features


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
    return evaluate_probabilities(
        [model.predict_segments(song_inputs(model, t, features[t])) for t in usable],
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
