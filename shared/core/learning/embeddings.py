"""Frozen networks' embeddings of whole tracks, one row per 3-s segment, cached on disk.

Training a model that reads musicnn (or the AudioSet ear) beside the MFCCs runs the frozen
network once per segment and keeps the result, so epochs (and every cross-validation fold) train
only the small head. The cache key is the file's content hash, the segment settings, the offset
and the weights' name: a changed file or setting never reads stale embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shared.core.audio.audio import decode_audio
from shared.core.audio.features import FeatureConfig, logmel_segments
from shared.core.learning.dataset import _file_sha256

EMBEDDING_OUTPUTS = ("penultimate", "pool")
BATCH_SIZE = 32


class SegmentEmbeddingCache:
    """Per-track outputs of a frozen network, one row per segment, cached as ``.npz``.

    Subclasses name their network's family and outputs and compute them from decoded audio
    (:meth:`compute`); this class decodes, keys and caches, the same way for every network.

    Parameters
    ----------
    cache_dir : path-like or None
        Root of the cache (files under ``<cache_dir>/<family>/<key>/``); ``None`` computes
        every time.
    config : FeatureConfig
        Segment length, sample rate and loudness (the MFCC settings do not matter here).
    weights : str
        Name of the network's weights, part of the key.
    """

    family: ClassVar[str]
    output_names: ClassVar[tuple[str, ...]]

    def __init__(
        self, cache_dir: str | Path | None, config: FeatureConfig, *, weights: str
    ) -> None:
        self.config = config
        key = f"{weights}-{config.sample_rate}-{config.segment_seconds:g}"
        if config.loudness_db is not None:
            key += f"-{config.loudness_db:g}dB"
        self.directory = Path(cache_dir) / self.family / key if cache_dir else None
        self.weights = weights

    def compute(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Return the network's outputs for every segment of decoded audio ``y``."""
        raise NotImplementedError

    def embeddings(self, path: Path, *, offset: int = 0) -> dict[str, np.ndarray]:
        """Return the outputs (``{name: (n_segments, width)}``) for an audio file.

        ``offset`` (samples at ``config.sample_rate``) starts the segmentation later, as in
        :meth:`shared.dataset.FeatureCache.features`.
        """
        cached = None
        if self.directory is not None:
            suffix = f"+{offset}" if offset else ""
            cached = self.directory / f"{_file_sha256(path)}{suffix}.npz"
            if cached.is_file():
                with np.load(cached) as data:
                    return {name: data[name] for name in self.output_names}
        y = decode_audio(
            path,
            sr=self.config.sample_rate,
            min_duration_s=self.config.segment_seconds + offset / self.config.sample_rate,
        )
        result = self.compute(y[offset:])
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            temporary = cached.with_suffix(".tmp.npz")
            np.savez(temporary, **result)
            temporary.replace(cached)
        return result


class EmbeddingCache(SegmentEmbeddingCache):
    """Per-track musicnn outputs (``penultimate`` 200, ``pool`` 1,506 per segment), cached.

    Parameters
    ----------
    cache_dir : path-like or None
        Root of the cache; ``None`` computes every time.
    config : FeatureConfig
        Segment length and sample rate (the MFCC settings do not matter here).
    weights : str
        Name of the musicnn weights (``MSD_musicnn``), part of the key.
    """

    family = "musicnn"
    output_names = EMBEDDING_OUTPUTS

    def __init__(
        self, cache_dir: str | Path | None, config: FeatureConfig, *, weights: str = "MSD_musicnn"
    ) -> None:
        super().__init__(cache_dir, config, weights=weights)
        self._network: Any = None

    def patches_to_embeddings(self, patches: np.ndarray) -> dict[str, np.ndarray]:
        """Run the frozen network on log-mel patches ``(n, 187, 96)``."""
        if self._network is None:
            from shared.core.nets.musicnn import WEIGHTS_DIR, build_musicnn, load_weights

            weights = load_weights(WEIGHTS_DIR / f"{self.weights}.npz")
            self._network = build_musicnn(weights, outputs=EMBEDDING_OUTPUTS)
        parts: list[list[np.ndarray]] = [[] for _ in EMBEDDING_OUTPUTS]
        for start in range(0, len(patches), BATCH_SIZE):
            outputs = self._network.predict_on_batch(patches[start : start + BATCH_SIZE])
            for part, output in zip(parts, outputs, strict=True):
                part.append(np.asarray(output, dtype=np.float32))
        return {
            name: np.concatenate(part) for name, part in zip(EMBEDDING_OUTPUTS, parts, strict=True)
        }

    def compute(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Return ``{"penultimate": (n, 200), "pool": (n, 1506)}`` for decoded audio ``y``."""
        return self.patches_to_embeddings(logmel_segments(y, config=self.config))


class AudioSetCache(SegmentEmbeddingCache):
    """Per-track AudioSet-ear outputs (``embedding`` 384, ``logits`` 527 per segment), cached.

    The segments are those every other feature sees (decode, :func:`segment_audio`, loudness),
    made into the ear's input by :func:`shared.core.audio.audioset_input.audioset_segments`.

    Parameters
    ----------
    cache_dir : path-like or None
        Root of the cache (``<cache_dir>/audioset/<key>/``); ``None`` computes every time.
    config : FeatureConfig
        Segment length, sample rate and loudness.
    weights : str
        Name of the network (``mn04_as``), part of the key.
    """

    family = "audioset"
    output_names = ("embedding", "logits")

    def __init__(
        self, cache_dir: str | Path | None, config: FeatureConfig, *, weights: str = "mn04_as"
    ) -> None:
        super().__init__(cache_dir, config, weights=weights)

    def compute(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Return ``{"embedding": (n, 384), "logits": (n, 527)}`` for decoded audio ``y``."""
        from shared.core.audio.audioset_input import audioset_segments
        from shared.core.nets.audioset import get_ear

        return get_ear().outputs(audioset_segments(y, config=self.config))
