"""The rows predict writes: CSV and JSON Lines, read back for resuming, and the summary."""

from __future__ import annotations

import csv
import json

import pytest

from shared.library.results import (
    COLUMNS,
    ResultWriter,
    SongResult,
    done_keys,
    output_format,
    read_results,
    summarize,
)

PREDICTION = {"genre": "rock", "confidence": 0.8123, "uncertain": False, "model_version": "v1"}
SOUNDS_LIKE = [{"name": "Heavy metal", "score": 0.45}, {"name": "Punk rock", "score": 0.25}]


def rows() -> list[SongResult]:
    return [
        SongResult.from_prediction("a.mp3", PREDICTION, sha256="aa"),
        SongResult.from_prediction(
            "b.mp3", {**PREDICTION, "uncertain": True, "sounds_like": SOUNDS_LIKE}, sha256="bb"
        ),
        SongResult.failed("c.mp3", "c.mp3 is not a readable audio file", sha256="cc"),
    ]


def test_csv_has_the_columns_and_a_sounds_like_cell_only_when_the_result_has_it(tmp_path):
    out = tmp_path / "out.csv"
    with ResultWriter(out) as writer:
        for row in rows():
            writer.write(row)
    with out.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert tuple(written[0]) == COLUMNS
    assert COLUMNS[:6] == ("path", "genre", "confidence", "uncertain", "model", "error")
    assert written[0]["sounds_like"] == ""
    assert written[1]["sounds_like"] == "Heavy metal 0.45; Punk rock 0.25"
    assert (written[1]["uncertain"], written[1]["confidence"]) == ("true", "0.8123")
    assert written[2]["genre"] == ""
    assert "not a readable" in written[2]["error"]
    back = read_results(out)
    assert [(r.path, r.genre, r.uncertain, r.error) for r in back] == [
        (r.path, r.genre, r.uncertain, r.error) for r in rows()
    ]


def test_jsonl_keeps_sounds_like_as_a_list(tmp_path):
    out = tmp_path / "out.jsonl"
    with ResultWriter(out) as writer:
        for row in rows():
            writer.write(row)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["sounds_like"] for line in lines] == [None, SOUNDS_LIKE, None]
    assert "detail" not in lines[0]
    assert read_results(out) == rows()


def test_resume_keys_are_the_classified_rows_hash_and_model():
    assert done_keys(rows()) == {("aa", "v1"), ("bb", "v1")}


def test_a_writer_rewrites_the_kept_rows_first(tmp_path):
    out = tmp_path / "out.csv"
    with ResultWriter(out, keep=rows()[:1]) as writer:
        writer.write(rows()[2])
    assert [row.path for row in read_results(out)] == ["a.mp3", "c.mp3"]


def test_other_extensions_are_refused():
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        output_format("out.txt")


def test_summary_counts_genres_not_sure_and_failed():
    text = summarize(rows())
    assert text.splitlines()[0] == "3 song(s): 2 classified, 1 failed"
    assert "rock             2 (1 not sure)" in text
    assert text.splitlines()[-1] == "not sure: 1 of 2"
