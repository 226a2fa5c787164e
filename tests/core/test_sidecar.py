"""The model card: paths beside the ``.keras`` file, and the checks made when reading it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.core.nets.sidecar import (
    confusion_png_path,
    model_path_for,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from shared.errors import ModelError


def test_paths_beside_the_model_file(tmp_path: Path) -> None:
    model = model_path_for(tmp_path, "20260101-000000-abcdef")
    assert model == tmp_path / "20260101-000000-abcdef.keras"
    assert sidecar_path(model) == tmp_path / "20260101-000000-abcdef.json"
    assert confusion_png_path(model) == tmp_path / "20260101-000000-abcdef.confusion.png"


def test_write_then_read_round_trips_and_fills_the_version(tmp_path: Path) -> None:
    model = model_path_for(tmp_path, "v7")
    model.write_bytes(b"placeholder")
    write_sidecar(model, {"genres": ["rock", "jazz"], "metrics": {"track_accuracy_vote": 0.5}})
    card = read_sidecar(model)
    assert card["version"] == "v7"  # the file's stem when the card has none
    assert card["genres"] == ["rock", "jazz"]


@pytest.mark.parametrize(
    ("card", "message"),
    [
        (None, "is missing"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"version": "a/b", "genres": ["rock"]}), "invalid version"),
        (json.dumps({"version": "v1", "genres": []}), "must list"),
    ],
)
def test_bad_cards_are_model_errors(tmp_path: Path, card: str | None, message: str) -> None:
    model = model_path_for(tmp_path, "v1")
    model.write_bytes(b"placeholder")
    if card is not None:
        sidecar_path(model).write_text(card)
    with pytest.raises(ModelError, match=message):
        read_sidecar(model)


def test_a_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        read_sidecar(tmp_path / "gone.keras")


def test_reading_cards_imports_no_numpy() -> None:
    code = (
        "import sys, shared.core.nets.sidecar\n"
        "assert 'numpy' not in sys.modules, 'numpy imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
