"""``genreflow predict`` and ``genreflow tag`` on folders, run as a user runs them."""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import pytest

from shared.core.learning.demo_data import synth_track, write_audio
from shared.core.nets.audioset import music_genres
from shared.library.tags import read_genres, write_genres
from tests.cli.test_commands import genreflow
from tests.conftest import TINY_GENRES

pytestmark = pytest.mark.slow


@pytest.fixture
def library(tmp_path: Path) -> dict[str, Path]:
    """Write a small folder tree: four songs in four formats, a broken mp3 and a text file."""
    root = tmp_path / "library"
    songs = {
        "wav": root / "a" / "one.wav",
        "mp3": root / "a" / "deeper" / "two.mp3",
        "flac": root / "three.flac",
        "ogg": root / "b" / "four.ogg",
    }
    for seed, (style, path) in enumerate(zip(TINY_GENRES * 2, songs.values(), strict=False)):
        write_audio(path, synth_track(style, seconds=6.0, seed=seed))
    songs["broken"] = root / "b" / "broken.mp3"
    songs["broken"].write_bytes(b"ID3" + bytes(range(256)) * 20)
    (root / "notes.txt").write_text("not a song")
    return songs


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_folder_run_writes_every_song_reports_the_broken_one_and_resumes(
    tmp_path, library, tiny_model_path
):
    out = tmp_path / "out.csv"
    args = ("predict", str(tmp_path / "library"), "--model", str(tiny_model_path),
            "--jobs", "2", "--output", str(out))  # fmt: skip
    first = genreflow(*args, home=tmp_path, check=False)
    assert first.returncode == 1, first.stderr  # one song failed; the others went on
    rows = {Path(row["path"]).name: row for row in read_csv(out)}
    assert set(rows) == {"one.wav", "two.mp3", "three.flac", "four.ogg", "broken.mp3"}
    for name in ("one.wav", "two.mp3", "three.flac", "four.ogg"):
        assert rows[name]["genre"] in TINY_GENRES, rows[name]
        assert rows[name]["model"] == tiny_model_path.stem
        assert 0 < float(rows[name]["confidence"]) <= 1
        assert rows[name]["uncertain"] in ("true", "false")
        assert rows[name]["error"] == ""
    assert "not a readable audio file" in rows["broken.mp3"]["error"]
    assert rows["broken.mp3"]["genre"] == ""
    assert "5 song(s): 4 classified, 1 failed" in first.stdout
    assert f"error: {library['broken']} is not a readable audio file" in first.stderr
    assert "song/s" not in first.stderr  # no progress bar when stderr is not a terminal

    again = genreflow(*args, home=tmp_path, check=False)
    assert "skipped 4 song(s) already in" in again.stdout
    assert "1 song(s): 0 classified, 1 failed" in again.stdout
    rerun = read_csv(out)
    assert len(rerun) == 5  # the broken song was tried again, its old row replaced
    assert {row["path"]: row for row in rerun} == {row["path"]: row for row in rows.values()}

    write_audio(library["wav"], synth_track("metal", seconds=6.0, seed=99))  # new bytes
    third = genreflow(*args, home=tmp_path, check=False)
    assert "skipped 3 song(s)" in third.stdout
    assert "2 song(s): 1 classified, 1 failed" in third.stdout


def test_json_lines_output_and_json_on_stdout(tmp_path, library, tiny_model_path):
    out = tmp_path / "out.jsonl"
    genreflow("predict", str(library["flac"]), str(library["mp3"]), "--model",
              str(tiny_model_path), "--jobs", "1", "-o", str(out), home=tmp_path)  # fmt: skip
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(line["path"]).name for line in lines] == ["three.flac", "two.mp3"]
    assert all(line["error"] == "" for line in lines)
    for line in lines:  # AudioSet's words beside the model's answer
        assert [item["name"] for item in line["sounds_like"]]
        assert {item["name"] for item in line["sounds_like"]} <= set(music_genres())

    shown = genreflow("predict", "--json", str(library["flac"]), str(library["broken"]),
                      "--model", str(tiny_model_path), home=tmp_path, check=False)  # fmt: skip
    printed = {Path(line["file"]).name: line for line in map(json.loads, shown.stdout.splitlines())}
    assert set(printed["three.flac"]["probabilities"]) == set(TINY_GENRES)  # in finishing order
    assert "not a readable audio file" in printed["broken.mp3"]["error"]["detail"]
    assert "2 song(s): 1 classified, 1 failed" in shown.stderr  # the summary stays off stdout


def test_tag_writes_genres_dry_run_changes_nothing_and_undo_restores(
    tmp_path, library, tiny_model_path
):
    write_genres(library["flac"], ["Polka"])
    before = {name: path.read_bytes() for name, path in library.items()}
    dry = genreflow("tag", str(tmp_path / "library"), "--model", str(tiny_model_path),
                    "--include-uncertain", "--dry-run", home=tmp_path)  # fmt: skip
    assert "dry run: would tag 3 song(s), skip 2" in dry.stdout
    assert f"{library['flac']}: Polka → " in dry.stdout
    assert {name: path.read_bytes() for name, path in library.items()} == before

    undo = tmp_path / "undo.jsonl"
    done = genreflow("tag", str(tmp_path / "library"), "--model", str(tiny_model_path),
                     "--include-uncertain", "--undo-file", str(undo), home=tmp_path)  # fmt: skip
    assert "tagged 3 song(s), skipped 2, failed 0" in done.stdout
    assert "cannot tag WAVE files" in done.stderr
    for name in ("mp3", "flac", "ogg"):
        assert read_genres(library[name])[0] in TINY_GENRES
    refused = genreflow("tag", str(library["mp3"]), "--undo-file", str(undo),
                        home=tmp_path, check=False)  # fmt: skip
    assert refused.returncode == 2
    assert "exists; name a new undo file" in refused.stderr

    restored = genreflow("tag", "--undo", str(undo), home=tmp_path)
    assert "restored 3 song(s), left 0 alone" in restored.stdout
    assert read_genres(library["flac"]) == ["Polka"]
    assert read_genres(library["mp3"]) == read_genres(library["ogg"]) == []


def test_tag_from_a_predict_output_skips_unsure_answers_unless_asked(tmp_path, library):
    out = tmp_path / "out.csv"
    out.write_text(
        "path,genre,confidence,uncertain,model,error,sounds_like,sha256\n"
        f"{library['mp3']},metal,0.91,false,v1,,,\n"
        f"{library['ogg']},disco,0.40,true,v1,,,\n"
        f"{library['flac']},classical,0.62,false,v1,,,\n"
    )
    undo = tmp_path / "undo.jsonl"
    done = genreflow("tag", "--from", str(out), "--min-confidence", "0.7",
                     "--undo-file", str(undo), home=tmp_path)  # fmt: skip
    assert "tagged 1 song(s), skipped 2" in done.stdout
    assert "not sure (closest disco, 40%" in done.stderr
    assert "classical at 62% is under --min-confidence" in done.stderr
    assert read_genres(library["mp3"]) == ["metal"]
    assert read_genres(library["ogg"]) == read_genres(library["flac"]) == []
    kept = genreflow("tag", "--from", str(out), "--only-empty", "--include-uncertain",
                     "--undo-file", str(tmp_path / "undo2.jsonl"), home=tmp_path)  # fmt: skip
    assert "tagged 2 song(s), skipped 1" in kept.stdout
    assert "keeps its genre metal (--only-empty)" in kept.stderr
    assert read_genres(library["ogg"]) == ["disco"]
    both = genreflow("tag", str(library["mp3"]), "--from", str(out), "--dry-run",
                     home=tmp_path, check=False)  # fmt: skip
    assert both.returncode == 2


def test_the_progress_bar_shows_on_a_terminal(tmp_path, library, tiny_model_path):
    """A pseudo-terminal (80 columns) as stderr gets tqdm's bar; stdout stays a pipe."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    songs = [str(library["flac"]), str(library["mp3"])]
    argv = [sys.executable, "-m", "shared", "predict", *songs, "--model", str(tiny_model_path),
            "--jobs", "1", "-o", str(tmp_path / "out.csv")]  # fmt: skip
    env = {**os.environ, "GENREFLOW_HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower, env=env, timeout=300,
                          check=False)  # fmt: skip
    os.close(follower)
    shown = b""
    with contextlib.suppress(OSError):  # the pty reads EIO once drained
        while chunk := os.read(leader, 65536):
            shown += chunk
    os.close(leader)
    assert done.returncode == 0
    assert b"2/2 [" in shown
    assert b"song/s" in shown
    assert b"2 song(s): 2 classified, 0 failed" in done.stdout
