"""The beets plugin on a real beets library in a temporary folder, driven by ``beet`` itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.core.learning.demo_data import synth_track, write_audio
from shared.library.tags import read_genres, write_genres
from tests.conftest import TINY_GENRES

pytest.importorskip("beets", reason="the beets extra is not installed (pip install '.[beets]')")
pytestmark = pytest.mark.slow

FIELDS = (
    "$path|$genres|$genreflow_genre|$genreflow_confidence|$genreflow_uncertain|$genreflow_model"
)


def beet(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``beet -c home/config.yaml ARGS`` with its own BEETSDIR and genreflow home."""
    env = {**os.environ, "BEETSDIR": str(home), "GENREFLOW_HOME": str(home / "genreflow"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
    executable = Path(sys.executable).with_name("beet")
    done = subprocess.run([str(executable), "-c", str(home / "config.yaml"), *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def make_library(tmp_path: Path, model: Path, *, auto: bool) -> Path:
    """Write a beets config (library in tmp_path, files left in place) and three songs."""
    (tmp_path / "config.yaml").write_text(
        f"directory: {tmp_path / 'library'}\n"
        f"library: {tmp_path / 'library.db'}\n"
        "plugins: genreflow\n"
        "import: {copy: no, write: yes, autotag: no, quiet: yes, log: null}\n"
        f"genreflow: {{model: {model}, jobs: 1, include_uncertain: yes, auto: {auto}}}\n"
    )
    music = tmp_path / "music"
    for seed, (style, ext) in enumerate([("metal", ".mp3"), ("classical", ".flac"),
                                         ("disco", ".ogg")]):  # fmt: skip
        write_audio(music / f"{style}{ext}", synth_track(style, seconds=6.0, seed=seed))
    write_genres(music / "classical.flac", ["Polka"])  # a genre the user set
    return music


def listed(home: Path) -> dict[str, list[str]]:
    lines = beet(home, "ls", "-f", FIELDS).stdout.strip().splitlines()
    rows = [line.split("|") for line in lines]  # an unset field is printed as its $name
    return {Path(row[0]).name: ["" if v.startswith("$") else v for v in row[1:]] for row in rows}


@pytest.mark.slow(seconds=30)
def test_beet_genreflow_sets_attributes_and_genres_keeping_existing_ones(tmp_path, tiny_model_path):
    music = make_library(tmp_path, tiny_model_path, auto=False)
    beet(tmp_path, "import", str(music))
    assert listed(tmp_path)["classical.flac"][:2] == ["Polka", ""]  # imported, not classified

    shown = beet(tmp_path, "genreflow", "-p")
    assert "genre unchanged: keeps its genre Polka" in shown.stdout
    assert listed(tmp_path)["metal.mp3"][1] == ""  # --pretend stores nothing

    beet(tmp_path, "genreflow")
    items = listed(tmp_path)
    for name, (genres, genre, confidence, uncertain, model) in items.items():
        assert genre in TINY_GENRES, items
        assert 0 < float(confidence) <= 1
        assert uncertain in ("True", "False")
        assert model == tiny_model_path.stem
        assert genres == ("Polka" if name == "classical.flac" else genre)
    assert read_genres(music / "metal.mp3") == [items["metal.mp3"][1]]  # import.write: tags too
    assert read_genres(music / "classical.flac") == ["Polka"]
    assert beet(tmp_path, "ls", "genreflow_confidence:0..1").stdout.count("\n") == 3

    beet(tmp_path, "genreflow", "-f", f"path:{music / 'classical.flac'}")
    forced = listed(tmp_path)["classical.flac"]
    assert forced[0] == forced[1] in TINY_GENRES
    assert read_genres(music / "classical.flac") == [forced[1]]


def test_auto_classifies_on_import(tmp_path, tiny_model_path):
    music = make_library(tmp_path, tiny_model_path, auto=True)
    beet(tmp_path, "import", str(music))
    items = listed(tmp_path)
    assert sorted(items) == ["classical.flac", "disco.ogg", "metal.mp3"]
    assert all(values[1] in TINY_GENRES for values in items.values()), items
    assert items["metal.mp3"][0] == items["metal.mp3"][1]
    assert items["classical.flac"][0] == "Polka"
