"""Predict a song's genre: decode → 3-s MFCC segments → LSTM scores → vote; and "sounds like".

Beside the model's answer, every prediction carries a second opinion in AudioSet's words: the
AudioSet ear (:mod:`shared.core.nets.audioset`) hears the segments that get a musicnn patch
(every k-th; the same choice for a model without musicnn) and names its top three music genres.
Its embedding goes to the model as ``features["audioset"]``; a model that does not read it
ignores it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.core.audio.audio import MAX_DURATION_S, stream_audio
from shared.core.audio.audioset_input import audioset_segments
from shared.core.audio.features import logmel_segments, segment_audio, segment_features
from shared.core.nets.audioset import get_ear, sounds_like
from shared.core.nets.genre_model import GenreModel
from shared.core.serving.calibration import apply_temperature, song_statistics
from shared.core.serving.staged import FAST, patch_segments, song_stride

ProgressCallback = Callable[[float], None]

# Segments per decoded block: MFCCs of one block are taken while ffmpeg decodes the next.
SEGMENTS_PER_BLOCK = 10
#: The features key of the ear's input (``(n_rows, 1, 128, 300)``, one row per patch segment);
#: :func:`predict_features` runs the ear on it and replaces it with :data:`AUDIOSET`.
AUDIOSET_INPUT = "audioset_input"
#: The features key of the ear's embedding, ``(n_rows, 384)``, rows as ``patches`` (every
#: segment when ``patches`` is ``None``), like ``logmel``'s.
AUDIOSET = "audioset"


@dataclass(frozen=True)
class SegmentPrediction:
    """One 3-s segment's scores."""

    index: int
    start: float
    end: float
    genre: str
    probabilities: dict[str, float]


#: Why an answer is flagged ``uncertain``.
LOW_CONFIDENCE = "low_confidence"  # its calibrated probability is under the model's threshold
UNFAMILIAR_SOUND = "unfamiliar_sound"  # it sounds unlike any song the model was trained on


@dataclass(frozen=True)
class Prediction:
    """A song's genre, how sure the model is, and how each segment voted.

    ``probabilities`` are the song's calibrated probabilities (the mean of its segments',
    temperature-scaled as the model's sidecar says); ``confidence`` is the answer's. When
    ``uncertain``, ``genre`` is only the closest of the model's genres, and ``uncertain_reason``
    says why. Segment probabilities are the network's own, uncalibrated.
    """

    genre: str
    confidence: float
    probabilities: dict[str, float]
    votes: dict[str, int]
    segments: list[SegmentPrediction]
    duration_s: float
    model_version: str
    uncertain: bool = False
    uncertain_reason: str | None = None
    #: AudioSet's music genres the song sounds like (``{"name", "score"}``, best first): a
    #: second opinion from a network trained on AudioSet, not one of the model's genres.
    sounds_like: list[dict[str, Any]] | None = None

    @property
    def n_segments(self) -> int:
        """Number of scored segments."""
        return len(self.segments)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape documented in docs/architecture.md."""
        data = asdict(self)
        data["n_segments"] = self.n_segments
        return data


def vote_genre(probabilities: np.ndarray, genres: list[str]) -> tuple[int, np.ndarray, np.ndarray]:
    """Decide a song's genre from its segments' probabilities.

    Each segment votes for its top genre; the most voted genre wins, and a tie goes to the
    tied genre with the highest mean probability.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_segments, n_genres)
    genres : list of str, length n_genres

    Returns
    -------
    winner : int
        Column index of the chosen genre.
    votes : np.ndarray, shape (n_genres,), int
    mean_probabilities : np.ndarray, shape (n_genres,)
    """
    votes = np.bincount(probabilities.argmax(axis=1), minlength=len(genres))
    mean = probabilities.mean(axis=0)
    tied = np.flatnonzero(votes == votes.max())
    winner = int(tied[np.argmax(mean[tied])])
    return winner, votes, mean


def patch_plan(model: GenreModel) -> tuple[int, int]:
    """Return the stride and minimum count of the segments that get a patch (musicnn, the ear).

    A musicnn model's own (``musicnn_stride``, ``musicnn_min_patches``); for a model without
    musicnn, the fast path's defaults (every 4th segment, at least 10 where the song has them),
    so the ear costs the same whatever the model.
    """
    if model.feature_config.musicnn:
        return model.musicnn_stride, model.musicnn_min_patches
    return FAST.musicnn_stride, FAST.musicnn_min_patches


def predict_audio(y: np.ndarray, model: GenreModel) -> Prediction:
    """Predict the genre of decoded audio ``y`` (mono, at the model's sample rate).

    A musicnn model's patches and the ear's input cover every segment; a model without musicnn
    gets the ear on the segments :func:`predict_file` would choose.
    """
    config = model.feature_config
    features = segment_features(y, config=config)
    patches = None
    if not config.musicnn:
        n_segments = len(segment_audio(np.asarray(y), config=config))
        stride, min_patches = patch_plan(model)
        patches = patch_segments(n_segments, song_stride(n_segments, stride, min_patches))
    features[AUDIOSET_INPUT] = audioset_segments(y, config=config, segments=patches)
    return predict_features(
        features, model, duration_s=len(y) / config.sample_rate, patches=patches
    )


def predict_features(
    features: np.ndarray | dict[str, np.ndarray],
    model: GenreModel,
    *,
    duration_s: float,
    patches: np.ndarray | None = None,
) -> Prediction:
    """Score segments (MFCCs, or every model input by name) with ``model``; answer by its rule.

    ``patches`` names the segments the ``logmel`` rows belong to when musicnn ran on some
    segments only (see :meth:`GenreModel.predict_segments`). When ``features`` holds the ear's
    input (:data:`AUDIOSET_INPUT`, rows as ``patches``), the AudioSet ear runs once on it: its
    embedding joins the features as :data:`AUDIOSET` and its logits give ``sounds_like``
    (``None`` without it). The model's answer policy
    (:class:`shared.core.serving.calibration.AnswerPolicy`, from its sidecar) picks the genre (most
    votes, or highest mean probability), calibrates the probabilities and flags the answer
    ``uncertain`` when its probability is under the threshold, or when the song's MFCC
    statistics lie outside those of the songs it was trained on.
    """
    features = dict(features) if isinstance(features, dict) else {"mfcc": features}
    heard = None
    ear_input = features.pop(AUDIOSET_INPUT, None)
    if ear_input is not None:
        outputs = get_ear().outputs(ear_input)
        features[AUDIOSET] = outputs["embedding"]
        heard = sounds_like(outputs["logits"])
    probabilities = model.predict_segments(features, patches=patches)
    winner, votes, mean = vote_genre(probabilities, model.genres)
    policy = model.answer_policy
    calibrated = apply_temperature(mean, policy.temperature)
    if policy.rule == "mean":
        winner = int(calibrated.argmax())
    reason = None
    if policy.novelty is not None:
        stats = song_statistics(features["mfcc"], n_mfcc=model.feature_config.n_mfcc)
        if policy.novelty.is_strange(stats):
            reason = UNFAMILIAR_SOUND
    if reason is None and calibrated[winner] < policy.uncertain_below:
        reason = LOW_CONFIDENCE
    genres = model.genres
    step = model.feature_config.segment_seconds
    segments = [
        SegmentPrediction(
            index=i,
            start=round(i * step, 3),
            end=round((i + 1) * step, 3),
            genre=genres[int(row.argmax())],
            probabilities=_by_genre(row, genres),
        )
        for i, row in enumerate(probabilities)
    ]
    return Prediction(
        genre=genres[winner],
        confidence=round(float(calibrated[winner]), 4),
        probabilities=_by_genre(calibrated, genres),
        votes={genre: int(n) for genre, n in zip(genres, votes, strict=True)},
        segments=segments,
        duration_s=round(duration_s, 3),
        model_version=model.version,
        uncertain=reason is not None,
        uncertain_reason=reason,
        sounds_like=heard,
    )


def predict_file(
    path: str | Path,
    model: GenreModel,
    *,
    max_duration_s: float = MAX_DURATION_S,
    progress: ProgressCallback | None = None,
    name: str | None = None,
) -> Prediction:
    """Decode an audio file and predict its genre.

    MFCCs of each block of :data:`SEGMENTS_PER_BLOCK` segments are computed while ffmpeg
    decodes the next block, so decoding and feature extraction overlap. A musicnn model with
    ``musicnn_stride`` k > 1 gets log-mel patches of every k-th segment only
    (:func:`shared.core.serving.staged.patch_segments`), every k'-th for a song too short for
    ``musicnn_min_patches`` of them (:func:`shared.core.serving.staged.song_stride`); the timeline
    still has every segment. The AudioSet ear hears the same segments (for a model without
    musicnn, those :func:`patch_plan` gives).

    Parameters
    ----------
    path : path-like
        Any audio file ffmpeg reads.
    model : GenreModel
        A loaded model; reuse it across calls.
    max_duration_s : float > 0
        Longest accepted audio.
    progress : callable(fraction), optional
        Called with 0.5 once decoded and 1.0 when scored.
    name : str, optional
        How error messages name the file (e.g. the user's upload name).

    Raises
    ------
    InvalidAudio
        Or one of its subclasses, for files that cannot be used.
    """
    config = model.feature_config
    blocks = stream_audio(
        path,
        block_samples=SEGMENTS_PER_BLOCK * config.samples_per_segment,
        sr=config.sample_rate,
        min_duration_s=config.segment_seconds,
        max_duration_s=max_duration_s,
        name=name,
    )
    stride, min_patches = patch_plan(model)
    # a song with fewer than stride x min_patches segments gets a finer stride at the end, so
    # its audio is kept until it is known to be longer
    keep_until = stride * min_patches if stride > 1 else 0
    parts, patches, heard, n_samples, n_segments = [], [], [], 0, 0
    kept: list[tuple[np.ndarray, np.ndarray | None]] = []  # (audio, its patches), not yet heard
    for block in blocks:
        n_samples += len(block)
        n_block = len(block) // config.samples_per_segment
        if not n_block:
            continue
        chosen = patch_segments(n_block, stride, start=n_segments) if stride > 1 else None
        parts.append(segment_features(block, config=config, patches=chosen))
        if chosen is not None:
            patches.append(chosen + n_segments)
        n_segments += n_block
        kept.append((block[: n_block * config.samples_per_segment], chosen))
        if n_segments >= keep_until:  # long enough to keep its stride: the ear's input now
            heard += [audioset_segments(y, config=config, segments=c) for y, c in kept]
            kept = []
    if progress:
        progress(0.5)
    features = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    chosen = np.concatenate(patches) if patches else None
    if heard:
        features[AUDIOSET_INPUT] = np.concatenate(heard)
    if kept:  # a short song: its own stride, from all of its audio
        chosen = patch_segments(n_segments, song_stride(n_segments, stride, min_patches))
        song = np.concatenate([audio for audio, _ in kept])
        if config.musicnn:
            features["logmel"] = logmel_segments(song, config=config, segments=chosen)
        features[AUDIOSET_INPUT] = audioset_segments(song, config=config, segments=chosen)
    prediction = predict_features(
        features, model, duration_s=n_samples / config.sample_rate, patches=chosen
    )
    if progress:
        progress(1.0)
    return prediction


def _by_genre(row: np.ndarray, genres: list[str]) -> dict[str, float]:
    return {genre: round(float(p), 4) for genre, p in zip(genres, row, strict=True)}
