"""Smoke test of the accuracy benchmark on tiny generated data (no accuracy is asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from shared.core.learning.dataset import find_tracks
from shared.core.learning.demo_data import write_demo_dataset

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
    assert names == ["seed", "musicnn"]  # seed recipe first
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
