"""A model's inputs for a set of tracks: MFCC rows, the pretrained embeddings, augmented copies.

Training, validation and test all read a track's inputs the same way: its MFCC segments
(normalised per song when the feature config says ``cmvn``), the musicnn embedding of each
segment and, for a model that reads it, the AudioSet network's. Augmented copies of a track
(half-segment shifts, channel copies) add MFCC rows only: each copy's segment reads the
pretrained embeddings of the original's segment at the same index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.core.audio.features import FeatureConfig, normalise_cepstra
from shared.core.learning.dataset import Track


def load_embeddings(
    tracks: Sequence[Track],
    caches: Sequence[Any],
    name: str,
    *,
    offset: int = 0,
    progress: Callable[[float], None] | None = None,
    progress_bar: bool = False,
    desc: str = "musicnn",
) -> dict[Track, np.ndarray]:
    """Pretrained embeddings (output ``name`` of each cache's network) of tracks, cached.

    Several networks' embeddings are joined per segment. Uncached, this is the longest step
    before training (a network on every segment), so it shows a bar, as
    :func:`shared.core.learning.dataset.load_features` does, and reports ``progress``.
    """
    from tqdm import tqdm

    result = {}
    bar = tqdm(tracks, desc=desc, unit="track", disable=not progress_bar)
    for i, track in enumerate(bar):
        parts = [cache.embeddings(track.path, offset=offset)[name] for cache in caches]
        result[track] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        if progress:
            progress((i + 1) / len(tracks))
    return result


@dataclass
class TrackInputs:
    """Every track's cached inputs, and how to stack them for Keras.

    Attributes
    ----------
    config : FeatureConfig
        The model's feature config (``cmvn`` decides the MFCCs' normalisation).
    mfcc : dict
        Track → MFCC segments ``(n, n_frames, n_features)`` as cached.
    musicnn : dict
        Track → musicnn embedding per segment; empty for an MFCC-only model.
    audioset : dict
        Track → AudioSet embedding per segment; empty unless ``config.audioset``.
    """

    config: FeatureConfig
    mfcc: dict[Track, np.ndarray]
    musicnn: dict[Track, np.ndarray] = field(default_factory=dict)
    audioset: dict[Track, np.ndarray] = field(default_factory=dict)

    def _mfcc(self, segments: np.ndarray) -> np.ndarray:
        return normalise_cepstra(segments) if self.config.cmvn else segments

    def song(self, track: Track) -> np.ndarray | list[np.ndarray]:
        """One track's inputs, as a Keras model of this config takes them."""
        return self.stack([track])[0]

    def stack(
        self,
        tracks: Sequence[Track],
        copies: Sequence[dict[Track, np.ndarray]] = (),
    ) -> tuple[np.ndarray | list[np.ndarray], list[Track]]:
        """Stack the inputs of ``tracks`` (then of their augmented ``copies``).

        Returns
        -------
        inputs : np.ndarray or list of np.ndarray
            The MFCC rows alone for an MFCC-only model, else ``[mfcc, musicnn (, audioset)]``.
        owners : list of Track
            The track each row belongs to (for labels).
        """
        mfcc, owners, rows = [], [], []
        for track in tracks:
            mfcc.append(self._mfcc(self.mfcc[track]))
            owners += [track] * len(mfcc[-1])
            rows.append((track, np.arange(len(mfcc[-1]))))
        for copy in copies:
            for track in tracks:
                if track not in copy:
                    continue
                mfcc.append(self._mfcc(copy[track]))
                owners += [track] * len(mfcc[-1])
                last = len(self.mfcc[track]) - 1
                rows.append((track, np.minimum(np.arange(len(mfcc[-1])), last)))
        x = np.concatenate(mfcc)
        if not self.musicnn:
            return x, owners
        inputs = [x, np.concatenate([self.musicnn[t][r] for t, r in rows])]
        if self.config.audioset:
            inputs.append(np.concatenate([self.audioset[t][r] for t, r in rows]))
        return inputs, owners

    def labels(self, owners: Sequence[Track], genres: list[str]) -> np.ndarray:
        """One-hot genre rows for :meth:`stack`'s ``owners``."""
        index = {genre: i for i, genre in enumerate(genres)}
        return np.eye(len(genres), dtype=np.float32)[[index[t.genre] for t in owners]]
