"""Synthetic "genres" of generated sound, for demos and tests.

These are NOT music and say nothing about accuracy on real songs. They are clearly different
sounds — sustained chords, a four-on-the-floor beat, distorted power chords, off-beat stabs —
so that the whole train → vote → predict path can be exercised on any machine without
downloading a data set. Names follow GTZAN genres only so they fit the product's vocabulary.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from shared.core.audio.audio import SAMPLE_RATE, ffmpeg_executable

DEMO_GENRES: tuple[str, ...] = ("classical", "disco", "metal", "reggae")

# ffmpeg encoder for each extension the helpers can write.
_ENCODERS: dict[str, list[str]] = {
    ".wav": ["-f", "wav", "-c:a", "pcm_s16le"],
    ".au": ["-f", "au", "-c:a", "pcm_s16be"],
    ".flac": ["-f", "flac", "-c:a", "flac"],
    ".mp3": ["-f", "mp3", "-c:a", "libmp3lame", "-b:a", "128k"],
    ".ogg": ["-f", "ogg", "-c:a", "libvorbis", "-q:a", "4"],
    ".m4a": ["-f", "ipod", "-c:a", "aac", "-b:a", "128k"],
}


def _tone(freq: np.ndarray | float, t: np.ndarray, *, harmonics: int = 1) -> np.ndarray:
    out = np.zeros_like(t)
    for k in range(1, harmonics + 1):
        out += np.sin(2 * np.pi * k * np.asarray(freq) * t) / k
    return out


def _hits(t: np.ndarray, period_s: float, offset_s: float, decay_s: float) -> np.ndarray:
    """Exponential envelopes starting every ``period_s`` seconds from ``offset_s``."""
    phase = np.mod(t - offset_s, period_s)
    return np.where(t >= offset_s, np.exp(-phase / decay_s), 0.0)


def _classical(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    root = rng.uniform(196, 330)
    chord_s = rng.uniform(2.5, 4.0)
    ratios = [(1, 5 / 4, 3 / 2), (4 / 3, 5 / 3, 2), (3 / 2, 15 / 8, 9 / 4), (1, 6 / 5, 3 / 2)]
    out = np.zeros_like(t)
    index = (t // chord_s).astype(int) % len(ratios)
    swell = 0.6 + 0.4 * np.sin(np.pi * np.mod(t, chord_s) / chord_s)
    for which, chord in enumerate(ratios):
        mask = index == which
        for ratio in chord:
            vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t[mask])
            out[mask] += _tone(root * ratio * vibrato, t[mask], harmonics=3)
    return 0.25 * out * swell


def _disco(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    beat = 60 / rng.uniform(112, 128)
    kick = _hits(t, beat, 0, 0.08) * np.sin(2 * np.pi * 55 * t)
    hat = _hits(t, beat, beat / 2, 0.02) * rng.standard_normal(t.size)
    bass_freq = rng.uniform(70, 98) * np.where(np.mod(t, 4 * beat) < 2 * beat, 1.0, 1.5)
    bass = 0.4 * _tone(bass_freq, t, harmonics=2) * _hits(t, beat / 2, 0, 0.15)
    return 0.9 * kick + 0.25 * hat + bass


def _metal(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    root = rng.uniform(82, 123)
    riff = root * np.array([1, 1, 4 / 3, 6 / 5])[(t // rng.uniform(0.3, 0.5)).astype(int) % 4]
    saw = 2 * np.mod(riff * t, 1.0) - 1 + 2 * np.mod(1.5 * riff * t, 1.0) - 1
    guitar = np.tanh(6 * saw)
    drums = _hits(t, 60 / rng.uniform(170, 200) / 2, 0, 0.03) * rng.standard_normal(t.size)
    return 0.35 * guitar + 0.3 * drums


def _reggae(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    beat = 60 / rng.uniform(70, 82)
    root = rng.uniform(220, 294)
    stab = _hits(t, beat, beat / 2, 0.06) * _tone(root, t, harmonics=2)
    stab += _hits(t, beat, beat / 2, 0.06) * _tone(root * 5 / 4, t, harmonics=2)
    bass = 0.6 * _hits(t, 2 * beat, 0, 0.5) * np.sin(2 * np.pi * root / 4 * t)
    rim = 0.3 * _hits(t, 2 * beat, beat, 0.01) * rng.standard_normal(t.size)
    return 0.35 * stab + bass + rim


_STYLES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "classical": _classical,
    "disco": _disco,
    "metal": _metal,
    "reggae": _reggae,
}


def synth_track(style: str, *, seconds: float, sr: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Generate one synthetic track.

    Parameters
    ----------
    style : {"classical", "disco", "metal", "reggae"}
        Which kind of sound to make.
    seconds : float > 0
        Duration.
    sr : int > 0
        Sample rate in Hz.
    seed : int
        Varies key, tempo and noise; equal seeds give equal tracks.

    Returns
    -------
    np.ndarray, shape (round(seconds * sr),), float32 in [-1, 1]
    """
    if style not in _STYLES:
        raise ValueError(f"Unknown style {style!r}; choose from {', '.join(_STYLES)}.")
    rng = np.random.default_rng([seed, list(_STYLES).index(style)])
    t = np.arange(round(seconds * sr)) / sr
    y = _STYLES[style](t, rng) + 0.01 * rng.standard_normal(t.size)
    peak = np.max(np.abs(y)) or 1.0
    return (0.8 * y / peak).astype(np.float32)


def write_audio(path: str | Path, y: np.ndarray, *, sr: int = SAMPLE_RATE) -> Path:
    """Encode mono float samples to ``path``; the extension picks the format.

    Parameters
    ----------
    path : path-like
        Destination ending in .wav, .au, .flac, .mp3, .ogg or .m4a.
    y : np.ndarray, shape (n_samples,)
        Samples in [-1, 1].
    sr : int > 0
        Sample rate of ``y`` in Hz.
    """
    path = Path(path)
    encoder = _ENCODERS.get(path.suffix.lower())
    if encoder is None:
        raise ValueError(f"Cannot write {path.suffix!r}; use one of {', '.join(_ENCODERS)}.")
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        ffmpeg_executable(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "s16le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0", *encoder, str(path),
    ]  # fmt: skip
    subprocess.run(command, input=pcm, check=True, capture_output=True, timeout=120)
    return path


def write_demo_dataset(
    root: str | Path,
    *,
    genres: Sequence[str] = DEMO_GENRES,
    tracks_per_genre: int = 10,
    seconds: float = 30.0,
    ext: str = ".wav",
    seed: int = 0,
) -> list[Path]:
    """Write a GTZAN-layout folder ``<root>/<genre>/<genre>.000NN<ext>`` of synthetic tracks.

    Returns
    -------
    list of Path
        The files written, genre by genre.
    """
    root = Path(root)
    written = []
    for genre in genres:
        for number in range(tracks_per_genre):
            y = synth_track(genre, seconds=seconds, seed=seed * 1000 + number)
            written.append(write_audio(root / genre / f"{genre}.{number:05d}{ext}", y))
    return written
