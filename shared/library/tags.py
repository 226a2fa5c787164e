"""Read and write the genre stored in a song's own tags, with mutagen.

mutagen's "easy" interfaces map one ``genre`` key onto each format's own field: ID3 ``TCON`` in
mp3, the Vorbis comment ``GENRE`` in flac, ogg and opus, ``©gen`` in m4a/mp4. Only the tag is
rewritten; mutagen leaves the audio data as it is (the tests decode before and after).
"""

from __future__ import annotations

import os
from typing import Any

#: The file types whose genre can be written, named for messages.
TAGGABLE_FORMATS = "mp3, flac, ogg, opus, m4a"


class Untaggable(Exception):
    """A file whose genre tag cannot be read or written; ``str(exc)`` says why."""


def _open(path: str | os.PathLike[str]) -> Any:
    import mutagen
    from mutagen.easymp4 import EasyMP4
    from mutagen.flac import FLAC
    from mutagen.mp3 import EasyMP3
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    try:
        audio = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError) as exc:
        raise Untaggable(f"cannot read its tags ({exc})") from exc
    if not isinstance(audio, EasyMP3 | EasyMP4 | FLAC | OggVorbis | OggOpus):
        kind = type(audio).__name__ if audio is not None else "an unknown type"
        raise Untaggable(f"cannot tag {kind} files (only {TAGGABLE_FORMATS})")
    return audio


def read_genres(path: str | os.PathLike[str]) -> list[str]:
    """Return the genres in a song's tags (``[]`` when it has none).

    Raises
    ------
    Untaggable
        Not a file type genreflow tags, or unreadable.
    """
    audio = _open(path)
    tags = audio.tags
    return [str(value) for value in (tags.get("genre") or [])] if tags is not None else []


def write_genres(path: str | os.PathLike[str], genres: list[str]) -> None:
    """Set a song's genres (``[]`` removes the field); nothing else in the file changes.

    Raises
    ------
    Untaggable
        Not a file type genreflow tags, or it cannot be written.
    """
    import mutagen

    audio = _open(path)
    if audio.tags is None:
        if not genres:
            return
        audio.add_tags()
    tags = audio.tags
    if genres:
        tags["genre"] = list(genres)
    elif "genre" in tags:
        del tags["genre"]
    try:
        audio.save()
    except (mutagen.MutagenError, OSError) as exc:
        raise Untaggable(f"cannot write its tags ({exc})") from exc
