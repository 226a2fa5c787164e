"""The genreflow command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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

    song = next(data.glob("metal/*.wav"))
    predicted = genreflow("predict", "--json", str(song), home=tmp_path)
    result = json.loads(predicted.stdout)
    assert result["model_version"] == report["version"]
    assert set(result["probabilities"]) == {"classical", "disco", "metal", "reggae"}

    table = genreflow("predict", str(song), home=tmp_path)
    assert "votes" in table.stdout

    evaluated = genreflow("evaluate", str(data), "--json", home=tmp_path)
    assert json.loads(evaluated.stdout)["n_test_tracks"] == 16


def test_bad_input_gives_one_clear_line_and_nonzero_exit(tmp_path, tiny_model_path):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00" * 3000)
    done = genreflow("predict", "--model", str(tiny_model_path), str(junk), home=tmp_path,
                     check=False)  # fmt: skip
    assert done.returncode == 1
    assert "error: junk.mp3 is not a readable audio file" in done.stderr

    done = genreflow("train", str(tmp_path / "nowhere"), home=tmp_path, check=False)
    assert done.returncode != 0
    assert "does not exist" in done.stderr.splitlines()[-1]


def test_predict_without_any_model_says_how_to_train(tmp_path, make_audio):
    done = genreflow("predict", str(make_audio()), home=tmp_path / "empty-home", check=False)
    assert done.returncode != 0
    assert "genreflow train" in done.stderr
