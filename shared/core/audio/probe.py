"""Check an audio file at the door: ffmpeg reads its header and duration, without decoding it.

The web process runs :func:`probe_audio` on every upload before it answers, so a file that is
not audio (415), is empty, unreadable or shorter than one segment (422), or is longer than the
limit (413) is refused at once, not after a job was queued. It runs the ``imageio-ffmpeg``
wheel's ffmpeg with only an input (``ffmpeg -i FILE``), which prints the container's streams
and duration and stops: about 20 ms for a 3-minute mp3. Nothing heavy is imported: no numpy, no
librosa, no TensorFlow. The worker still checks the decoded audio itself
(:mod:`shared.core.audio.audio`).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shared.core.audio.audio import MAX_DURATION_S, MIN_DURATION_S, _minutes, ffmpeg_executable
from shared.errors import (
    AudioTooLong,
    AudioTooShort,
    EmptyAudio,
    InvalidAudio,
    UnsupportedMediaType,
)

PROBE_TIMEOUT_S: Final = 10.0
#: A file whose bytes cover less than this share of what its header's duration needs at its
#: stream's bit rate was cut short (a truncated mp3 keeps its full-length Xing header).
TRUNCATED_SHARE: Final = 0.5
#: How the first bytes of audio files start. A file ffmpeg cannot open that starts like none of
#: them is not audio (415); one that does is damaged audio (422).
AUDIO_SIGNATURES: Final = (
    b"ID3", b"RIFF", b"fLaC", b"OggS", b"FORM", b".snd", b"MAC ", b"wvpk", b"#!AMR",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF (wma)
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
)  # fmt: skip

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_AUDIO_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: Audio: (.*)$", re.M)
_BITRATE = re.compile(r"(\d+) kb/s")


@dataclass(frozen=True)
class AudioProbe:
    """What the header says: duration in seconds (``None`` if unknown) and the audio bit rate."""

    duration_s: float | None
    bitrate_kbps: int | None
    size_bytes: int


def probe_audio(
    path: str | os.PathLike[str],
    *,
    min_duration_s: float = MIN_DURATION_S,
    max_duration_s: float = MAX_DURATION_S,
    name: str | None = None,
) -> AudioProbe:
    """Read an audio file's header and check it could be classified.

    Parameters
    ----------
    path : path-like
        The file (its extension helps ffmpeg guess the format).
    min_duration_s, max_duration_s : float
        Accepted duration range in seconds.
    name : str, optional
        How error messages name the file (the user's upload name).

    Returns
    -------
    AudioProbe
        A duration of ``None`` means the header does not tell; the worker decides then.

    Raises
    ------
    EmptyAudio
        The file has no bytes.
    UnsupportedMediaType
        ffmpeg finds no audio in it and its bytes start like no audio format (415).
    InvalidAudio
        It starts like audio but ffmpeg cannot read it (422).
    AudioTooShort
        Shorter than ``min_duration_s``, counting only the bytes that are there (422).
    AudioTooLong
        Longer than ``max_duration_s`` (413).
    """
    path = Path(path)
    label = name or path.name
    size = path.stat().st_size
    if size == 0:
        raise EmptyAudio(f"{label} is empty (0 bytes).")
    command = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-i", str(path)]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidAudio(f"{label}: reading its header took longer than 10 s.") from exc
    report = done.stderr.decode(errors="replace")
    streams = _AUDIO_STREAM.findall(report)
    if "Input #0" not in report or not streams:
        with path.open("rb") as file:
            head = file.read(16)
        if _starts_like_audio(head):
            raise InvalidAudio(f"{label} is damaged: ffmpeg cannot read its audio.")
        raise UnsupportedMediaType(
            f"{label} is not an audio file (ffmpeg finds no audio in it); send mp3, wav, "
            "flac, ogg, au or m4a."
        )
    bitrate_match = _BITRATE.search(streams[0])
    bitrate = int(bitrate_match.group(1)) if bitrate_match else None
    duration = _duration(report)
    if duration is not None and bitrate:
        present_s = size * 8 / (bitrate * 1000)  # what the bytes hold at the stream's bit rate
        if present_s < TRUNCATED_SHARE * duration:
            duration = present_s
    if duration is not None and duration < min_duration_s:
        raise AudioTooShort(
            f"{label} lasts {duration:.1f} s; at least {min_duration_s:g} s (one segment) "
            "is needed."
        )
    if duration is not None and duration > max_duration_s:
        raise AudioTooLong(
            f"{label} lasts {duration / 60:.1f} minutes, longer than the "
            f"{_minutes(max_duration_s)} limit; send a shorter excerpt."
        )
    return AudioProbe(duration_s=duration, bitrate_kbps=bitrate, size_bytes=size)


def _duration(report: str) -> float | None:
    match = _DURATION.search(report)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _starts_like_audio(head: bytes) -> bool:
    if head.startswith(AUDIO_SIGNATURES) or head[4:8] == b"ftyp":  # mp4 / m4a
        return True
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # MPEG / ADTS frames
