"""Smoke test of the accuracy benchmark on tiny generated data (no accuracy is asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from shared.core.learning.dataset import find_tracks
from shared.core.learning.demo_data import write_demo_dataset

pytestmark = pytest.mark.slow(seconds=30)  # each test runs the benchmark on generated tracks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def accuracy_benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import accuracy

        yield accuracy
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_benchmark_cross_validates_by_track_and_reports_every_variant(
    tmp_path, accuracy_benchmark, capsys
):
    data = tmp_path / "data"
    write_demo_dataset(data, genres=("classical", "metal"), tracks_per_genre=5, seconds=7.0)
    out = tmp_path / "report"
    code = accuracy_benchmark.main(
        [
            str(data),
            "--variants", "musicnn",
            "--folds", "2", "--epochs", "1", "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.with_suffix(".json").read_text())
    names = [v["variant"]["name"] for v in result["variants"]]
    # the seed recipe first; every variant's linear read-out of the same features below it
    assert names == ["seed", "seed · read-out", "musicnn", "musicnn · read-out"]
    for variant in result["variants"]:
        assert len(variant["folds"]) == 2
        # every track is tested exactly once over the folds
        assert sum(map(sum, variant["confusion_matrix"])) == 10
    folds = accuracy_benchmark._folds(find_tracks(data), n_folds=2, seed=1, split_dir=None)
    for fold in folds:
        train, valid, test = ({t.path for t in fold[k]} for k in ("train", "valid", "test"))
        assert not (train & test)
        assert not (valid & test)
        assert not (train & valid)
    report = out.with_suffix(".md").read_text()
    assert "| seed |" in report
    assert "F1 classical" in report
    assert "seed fold 2/2" in capsys.readouterr().err


def test_benchmark_scores_cross_source_and_a_third_source(tmp_path, accuracy_benchmark, capsys):
    from shared.core.learning.demo_data import synth_track, write_audio

    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    write_demo_dataset(first, genres=("classical", "metal"), tracks_per_genre=4, seconds=7.0)
    write_demo_dataset(second, genres=("metal", "reggae"), tracks_per_genre=4, seconds=7.0, seed=11)
    third.mkdir()
    for n, genre in enumerate(("metal", "reggae", "disco")):  # disco: no model knows it
        write_audio(third / f"{genre}.0000{n}.wav", synth_track(genre, seconds=7.0, seed=40 + n))
    out = tmp_path / "report"
    code = accuracy_benchmark.main(
        [
            str(first), str(second),
            "--skip-seed", "--variants", "musicnn-pool",
            "--folds", "2", "--epochs", "1", "--quiet", "--third-source", str(third),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.with_suffix(".json").read_text())
    model, readout = result["variants"]
    assert readout["variant"]["name"] == "musicnn-pool · read-out"
    for summary in (model, readout):
        cross = summary["cross_source"]
        # metal is in both sources: one run per source, trained on the other source's metal
        assert set(cross["directions"]) == {"metal of first", "metal of second"}
        assert [d["n"] for d in cross["directions"].values()] == [4, 4]
        assert cross["n"] == 16  # every song once: metal cross-source, the rest from the folds
        # the third source's clips of known genres, scored by every fold model
        assert summary["third_source"]["n"] == 2
        assert set(summary["third_source"]["answers"]) == {"metal.00000.wav", "reggae.00001.wav"}
        # third-source clips never joined the folds
        assert sum(len(fold["tracks"]) for fold in summary["folds"]) == 16
    report = out.with_suffix(".md").read_text()
    assert "cross-source: metal of first" in report
    assert "| musicnn-pool · read-out |" in report

    merged = tmp_path / "merged"
    assert (
        accuracy_benchmark.main(["--merge", str(out.with_suffix(".json")), "--out", str(merged)])
        == 0
    )
    assert json.loads(merged.with_suffix(".json").read_text())["variants"] == result["variants"]
