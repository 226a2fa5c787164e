"""Finding songs under folders, and the content hash that makes a run resumable."""

from __future__ import annotations

import hashlib

from shared.library.files import content_hash, find_audio_files


def test_folders_are_walked_recursively_for_audio_only(tmp_path):
    for name in ["b/deep/one.MP3", "b/two.flac", "a.ogg", "b/notes.txt", "b/.hidden.mp3",
                 ".cache/three.wav", "b/cover.jpg"]:  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = find_audio_files([tmp_path])
    assert found == [tmp_path / "a.ogg", tmp_path / "b/deep/one.MP3", tmp_path / "b/two.flac"]


def test_named_files_are_kept_whatever_their_extension_and_each_file_once(tmp_path):
    song = tmp_path / "song.mp3"
    song.write_bytes(b"x")
    named = tmp_path / "recording.bin"
    named.write_bytes(b"x")
    missing = tmp_path / "gone.mp3"
    assert find_audio_files([named, tmp_path, song, missing]) == [named, song, missing]


def test_content_hash_is_the_sha256_of_the_bytes(tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "song.wav"
    path.write_bytes(data)
    assert content_hash(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data + b"\x00")
    assert content_hash(path) != hashlib.sha256(data).hexdigest()
