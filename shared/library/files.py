"""Find the songs under files and folders, and fingerprint each song's bytes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from shared.core.audio.audio import SUPPORTED_EXTENSIONS


def find_audio_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders into the audio files to classify.

    A file given by name is kept whatever its extension (the decoder says whether it is audio);
    a folder is walked recursively for files with an extension genreflow reads
    (:data:`shared.core.audio.audio.SUPPORTED_EXTENSIONS`), hidden files and folders left out.
    Each file appears once, in the order given, a folder's files sorted by path.

    Parameters
    ----------
    paths : iterable of path-like
        Files and folders, as the user named them.

    Returns
    -------
    list of Path
    """
    found: dict[Path, None] = {}
    for given in map(Path, paths):
        if not given.is_dir():
            found.setdefault(given)
            continue
        inside = []
        for root, folders, names in os.walk(given):
            folders[:] = [name for name in folders if not name.startswith(".")]
            inside.extend(
                Path(root, name)
                for name in names
                if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_EXTENSIONS
            )
        for path in sorted(inside):
            found.setdefault(path)
    return list(found)


def content_hash(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of a file's bytes (tags included)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
