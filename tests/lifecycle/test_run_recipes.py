"""Which recipe a service training run uses: the request's, the active model's, the shipped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from shared.core.nets.recipe import RECIPES
from shared.core.nets.recipe_json import recipe_from_sidecar
from shared.core.nets.sidecar import read_sidecar, write_sidecar
from shared.lifecycle import run_recipes
from shared.lifecycle.run_recipes import choose_recipe, recipe_record
from shared.store.config import Settings
from shared.store.registry import active_model, register_model, sync_model_dir


def _placeholder_model(folder: Path, version: str, card: dict[str, Any]) -> Path:
    """Write a model file and its sidecar (``card``); the registry and recipes read the card."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}.keras"
    path.write_bytes(b"PK\x03\x04 placeholder")
    write_sidecar(path, {"version": version, "genres": ["a", "b"], **card})
    return path


def test_a_run_uses_the_requested_recipe_else_the_active_models(
    db_session: Session, settings: Settings
) -> None:
    sync_model_dir(db_session, settings)  # the shipped model, active
    shipped = active_model(db_session)
    assert shipped is not None
    recipe, source = choose_recipe(db_session)
    assert source == f"active model {shipped.version}"
    assert recipe == recipe_from_sidecar(read_sidecar(shipped.path))
    assert recipe.musicnn  # the shipped model reads musicnn beside the MFCCs

    assert choose_recipe(db_session, RECIPES["seed"]) == (RECIPES["seed"], "request")

    mine = replace(RECIPES["musicnn"], name="mine", epochs=7)
    path = _placeholder_model(settings.model_dir, "v-mine", {"recipe": mine.to_dict()})
    register_model(db_session, path, activate=True)
    assert choose_recipe(db_session) == (mine, "active model v-mine")
    record = recipe_record(db_session)
    assert record == {"recipe": mine.to_dict(), "recipe_source": "active model v-mine"}


def test_without_a_readable_active_model_the_shipped_recipe_then_the_seed_is_used(
    db_session: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _placeholder_model(settings.model_dir, "v-gone", {})
    register_model(db_session, path, activate=True)
    path.with_suffix(".json").unlink()
    recipe, source = choose_recipe(db_session)
    assert source.startswith("shipped model ")
    assert recipe.musicnn

    from shared.store import registry

    monkeypatch.setattr(run_recipes, "DEFAULT_MODEL_DIR", registry.DEFAULT_MODEL_DIR / "none")
    assert choose_recipe(db_session) == (RECIPES["seed"], "seed recipe (no model to copy)")
