"""Channel augmentation: the same song as another recording chain would have coloured it.

A model that tells a song's source from its MFCCs (a label's mastering EQ, a codec's cut-off)
learns a shortcut that fails on songs from elsewhere. Training copies of each track with a
random EQ tilt, a random gain and a re-encoding at another bitrate show the network the same
genre through other channels. Only the MFCC branch sees these copies: the pretrained
embeddings stay those of the original audio.

Each copy is seeded by the file's content hash and the copy's number, so a rerun makes the
same copies, and :class:`ChannelAugmentedCache` keeps their MFCCs on disk like
:class:`shared.core.learning.dataset.FeatureCache`.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from shared.core.audio.audio import decode_audio, ffmpeg_executable
from shared.core.audio.features import FeatureConfig, mfcc_segments
from shared.core.learning.dataset import FeatureCache, _file_sha256

#: EQ tilt in dB between the bottom and the top of the spectrum, drawn uniformly in ± this.
MAX_TILT_DB = 9.0
#: Gain drawn uniformly in ± this many dB.
MAX_GAIN_DB = 6.0
#: Bitrates (kbit/s) and codecs a copy is re-encoded with, one drawn per copy.
ENCODINGS = (("libmp3lame", 32), ("libmp3lame", 48), ("libmp3lame", 128), ("libvorbis", 64))
ENCODE_TIMEOUT_S = 120


def tilt_eq(y: np.ndarray, *, sr: int, tilt_db: float) -> np.ndarray:
    """Apply a spectral tilt: ``tilt_db`` more gain at the top of the spectrum than at 0 Hz.

    The gain is linear in log-frequency from 50 Hz to ``sr / 2`` (flat below 50 Hz), applied in
    the frequency domain over the whole signal.
    """
    spectrum = np.fft.rfft(y.astype(np.float64))
    freqs = np.fft.rfftfreq(len(y), d=1.0 / sr)
    position = np.clip(np.log(np.maximum(freqs, 50.0) / 50.0) / np.log(sr / 2 / 50.0), 0.0, 1.0)
    gain = 10.0 ** ((position - 0.5) * tilt_db / 20.0)
    return np.fft.irfft(spectrum * gain, n=len(y)).astype(np.float32)


def reencode(y: np.ndarray, *, sr: int, codec: str, kbps: int) -> np.ndarray:
    """Encode ``y`` with ffmpeg's ``codec`` at ``kbps`` and decode it again at ``sr``."""
    pcm = np.clip(y, -1.0, 1.0)
    with tempfile.TemporaryDirectory(prefix="genreflow-augment-") as folder:
        encoded = Path(folder) / ("copy.mp3" if codec == "libmp3lame" else "copy.ogg")
        subprocess.run(
            [
                ffmpeg_executable(),
                *("-hide_banner", "-loglevel", "error", "-y"),
                *("-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0"),
                *("-c:a", codec, "-b:a", f"{kbps}k", str(encoded)),
            ],
            input=pcm.astype("<f4").tobytes(),
            check=True,
            capture_output=True,
            timeout=ENCODE_TIMEOUT_S,
        )
        decoded = decode_audio(encoded, sr=sr)
    # codecs add a little delay and padding: keep the original length
    out = np.zeros_like(pcm)
    out[: min(len(out), len(decoded))] = decoded[: len(out)]
    return out


def channel_copy(y: np.ndarray, *, sr: int, seed: int) -> np.ndarray:
    """Return one augmented copy of ``y``: random EQ tilt, gain and re-encoding."""
    rng = np.random.default_rng(seed)
    tilt = rng.uniform(-MAX_TILT_DB, MAX_TILT_DB)
    gain = 10.0 ** (rng.uniform(-MAX_GAIN_DB, MAX_GAIN_DB) / 20.0)
    codec, kbps = ENCODINGS[rng.integers(len(ENCODINGS))]
    tilted = tilt_eq(y, sr=sr, tilt_db=tilt) * gain
    peak = float(np.max(np.abs(tilted))) if tilted.size else 0.0
    if peak > 1.0:  # keep the copy unclipped: clipping is a colour of its own
        tilted = tilted / peak
    return reencode(tilted, sr=sr, codec=codec, kbps=kbps)


class ChannelAugmentedCache(FeatureCache):
    """MFCCs of a track's ``copy``-th channel-augmented copy, cached like the originals."""

    def __init__(
        self, cache_dir: str | Path | None, config: FeatureConfig, *, copy: int = 1
    ) -> None:
        super().__init__(cache_dir, config)
        self.copy = copy

    def features(self, path: Path, *, offset: int = 0) -> np.ndarray:
        """Return ``(n_segments, n_frames, n_features)`` of the augmented copy, cached."""
        sha = _file_sha256(path)

        def compute() -> np.ndarray:
            sr = self.config.sample_rate
            y = decode_audio(path, sr=sr, min_duration_s=self.config.segment_seconds)
            seed = int(sha[:8], 16) + 7919 * self.copy
            return mfcc_segments(channel_copy(y, sr=sr, seed=seed)[offset:], config=self.config)

        return self.cached(f"{sha}~channel{self.copy}+{offset}", compute)
