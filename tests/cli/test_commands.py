"""The genreflow command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.core.nets.audioset import music_genres

pytestmark = pytest.mark.slow


def genreflow(*args: str, home, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GENREFLOW_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "shared", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow(seconds=35)
def test_demo_data_train_predict(tmp_path):
    data = tmp_path / "demo"
    out = genreflow("demo-data", str(data), "--tracks-per-genre", "4", "--seconds", "6",
                    home=tmp_path)  # fmt: skip
    assert "wrote 16 synthetic tracks" in out.stdout
    assert len(list(data.glob("*/*.wav"))) == 16

    trained = genreflow("train", str(data), "--epochs", "3", "--json", home=tmp_path)
    report = json.loads(trained.stdout)
    assert report["metrics"]["n_test_tracks"] == 4
    assert (tmp_path / "models" / f"{report['version']}.keras").is_file()
    assert (tmp_path / "models" / f"{report['version']}.onnx").is_file()  # the served artefact
    assert "absl" not in trained.stderr
    assert "oneDNN" not in trained.stderr

    song = next(data.glob("metal/*.wav"))
    predicted = genreflow("predict", "--json", str(song), home=tmp_path)
    assert predicted.stderr == ""
    result = json.loads(predicted.stdout)
    assert result["model_version"] == report["version"]
    assert set(result["probabilities"]) == {"classical", "disco", "metal", "reggae"}

    table = genreflow("predict", str(song), home=tmp_path)
    assert "votes" in table.stdout

    evaluated = genreflow("evaluate", str(data), "--json", home=tmp_path)
    assert json.loads(evaluated.stdout)["n_test_tracks"] == 16


@pytest.mark.slow(seconds=25)
def test_train_starts_from_a_named_recipe_and_records_it(tmp_path):
    from shared.core.learning.demo_data import write_demo_dataset

    data = tmp_path / "demo"
    write_demo_dataset(data, genres=("classical", "metal"), tracks_per_genre=4, seconds=6.0)
    trained = genreflow(
        "train", str(data), "--recipe", "bilstm+deltas+augment", "--epochs", "1", "--json",
        home=tmp_path,
    )  # fmt: skip
    version = json.loads(trained.stdout)["version"]
    card = json.loads((tmp_path / "models" / f"{version}.json").read_text())
    assert card["recipe"]["name"] == "bilstm+deltas+augment"
    assert (card["recipe"]["architecture"], card["recipe"]["epochs"]) == ("bilstm", 1)
    assert card["feature_config"]["deltas"] is True
    assert card["options"]["augment"] is True

    refused = genreflow("train", str(data), "--recipe", "nope", home=tmp_path, check=False)
    assert refused.returncode == 2
    assert "'nope' is not one of 'seed'" in refused.stderr
    bad_rate = genreflow("train", str(data), "--learning-rate", "5", home=tmp_path, check=False)
    assert bad_rate.returncode == 1
    assert "'learning_rate' must be in (0, 1)" in bad_rate.stderr.splitlines()[-1]


def test_bad_input_gives_one_clear_line_and_nonzero_exit(tmp_path, tiny_model_path):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00" * 3000)
    done = genreflow("predict", "--model", str(tiny_model_path), str(junk), home=tmp_path,
                     check=False)  # fmt: skip
    assert done.returncode == 1
    assert f"error: {junk} is not a readable audio file" in done.stderr

    done = genreflow("train", str(tmp_path / "nowhere"), home=tmp_path, check=False)
    assert done.returncode != 0
    assert "does not exist" in done.stderr.splitlines()[-1]


def test_a_fresh_home_predicts_with_the_shipped_model(tmp_path, make_audio):
    from shared.core.nets.sidecar import read_sidecar
    from shared.store.registry import DEFAULT_MODEL_DIR

    shipped = read_sidecar(next(DEFAULT_MODEL_DIR.glob("*.keras")))
    song = make_audio("metal", seconds=7.0, ext=".mp3")
    done = genreflow("predict", "--json", str(song), home=tmp_path / "fresh-home")
    result = json.loads(done.stdout)
    assert result["model_version"] == shipped["version"]
    assert set(result["probabilities"]) == set(shipped["genres"]) == {
        "blues", "classical", "country", "electronic", "hiphop", "jazz", "latin", "pop",
        "reggae", "rnb", "rock",
    }  # fmt: skip
    assert {item["name"] for item in result["sounds_like"]} <= set(music_genres())
    assert result["n_segments"] == 2
    assert result["genre"] in shipped["genres"]
    assert isinstance(result["uncertain"], bool)  # every answer says whether it is sure


def test_missing_file_fails_before_any_model_or_tensorflow(tmp_path):
    """One line naming the path as given; no model is loaded, so no TensorFlow is imported."""
    code = (
        "import sys\n"
        "from shared.cli.main import main\n"
        "try:\n"
        "    main(['predict', 'no/such/song.mp3', 'other.flac'])\n"
        "except SystemExit as exit:\n"
        "    print(exit.code, sorted(m for m in ('tensorflow', 'keras', 'onnxruntime', 'librosa')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "GENREFLOW_HOME": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "1 []"
    assert done.stderr.splitlines() == [
        "error: no/such/song.mp3: no such file.",
        "error: other.flac: no such file.",
    ]


def test_tensorflow_start_up_lines_show_only_when_verbose(tmp_path):
    code = (
        "import logging, sys\n"
        "if sys.argv[1] == '-v':\n"
        "    logging.basicConfig(level=logging.INFO)\n"
        "from shared.core.nets.model import import_keras\n"
        "import_keras()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet, verbose = (
        subprocess.run(
            [sys.executable, "-c", code, flag],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        for flag in ("-q", "-v")
    )
    assert quiet.stderr == ""
    assert "TensorFlow start-up" in verbose.stderr


def test_the_table_says_not_sure_and_names_the_closest_genre():
    from shared.cli.commands import format_prediction

    result = {
        "genre": "jazz",
        "confidence": 0.41,
        "uncertain": True,
        "uncertain_reason": "low_confidence",
        "n_segments": 2,
        "duration_s": 6.0,
        "probabilities": {"jazz": 0.41, "blues": 0.39, "rock": 0.2},
        "votes": {"jazz": 1, "blues": 1, "rock": 0},
        "segments": [],
    }
    first = format_prediction(Path("song.mp3"), result, with_segments=False).splitlines()[0]
    assert first == "song.mp3: not sure — closest: jazz (41%), 2 segments, 6.0 s"
    strange = {**result, "uncertain_reason": "unfamiliar_sound"}
    first = format_prediction(Path("hum.wav"), strange, with_segments=False).splitlines()[0]
    assert "it sounds unlike the music this model knows" in first
    sure = {**result, "uncertain": False, "uncertain_reason": None}
    first = format_prediction(Path("song.mp3"), sure, with_segments=False).splitlines()[0]
    assert first.startswith("song.mp3: jazz (41%)")


def test_predict_says_what_it_sounds_like_in_the_table_and_the_json(
    tmp_path, tiny_model_path, make_audio
):
    from shared.core.nets.audioset import music_genres

    song = make_audio("metal", seconds=10.0)
    done = genreflow("predict", "--model", str(tiny_model_path), "--json", str(song), home=tmp_path)
    sounds = json.loads(done.stdout)["sounds_like"]
    assert len(sounds) == 3
    assert {item["name"] for item in sounds} <= set(music_genres())
    table = genreflow("predict", "--model", str(tiny_model_path), str(song), home=tmp_path)
    lines = table.stdout.splitlines()
    assert lines[1].strip() == "sounds like (AudioSet)"
    column = lines[1].index("sounds like")
    for line, item in zip(lines[2:], sounds, strict=False):
        assert line[column:] == f"{item['name']} {item['score']:.2f}"


def test_the_sounds_like_column_sits_beside_the_genres_and_outlasts_them():
    from shared.cli.commands import SOUNDS_LIKE_HEADER, format_prediction

    result = {
        "genre": "jazz",
        "confidence": 0.6,
        "uncertain": False,
        "uncertain_reason": None,
        "n_segments": 2,
        "duration_s": 6.0,
        "probabilities": {"jazz": 0.6, "blues": 0.4},
        "votes": {"jazz": 1, "blues": 1},
        "segments": [],
        "sounds_like": [
            {"name": "Heavy metal", "score": 0.4512},
            {"name": "Punk rock", "score": 0.25},
            {"name": "Grunge", "score": 0.1},
        ],
    }
    lines = format_prediction(Path("song.mp3"), result, with_segments=False).splitlines()
    column = lines[1].index(SOUNDS_LIKE_HEADER)
    assert lines[2].startswith("  jazz")
    assert lines[2][column:] == "Heavy metal 0.45"
    assert lines[3][column:] == "Punk rock 0.25"
    assert lines[4].strip() == "Grunge 0.10"  # more opinions than genres: a row of its own
    older = format_prediction(
        Path("song.mp3"), {**result, "sounds_like": None}, with_segments=False
    )
    assert SOUNDS_LIKE_HEADER not in older
    assert len(older.splitlines()) == 3
