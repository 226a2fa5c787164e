"""Cut a song into 3-second segments and take MFCC sequences of every segment at once.

A segment is 66,150 samples at 22,050 Hz (10 per 30 s). With ``n_fft=2048`` and
``hop_length=512`` librosa gives 130 frames per segment, so a segment becomes a
``(130, 13)`` sequence: the input of the LSTM.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from shared.errors import AudioTooShort, FeatureMismatch

# Segments per librosa call: bounds the STFT's memory (~1 MB a segment) for very long songs
# while any song up to 10 minutes still takes a single batched call.
MAX_SEGMENTS_PER_CALL = 200
# musicnn's input: 96 mel bands of 16 kHz audio (n_fft 512, hop 256), 187 frames per 3 s.
MUSICNN_SAMPLE_RATE = 16_000
MUSICNN_N_FFT = 512
MUSICNN_HOP_LENGTH = 256
MUSICNN_MELS = 96
MUSICNN_FRAMES = 187
#: Width of the AudioSet network's (EfficientAT mn04) embedding, an input beside musicnn's.
AUDIOSET_EMBEDDING = 384
# Loudness normalisation: segments quieter than this are left alone (silence is not boosted),
# and no segment is raised by more than MAX_GAIN_DB.
SILENCE_DB = -60.0
MAX_GAIN_DB = 30.0


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the model's input; stored with every model and checked on load."""

    sample_rate: int = 22_050
    segment_seconds: float = 3.0
    n_mfcc: int = 13
    n_fft: int = 2048
    hop_length: int = 512
    deltas: bool = False
    musicnn: bool = False
    #: Scale every segment to this RMS level (dBFS) before any feature, or ``None``: as decoded.
    #: Songs from different sources are mastered at different levels; a model that reads the
    #: raw level can learn the source instead of the genre.
    loudness_db: float | None = None
    #: Per-song cepstral mean and variance normalisation: every MFCC coefficient (and delta)
    #: of a song is standardised over all of the song's frames before the network sees it.
    #: A recording's channel and codec colour its cepstrum by a near-constant offset; this
    #: takes that offset away, so the LSTM cannot tell a source by it.
    cmvn: bool = False
    #: The model also reads the AudioSet network's per-segment embedding (``audioset``).
    audioset: bool = False

    @property
    def samples_per_segment(self) -> int:
        """Samples in one segment (66,150 for the defaults)."""
        return round(self.sample_rate * self.segment_seconds)

    @property
    def n_frames(self) -> int:
        """MFCC frames per segment, librosa's centred framing (130 for the defaults)."""
        return 1 + self.samples_per_segment // self.hop_length

    @property
    def n_features(self) -> int:
        """Values per frame: the MFCCs, plus their first and second deltas if enabled."""
        return self.n_mfcc * (3 if self.deltas else 1)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-segment shape of each model input.

        ``mfcc`` always, ``logmel`` when ``musicnn``, and ``audioset`` (the AudioSet network's
        embedding, one row per ``logmel`` row) when ``audioset``.
        """
        shapes: dict[str, tuple[int, ...]] = {"mfcc": (self.n_frames, self.n_features)}
        if self.musicnn:
            shapes["logmel"] = (MUSICNN_FRAMES, MUSICNN_MELS)
        if self.audioset:
            shapes["audioset"] = (AUDIOSET_EMBEDDING,)
        return shapes

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FeatureMismatch(f"Unknown feature settings: {', '.join(sorted(unknown))}.")
        return cls(**data)

    def digest(self) -> str:
        """Return a short stable hash of what decides the cached MFCCs (feature-cache key part).

        ``cmvn`` is applied after the cache and ``audioset`` adds another network's input, so
        neither is part of it: models that differ only there share their MFCC cache.
        """
        data = {k: v for k, v in self.to_dict().items() if k not in ("cmvn", "audioset")}
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT_FEATURES = FeatureConfig()


def segment_audio(y: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Cut a signal into consecutive, non-overlapping full segments.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate``.
    config : FeatureConfig
        Gives the segment length.

    Returns
    -------
    np.ndarray, shape (n_segments, samples_per_segment)
        A view of ``y``; a trailing part shorter than one segment is dropped.

    Raises
    ------
    AudioTooShort
        ``y`` holds less than one full segment.
    """
    length = config.samples_per_segment
    n_segments = y.shape[-1] // length
    if n_segments == 0:
        raise AudioTooShort(
            f"The audio lasts {y.shape[-1] / config.sample_rate:.1f} s; at least "
            f"{config.segment_seconds:g} s (one segment) is needed."
        )
    return y[: n_segments * length].reshape(n_segments, length)


def normalise_loudness(segments: np.ndarray, *, target_db: float | None) -> np.ndarray:
    """Scale each segment to an RMS level of ``target_db`` dBFS.

    Parameters
    ----------
    segments : np.ndarray, shape (n_segments, n_samples)
    target_db : float or None
        Target RMS level in dBFS (e.g. ``-20.0``); ``None`` returns ``segments`` unchanged.

    Returns
    -------
    np.ndarray, shape (n_segments, n_samples), float32
        Segments quieter than :data:`SILENCE_DB` are unchanged, and no segment gains more than
        :data:`MAX_GAIN_DB`.
    """
    if target_db is None:
        return segments
    rms = np.sqrt(np.mean(np.square(segments, dtype=np.float64), axis=1))
    level_db = 20.0 * np.log10(np.maximum(rms, 1e-12))
    gain_db = np.where(level_db < SILENCE_DB, 0.0, np.minimum(target_db - level_db, MAX_GAIN_DB))
    return (segments * (10.0 ** (gain_db / 20.0))[:, None]).astype(np.float32)


def mfcc_segments(y: np.ndarray, *, config: FeatureConfig = DEFAULT_FEATURES) -> np.ndarray:
    """Return the MFCC sequence of every segment of ``y``, computed in batched librosa calls.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate``.
    config : FeatureConfig
        Segment length and MFCC parameters.

    Returns
    -------
    np.ndarray, shape (n_segments, n_frames, n_features), float32
        Time-major sequences, the LSTM's input layout.
    """
    import librosa

    segments = segment_audio(np.asarray(y, dtype=np.float32), config=config)
    segments = normalise_loudness(segments, target_db=config.loudness_db)
    parts = []
    for start in range(0, len(segments), MAX_SEGMENTS_PER_CALL):
        batch = segments[start : start + MAX_SEGMENTS_PER_CALL]
        mfcc = librosa.feature.mfcc(
            y=batch,
            sr=config.sample_rate,
            n_mfcc=config.n_mfcc,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
        )  # (batch, n_mfcc, n_frames)
        if config.deltas:
            mfcc = np.concatenate(
                [mfcc, librosa.feature.delta(mfcc, order=1), librosa.feature.delta(mfcc, order=2)],
                axis=-2,
            )
        parts.append(mfcc)
    features = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return np.ascontiguousarray(features.transpose(0, 2, 1), dtype=np.float32)


def normalise_cepstra(mfcc: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """Per-song cepstral mean and variance normalisation (CMVN).

    Parameters
    ----------
    mfcc : np.ndarray, shape (n_segments, n_frames, n_features)
        Every segment of one song.
    eps : float > 0
        Floor of a coefficient's standard deviation (a constant coefficient stays 0).

    Returns
    -------
    np.ndarray, same shape, float32
        Each feature column standardised over all of the song's frames.
    """
    mfcc = np.asarray(mfcc, dtype=np.float32)
    if mfcc.size == 0:
        return mfcc
    mean = mfcc.mean(axis=(0, 1), keepdims=True)
    std = mfcc.std(axis=(0, 1), keepdims=True)
    return ((mfcc - mean) / np.maximum(std, eps)).astype(np.float32)


def add_deltas(mfcc: np.ndarray) -> np.ndarray:
    """Append first and second deltas to time-major MFCC sequences ``(n, n_frames, n_mfcc)``.

    Gives the same values as ``mfcc_segments`` with ``deltas=True``.
    """
    import librosa

    coefficients = mfcc.transpose(0, 2, 1)
    stacked = np.concatenate(
        [
            coefficients,
            librosa.feature.delta(coefficients, order=1),
            librosa.feature.delta(coefficients, order=2),
        ],
        axis=-2,
    )
    return np.ascontiguousarray(stacked.transpose(0, 2, 1), dtype=np.float32)


def logmel_segments(
    y: np.ndarray,
    *,
    config: FeatureConfig = DEFAULT_FEATURES,
    segments: np.ndarray | None = None,
) -> np.ndarray:
    """Return musicnn's input for the segments of ``y``: a 16 kHz, 96-band log-mel patch.

    Each segment is resampled to 16 kHz on its own, so a segment's patch does not depend on its
    neighbours (prediction in blocks gives the same values as the whole song). Magnitudes are
    compressed as musicnn was trained: ``log10(1 + 10000 · mel power)``.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate``.
    config : FeatureConfig
        Gives the segment length.
    segments : np.ndarray of int, optional
        Only these segments (musicnn on every k-th segment); all of them by default.

    Returns
    -------
    np.ndarray, shape (n_segments, 187, 96), float32
        Frames x mel bands, one row per chosen segment.
    """
    import librosa

    audio = segment_audio(np.asarray(y, dtype=np.float32), config=config)
    if segments is not None:
        audio = audio[np.asarray(segments, dtype=np.int64)]
    if len(audio) == 0:
        return np.zeros((0, MUSICNN_FRAMES, MUSICNN_MELS), np.float32)
    audio = normalise_loudness(audio, target_db=config.loudness_db)
    resampled = librosa.resample(
        audio, orig_sr=config.sample_rate, target_sr=MUSICNN_SAMPLE_RATE, res_type="soxr_hq"
    )
    mel = librosa.feature.melspectrogram(
        y=resampled,
        sr=MUSICNN_SAMPLE_RATE,
        n_fft=MUSICNN_N_FFT,
        hop_length=MUSICNN_HOP_LENGTH,
        n_mels=MUSICNN_MELS,
    )[..., :MUSICNN_FRAMES]  # (n, 96, 188) → 187 frames, as musicnn's 3-s patches
    patches = np.log10(1.0 + 10_000.0 * mel)
    return np.ascontiguousarray(patches.transpose(0, 2, 1), dtype=np.float32)


def segment_features(
    y: np.ndarray,
    *,
    config: FeatureConfig = DEFAULT_FEATURES,
    patches: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Return every model input for the segments of ``y``, keyed by input name.

    ``mfcc`` always (see :func:`mfcc_segments`); ``logmel`` too when ``config.musicnn`` (see
    :func:`logmel_segments`), for the segments in ``patches`` only when given. Otherwise the
    arrays share their first axis, one row per segment.
    """
    features = {"mfcc": mfcc_segments(y, config=config)}
    if config.musicnn:
        features["logmel"] = logmel_segments(y, config=config, segments=patches)
    return features
