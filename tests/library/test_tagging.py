"""Which songs get tagged, the undo record, and putting the old genres back."""

from __future__ import annotations

import json

import pytest

from shared.library.results import SongResult
from shared.library.tagging import TagRules, apply_tags, plan_tags, undo_tags
from shared.library.tags import read_genres, write_genres


def answer(path, genre="metal", confidence=0.9, uncertain=False) -> SongResult:
    result = {"genre": genre, "confidence": confidence, "uncertain": uncertain}
    return SongResult.from_prediction(path, {**result, "model_version": "v1"}, sha256="x")


@pytest.fixture
def songs(make_audio):
    """Five mp3/flac songs: one with a genre the user set."""
    paths = {name: make_audio("metal", seconds=4.0, ext=ext, name=f"{name}{ext}")
             for name, ext in [("sure", ".mp3"), ("unsure", ".flac"), ("weak", ".mp3"),
                               ("mine", ".flac"), ("broken", ".mp3")]}  # fmt: skip
    write_genres(paths["mine"], ["Doom Jazz"])
    return paths


def rows_for(songs) -> list[SongResult]:
    return [
        answer(songs["sure"]),
        answer(songs["unsure"], confidence=0.45, uncertain=True),
        answer(songs["weak"], confidence=0.55),
        answer(songs["mine"], genre="rock"),
        SongResult.failed(songs["broken"], "not audio"),
    ]


def test_the_rules_pick_sure_songs_and_say_why_others_are_skipped(songs):
    changes, skips = plan_tags(rows_for(songs), TagRules(min_confidence=0.6, only_empty=True))
    assert [(c.path, c.old, c.new) for c in changes] == [(str(songs["sure"]), [], ["metal"])]
    reasons = {skip.path: skip.reason for skip in skips}
    assert reasons[str(songs["unsure"])].startswith("not sure (closest metal, 45%")
    assert "under --min-confidence" in reasons[str(songs["weak"])]
    assert reasons[str(songs["mine"])] == "keeps its genre Doom Jazz (--only-empty)"
    assert reasons[str(songs["broken"])] == "not classified: not audio"

    changes, _ = plan_tags(rows_for(songs), TagRules(include_uncertain=True))
    assert {c.path: c.old for c in changes} == {
        str(songs[name]): ["Doom Jazz"] if name == "mine" else [] for name in
        ("sure", "unsure", "weak", "mine")
    }  # fmt: skip


def test_apply_records_the_old_genres_first_and_undo_puts_them_back(songs, tmp_path):
    changes, _ = plan_tags(rows_for(songs), TagRules())
    undo_file = tmp_path / "undo.jsonl"
    assert apply_tags(changes, undo_file) == []
    assert read_genres(songs["mine"]) == ["rock"]
    assert read_genres(songs["sure"]) == ["metal"]
    record = [json.loads(line) for line in undo_file.read_text().splitlines()]
    assert {(r["path"], tuple(r["old"])) for r in record} == {
        (str(songs["sure"].resolve()), ()), (str(songs["weak"].resolve()), ()),
        (str(songs["mine"].resolve()), ("Doom Jazz",)),
    }  # fmt: skip
    assert plan_tags(rows_for(songs), TagRules())[0] == []  # a second run has nothing to do

    write_genres(songs["weak"], ["Polka"])  # the user changed one since
    restored, left = undo_tags(undo_file)
    assert {c.path for c in restored} == {
        str(songs["sure"].resolve()),
        str(songs["mine"].resolve()),
    }
    assert [(s.path, s.reason) for s in left] == [
        (str(songs["weak"].resolve()), "changed since to Polka")
    ]
    assert read_genres(songs["mine"]) == ["Doom Jazz"]
    assert read_genres(songs["sure"]) == []
    assert read_genres(songs["weak"]) == ["Polka"]


def test_an_existing_undo_file_is_never_overwritten(songs, tmp_path):
    undo_file = tmp_path / "undo.jsonl"
    undo_file.write_text("earlier\n")
    changes, _ = plan_tags(rows_for(songs), TagRules())
    with pytest.raises(FileExistsError):
        apply_tags(changes, undo_file)
    assert undo_file.read_text() == "earlier\n"
    assert read_genres(songs["sure"]) == []
