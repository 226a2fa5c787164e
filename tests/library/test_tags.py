"""Genre tags written with mutagen: each format's own field, and the audio left untouched."""

from __future__ import annotations

import subprocess

import pytest

from shared.core.audio.audio import ffmpeg_executable
from shared.library.tags import Untaggable, read_genres, write_genres

TAGGED = [".mp3", ".flac", ".ogg", ".m4a"]


def decoded_pcm(path) -> bytes:
    """Decode every audio sample of ``path`` at its own rate and channels (float32)."""
    command = [ffmpeg_executable(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a",
               "-f", "f32le", "pipe:1"]  # fmt: skip
    return subprocess.run(command, capture_output=True, check=True, timeout=60).stdout


@pytest.mark.parametrize("ext", TAGGED)
def test_the_genre_is_written_and_the_decoded_audio_is_bit_identical(make_audio, ext):
    song = make_audio("metal", seconds=4.0, ext=ext)
    before = decoded_pcm(song)
    assert len(before) > 4 * 22_050 * 4 * 0.9
    assert read_genres(song) == []
    write_genres(song, ["metal"])
    assert read_genres(song) == ["metal"]
    write_genres(song, ["Jazz", "Blues"])
    assert read_genres(song) == ["Jazz", "Blues"]
    write_genres(song, [])
    assert read_genres(song) == []
    assert decoded_pcm(song) == before


def test_each_format_keeps_the_genre_in_its_own_field(make_audio):
    import mutagen

    fields = {".mp3": "TCON", ".flac": "genre", ".ogg": "genre", ".m4a": "\xa9gen"}
    for ext, field in fields.items():
        song = make_audio("disco", seconds=4.0, ext=ext)
        write_genres(song, ["disco"])
        tags = mutagen.File(song).tags
        assert field in tags, (ext, tags.keys())
        values = tags[field].text if ext == ".mp3" else list(tags[field])
        assert values == ["disco"], ext


def test_other_files_are_untaggable_with_the_reason(make_audio, tmp_path):
    with pytest.raises(Untaggable, match="cannot tag WAVE files"):
        read_genres(make_audio(seconds=4.0, ext=".wav"))
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(Untaggable):
        write_genres(junk, ["rock"])
