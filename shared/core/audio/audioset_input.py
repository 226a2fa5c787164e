"""The AudioSet ear's input: 3-s segments at 32 kHz → EfficientAT's 128-band log-mel, in numpy.

EfficientAT's mn04 (trained on AudioSet) reads a log-mel spectrogram made by its own PyTorch
front end (``AugmentMelSTFT`` in eval mode). This module is that front end in numpy/scipy,
float32, batched over segments, checked against the kit's reference tensors to 1e-4
(``tests/core/test_audioset.py``):

1. pre-emphasis ``x[n] - 0.97 x[n-1]`` (one sample shorter);
2. STFT, n_fft 1024, hop 320, a symmetric Hann of 800 samples centred in the frame,
   ``center=True`` with reflect padding of 512; power ``|X|²``;
3. 128 Kaldi-style mel triangles (``mel = 1127 ln(1 + f/700)``) from 0 to 15 kHz over the first
   512 bins (the 513th gets weight 0), one matrix product;
4. ``log(mel + 1e-5)``, then ``(x + 4.5) / 5``.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from shared.core.audio.features import (
    DEFAULT_FEATURES,
    FeatureConfig,
    normalise_loudness,
    segment_audio,
)

SAMPLE_RATE = 32_000  # the network's sample rate
SEGMENT_SECONDS = 3.0
N_SAMPLES = round(SAMPLE_RATE * SEGMENT_SECONDS)  # 96,000 samples in a 3-s segment
N_FFT = 1024
HOP = 320  # 10 ms
WIN = 800  # 25 ms, a symmetric Hann centred in the 1024-sample frame
N_MELS = 128
FMIN = 0.0
FMAX = 15_000.0  # EfficientAT's default: sr / 2 - 1000
PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5
NORM_SHIFT = 4.5  # (log mel + 4.5) / 5: EfficientAT's "fast normalization"
NORM_SCALE = 5.0
N_FRAMES = 1 + (N_SAMPLES - 1) // HOP  # 300 frames for 3 s (the pre-emphasis drops a sample)
# Segments per front-end step: bounds the frames' and spectra's memory (~2 MB a segment).
FRONT_END_CHUNK = 32


def resample_segments(segments: np.ndarray, sr: int) -> np.ndarray:
    """Resample segments to the network's 32 kHz, each on its own (polyphase filter).

    Parameters
    ----------
    segments : np.ndarray, shape (n_segments, n_samples)
        Mono audio at ``sr``.
    sr : int > 0
        Their sample rate; 22,050 Hz (the pipeline's) resamples by 640/441.

    Returns
    -------
    np.ndarray, shape (n_segments, n_samples * 32000 / sr), float32
    """
    from math import gcd

    from scipy.signal import resample_poly

    segments = np.asarray(segments, dtype=np.float32)
    if sr == SAMPLE_RATE:
        return segments
    divisor = gcd(SAMPLE_RATE, sr)
    up, down = SAMPLE_RATE // divisor, sr // divisor
    return resample_poly(segments, up, down, axis=-1).astype(np.float32, copy=False)


def _mel_scale(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(freq, dtype=np.float64) / 700.0)


@cache
def mel_banks() -> np.ndarray:
    """Return the Kaldi-style mel filter bank, transposed for ``power @ banks``.

    Returns
    -------
    np.ndarray, shape (N_FFT // 2, N_MELS), float32
        Triangles on the mel scale from :data:`FMIN` to :data:`FMAX` over the first 512 FFT
        bins; the 513th bin (Nyquist) has no column here: its weight is 0.
    """
    n_bins = N_FFT // 2
    mel_low, mel_high = _mel_scale(FMIN), _mel_scale(FMAX)
    delta = (mel_high - mel_low) / (N_MELS + 1)
    band = np.arange(N_MELS, dtype=np.float64)[:, None]
    left = mel_low + band * delta
    centre = mel_low + (band + 1.0) * delta
    right = mel_low + (band + 2.0) * delta
    mel = _mel_scale(SAMPLE_RATE / N_FFT * np.arange(n_bins, dtype=np.float64))[None, :]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    banks = np.maximum(0.0, np.minimum(up, down))  # (N_MELS, n_bins)
    banks = np.ascontiguousarray(banks.T, dtype=np.float32)
    banks.flags.writeable = False
    return banks


@cache
def _window() -> np.ndarray:
    from scipy.signal.windows import hann

    window = hann(WIN, sym=True).astype(np.float32)
    window.flags.writeable = False
    return window


def audioset_logmel(y: np.ndarray) -> np.ndarray:
    """Return EfficientAT's log-mel input for segments at 32 kHz.

    Parameters
    ----------
    y : np.ndarray, shape (n_segments, n_samples) or (n_samples,)
        Mono audio at :data:`SAMPLE_RATE`; 96,000 samples (3 s) give 300 frames.

    Returns
    -------
    np.ndarray, shape (n_segments, 1, N_MELS, n_frames), float32
        ``n_frames = 1 + (n_samples - 1) // HOP``; the network's ``logmel`` input.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[None, :]
    n_segments, n_samples = y.shape
    n_frames = 1 + (n_samples - 1) // HOP
    out = np.empty((n_segments, 1, N_MELS, n_frames), dtype=np.float32)
    for start in range(0, n_segments, FRONT_END_CHUNK):
        chunk = y[start : start + FRONT_END_CHUNK]
        out[start : start + len(chunk), 0] = _logmel_chunk(chunk, n_frames)
    return out


def _logmel_chunk(y: np.ndarray, n_frames: int) -> np.ndarray:
    from scipy.fft import rfft

    emphasised = y[:, 1:] - np.float32(PREEMPHASIS) * y[:, :-1]
    padded = np.pad(emphasised, ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    # The window is zero outside its 800 samples in the middle of the 1024-sample frame: take
    # those 800 samples only. Starting the FFT 112 samples later changes the phase, not |X|².
    offset = (N_FFT - WIN) // 2
    frames = np.lib.stride_tricks.sliding_window_view(padded[:, offset:], WIN, axis=-1)
    frames = frames[:, : n_frames * HOP : HOP] * _window()  # (n, n_frames, WIN)
    spectrum = rfft(frames, n=N_FFT, axis=-1, workers=1)[..., : N_FFT // 2]
    power = np.square(spectrum.real) + np.square(spectrum.imag)  # (n, n_frames, 512)
    mel = power.reshape(-1, N_FFT // 2) @ mel_banks()  # one BLAS product for the chunk
    logmel = (np.log(mel + np.float32(LOG_OFFSET)) + np.float32(NORM_SHIFT)) / np.float32(
        NORM_SCALE
    )
    return logmel.reshape(len(y), n_frames, N_MELS).transpose(0, 2, 1)


def audioset_segments(
    y: np.ndarray,
    *,
    config: FeatureConfig = DEFAULT_FEATURES,
    segments: np.ndarray | None = None,
) -> np.ndarray:
    """Return the ear's input for the segments of ``y``, cut as the rest of the pipeline cuts.

    Mirrors :func:`shared.core.audio.features.logmel_segments`: the same segments
    (:func:`~shared.core.audio.features.segment_audio`) and loudness normalisation, each
    segment resampled to 32 kHz on its own.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio at ``config.sample_rate``.
    config : FeatureConfig
        Segment length, sample rate and loudness.
    segments : np.ndarray of int, optional
        Only these segments; all of them by default.

    Returns
    -------
    np.ndarray, shape (n_segments, 1, 128, n_frames), float32
        300 frames for 3-s segments.
    """
    audio = segment_audio(np.asarray(y, dtype=np.float32), config=config)
    if segments is not None:
        audio = audio[np.asarray(segments, dtype=np.int64)]
    n_frames = 1 + (round(config.segment_seconds * SAMPLE_RATE) - 1) // HOP
    if len(audio) == 0:
        return np.zeros((0, 1, N_MELS, n_frames), np.float32)
    audio = normalise_loudness(audio, target_db=config.loudness_db)
    return audioset_logmel(resample_segments(audio, config.sample_rate))
