"""Checking and storing uploaded songs.

Uploads are stored content-addressed: ``<upload_dir>/<sha256><ext>``, written to a temporary file
in the same folder, fsynced, then renamed, so a stored file is always complete and identical
bytes are stored once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO
from urllib.parse import urlsplit

from shared.core.audio.audio import SUPPORTED_EXTENSIONS  # the one list of what the decoder accepts
from shared.errors import UploadTooLarge
from shared.store.disk import is_disk_full, storage_full_error

CHUNK_BYTES = 1024 * 1024
MAX_FILENAME_CHARS = 255
MAX_URL_CHARS = 2048

#: Declared types a browser or client may send for a real audio file.
AUDIO_MIMETYPE_PREFIXES = ("audio/", "video/")
NEUTRAL_MIMETYPES = frozenset(
    {"", "application/octet-stream", "application/ogg", "binary/octet-stream"}
)
#: Where a filename has no extension, the declared type decides it.
EXTENSION_BY_MIMETYPE = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/ogg": ".ogg",
    "audio/basic": ".au",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
}
#: Leading bytes of common files that are certainly not audio.
NON_AUDIO_SIGNATURES = (
    b"\x89PNG",
    b"\xff\xd8\xff",  # JPEG
    b"GIF8",
    b"%PDF",
    b"PK\x03\x04",  # zip, docx, jar
    b"\x7fELF",
    b"MZ",  # Windows executables
    b"<!DOCTYPE",
    b"<!doctype",
    b"<html",
    b"<?xml",
    b"{",
    b"[",
)


@dataclass(frozen=True)
class StoredUpload:
    """A stored upload: where it lives, its SHA-256 and its size in bytes."""

    path: Path
    sha256: str
    size_bytes: int


def clean_filename(raw: str | None) -> str:
    """Return the last path component of a client's filename, trimmed to 255 characters."""
    name = (raw or "").strip()
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = "".join(ch for ch in name if ch.isprintable())
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + dot + ext if dot else name[:255]
    return name


def audio_extension(filename: str, mimetype: str | None) -> str | None:
    """Return the upload's audio extension (``.mp3``...), or ``None`` if it is not audio.

    The extension must be one :data:`SUPPORTED_EXTENSIONS` lists; a declared content type that is
    plainly something else (``text/*``, ``image/*``, ``application/pdf``) is refused too.
    """
    mimetype = (mimetype or "").split(";")[0].strip().lower()
    if (
        mimetype
        and not mimetype.startswith(AUDIO_MIMETYPE_PREFIXES)
        and (mimetype not in NEUTRAL_MIMETYPES)
    ):
        return None
    suffix = Path(filename).suffix.lower()
    if not suffix:
        suffix = EXTENSION_BY_MIMETYPE.get(mimetype, "")
    return suffix if suffix in SUPPORTED_EXTENSIONS else None


def looks_like_non_audio(head: bytes) -> bool:
    """Return whether the first bytes of a file identify it as a known non-audio format."""
    stripped = head.lstrip()
    return any(stripped.startswith(sig) for sig in NON_AUDIO_SIGNATURES)


def valid_webhook_url(url: str) -> bool:
    """Return whether ``url`` is an absolute ``http``/``https`` URL with a host."""
    if not url or len(url) > MAX_URL_CHARS or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and port_ok


def store_upload(
    stream: BinaryIO,
    upload_dir: Path,
    extension: str,
    *,
    max_bytes: int,
    check: Callable[[Path], object] | None = None,
) -> StoredUpload:
    """Copy ``stream`` into ``upload_dir`` under its SHA-256, durably.

    Parameters
    ----------
    stream : binary file
        The upload, read in 1 MiB chunks.
    upload_dir : Path
        Created when missing.
    extension : str
        Kept on the stored name (``<sha256><extension>``) so decoders can use it.
    max_bytes : int > 0
        Larger streams raise :class:`~shared.errors.UploadTooLarge` and leave nothing behind.
    check : callable(path), optional
        Run on the complete temporary file before it takes its final name (the audio probe);
        whatever it raises propagates and leaves nothing behind.

    Returns
    -------
    StoredUpload

    Raises
    ------
    InsufficientStorage
        The disk filled up while writing (``ENOSPC``); the partial file is removed.
    """
    try:
        return _store(stream, upload_dir, extension, max_bytes=max_bytes, check=check)
    except OSError as exc:
        if is_disk_full(exc):
            raise storage_full_error("storing the upload") from exc
        raise


def _store(
    stream: BinaryIO,
    upload_dir: Path,
    extension: str,
    *,
    max_bytes: int,
    check: Callable[[Path], object] | None,
) -> StoredUpload:
    upload_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=upload_dir, prefix=".upload-", suffix=extension)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge.over_limit(f"{max_bytes / 2**20:g}")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if check is not None:
            check(tmp)
        final = upload_dir / f"{digest.hexdigest()}{extension}"
        os.replace(tmp, final)
        _fsync_dir(upload_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StoredUpload(path=final, sha256=digest.hexdigest(), size_bytes=size)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
