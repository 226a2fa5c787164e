"""Decode any common audio file to float32 mono samples at the model's sample rate.

The ffmpeg binary comes from the ``imageio-ffmpeg`` wheel, so a fresh machine needs no system
ffmpeg. ffmpeg decodes, down-mixes and resamples in one pass and streams 16-bit PCM to a pipe;
pydub wraps that PCM as an ``AudioSegment`` (its own ``from_file`` would need ``ffprobe``, which
the wheel does not ship). Nothing is written to disk.

This module imports only light modules at import time: the web process uses it for
:data:`SUPPORTED_EXTENSIONS` and must not pay for numpy-heavy or TensorFlow imports.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from shared.errors import AudioTooLong, AudioTooShort, EmptyAudio, InvalidAudio

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 22_050
MIN_DURATION_S = 3.0
MAX_DURATION_S = 30 * 60.0
DECODE_TIMEOUT_S = 300
PIPE_READ_BYTES = 1 << 16
PIPE_BUFFER_BYTES = 1 << 20
WHOLE_FILE_BLOCK_BYTES = 1 << 30

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp3", ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".au", ".snd",
        ".m4a", ".mp4", ".aac", ".aif", ".aiff", ".aifc", ".wma", ".webm", ".mka",
    }
)  # fmt: skip


@cache
def ffmpeg_executable() -> str:
    """Return the path of the ffmpeg binary shipped by the ``imageio-ffmpeg`` wheel."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@cache
def _pydub_audio_segment() -> type:
    """Import pydub's ``AudioSegment`` pointed at the wheel's ffmpeg.

    pydub warns at import when no ffmpeg is on PATH; ours is not on PATH by design.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg_executable()
    return AudioSegment


def decode_audio(
    path: str | os.PathLike[str],
    *,
    sr: int = SAMPLE_RATE,
    min_duration_s: float = MIN_DURATION_S,
    max_duration_s: float = MAX_DURATION_S,
    name: str | None = None,
) -> np.ndarray:
    """Decode an audio file to mono float32 samples at ``sr``.

    Parameters
    ----------
    path : path-like
        Any file ffmpeg can read (mp3, wav, flac, ogg, au, m4a, ...).
    sr : int > 0
        Target sample rate in Hz.
    min_duration_s : float >= 0
        Shortest accepted duration, in seconds (one 3-s segment by default).
    max_duration_s : float > 0
        Longest accepted duration, in seconds. Decoding stops just past it, so an over-long
        file costs little.
    name : str, optional
        How error messages name the file (e.g. the user's upload name); its file name if unset.

    Returns
    -------
    np.ndarray, shape (n_samples,), float32 in [-1, 1]

    Raises
    ------
    EmptyAudio
        The file has no bytes or decodes to no samples.
    InvalidAudio
        ffmpeg cannot read it as audio.
    AudioTooShort, AudioTooLong
        Its duration is outside ``[min_duration_s, max_duration_s]``.
    """
    pcm = b"".join(
        _pcm_blocks(
            Path(path),
            sr=sr,
            block_bytes=WHOLE_FILE_BLOCK_BYTES,
            min_duration_s=min_duration_s,
            max_duration_s=max_duration_s,
            name=name,
        )
    )
    segment = _pydub_audio_segment()(data=pcm, sample_width=2, frame_rate=sr, channels=1)
    return _to_float(segment.raw_data)


def stream_audio(
    path: str | os.PathLike[str],
    *,
    block_samples: int,
    sr: int = SAMPLE_RATE,
    min_duration_s: float = MIN_DURATION_S,
    max_duration_s: float = MAX_DURATION_S,
    name: str | None = None,
) -> Iterator[np.ndarray]:
    """Decode like :func:`decode_audio`, yielding blocks while ffmpeg is still decoding.

    ffmpeg runs in its own process, so the caller can compute on one block while the next is
    being decoded. Every block holds ``block_samples`` samples except the last, which may be
    shorter. The duration checks of :func:`decode_audio` apply: an over-long file fails as
    soon as it passes the limit, a too-short one before any block is yielded.
    """
    blocks = _pcm_blocks(
        Path(path),
        sr=sr,
        block_bytes=2 * block_samples,
        min_duration_s=min_duration_s,
        max_duration_s=max_duration_s,
        name=name,
    )
    for block in blocks:
        yield _to_float(block)


def _to_float(pcm: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def _pcm_blocks(
    path: Path,
    *,
    sr: int,
    block_bytes: int,
    min_duration_s: float,
    max_duration_s: float,
    name: str | None,
) -> Iterator[bytes]:
    """Yield mono 16-bit little-endian PCM of ``path`` at ``sr`` Hz in blocks of ``block_bytes``.

    A thread drains ffmpeg's pipe as fast as ffmpeg writes, so decoding never waits for the
    consumer of the blocks.
    """
    label = name or path.name
    if not path.is_file():
        raise InvalidAudio(f"{label}: no such file.")
    if path.stat().st_size == 0:
        raise EmptyAudio(f"{label} is empty (0 bytes).")
    command = [
        ffmpeg_executable(),
        "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", str(path),
        "-t", f"{max_duration_s + 1.0:.3f}",
        "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", str(sr),
        "-f", "s16le", "-acodec", "pcm_s16le",
        "pipe:1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _widen_pipe(process.stdout)
    chunks: queue.Queue[bytes | None] = queue.Queue()

    def drain() -> None:
        assert process.stdout is not None
        for chunk in iter(lambda: process.stdout.read1(PIPE_READ_BYTES), b""):
            chunks.put(chunk)
        chunks.put(None)

    reader = threading.Thread(target=drain, name="ffmpeg-reader", daemon=True)
    reader.start()
    limit_bytes = 2 * round(max_duration_s * sr)
    pending = bytearray()
    total = 0
    try:
        while (chunk := _next_chunk(chunks, label)) is not None:
            pending += chunk
            total += len(chunk)
            if total > limit_bytes:
                raise AudioTooLong(
                    f"{label} is longer than the {_minutes(max_duration_s)} limit; "
                    "send a shorter excerpt."
                )
            while total >= 2 * round(min_duration_s * sr) and len(pending) >= block_bytes:
                yield bytes(pending[:block_bytes])
                del pending[:block_bytes]
        stderr = process.stderr.read() if process.stderr else b""
        if process.wait(timeout=DECODE_TIMEOUT_S) != 0:
            raise InvalidAudio(f"{label} is not a readable audio file ({_ffmpeg_reason(stderr)}).")
        if total == 0:
            raise EmptyAudio(f"{label} holds no audio samples.")
        if total < 2 * round(min_duration_s * sr):
            raise AudioTooShort(
                f"{label} lasts {total / 2 / sr:.1f} s; at least {min_duration_s:g} s "
                "(one segment) is needed."
            )
        if pending:
            yield bytes(pending)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        reader.join(timeout=5)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def _widen_pipe(pipe: IO[bytes] | None) -> None:
    """Let ffmpeg run ahead of a busy reader: grow the pipe's buffer to 1 MiB (Linux only)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if pipe is None or set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), set_size, PIPE_BUFFER_BYTES)


def _next_chunk(chunks: queue.Queue[bytes | None], label: str) -> bytes | None:
    try:
        return chunks.get(timeout=DECODE_TIMEOUT_S)
    except queue.Empty as exc:
        raise InvalidAudio(f"{label}: decoding took longer than {DECODE_TIMEOUT_S} s.") from exc


def _ffmpeg_reason(stderr: bytes) -> str:
    """Pick the most telling line of ffmpeg's error output, without the file path."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "ffmpeg could not decode it"
    reason = lines[-1]
    for line in lines:
        if "Invalid data" in line or "does not contain any stream" in line:
            reason = line
            break
    return reason.rsplit(": ", 1)[-1] if ": " in reason else reason


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"
