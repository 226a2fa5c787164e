"""musicnn embeddings of whole tracks, one row per 3-s segment, cached on disk.

Training a model that reads musicnn beside the MFCCs runs the frozen network once per segment
and keeps the result, so epochs (and every cross-validation fold) train only the small head.
The cache key is the file's content hash, the segment settings, the offset and the weights'
name: a changed file or setting never reads stale embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shared.core.audio.audio import decode_audio
from shared.core.audio.features import FeatureConfig, logmel_segments
from shared.core.learning.dataset import _file_sha256

EMBEDDING_OUTPUTS = ("penultimate", "pool")
BATCH_SIZE = 32


class EmbeddingCache:
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

    def __init__(
        self, cache_dir: str | Path | None, config: FeatureConfig, *, weights: str = "MSD_musicnn"
    ) -> None:
        self.config = config
        key = f"{weights}-{config.sample_rate}-{config.segment_seconds:g}"
        if config.loudness_db is not None:
            key += f"-{config.loudness_db:g}dB"
        self.directory = Path(cache_dir) / "musicnn" / key if cache_dir else None
        self.weights = weights
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

    def embeddings(self, path: Path, *, offset: int = 0) -> dict[str, np.ndarray]:
        """Return ``{"penultimate": (n, 200), "pool": (n, 1506)}`` for an audio file.

        ``offset`` (samples at ``config.sample_rate``) starts the segmentation later, as in
        :meth:`shared.dataset.FeatureCache.features`.
        """
        cached = None
        if self.directory is not None:
            suffix = f"+{offset}" if offset else ""
            cached = self.directory / f"{_file_sha256(path)}{suffix}.npz"
            if cached.is_file():
                with np.load(cached) as data:
                    return {name: data[name] for name in EMBEDDING_OUTPUTS}
        y = decode_audio(
            path,
            sr=self.config.sample_rate,
            min_duration_s=self.config.segment_seconds + offset / self.config.sample_rate,
        )
        result = self.patches_to_embeddings(logmel_segments(y[offset:], config=self.config))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            temporary = cached.with_suffix(".tmp.npz")
            np.savez(temporary, **result)
            temporary.replace(cached)
        return result
