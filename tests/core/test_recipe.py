"""Training recipes: the named ones, validation, and reading them from model sidecars."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shared.core.nets.recipe import (
    NETWORKS,
    RECIPES,
    WEIGHTS_DIR,
    Recipe,
    parse_recipe,
)
from shared.core.nets.recipe_json import recipe_from_sidecar
from shared.errors import InvalidRecipe, RecipeUnavailable

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "shared" / "default_model"


def test_named_recipes_start_with_the_seed_and_round_trip_through_json() -> None:
    assert next(iter(RECIPES)) == "seed"
    assert not RECIPES["seed"].musicnn
    assert RECIPES["musicnn-pool"].embedding == "pool"
    for name, recipe in RECIPES.items():
        assert recipe.name == name
        again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
        assert again == recipe
        assert recipe.describe()


def test_a_request_names_a_recipe_or_sends_one() -> None:
    assert parse_recipe("musicnn-pool") is RECIPES["musicnn-pool"]
    custom = parse_recipe({"embedding": "pool", "deltas": True})
    assert (custom.name, custom.deltas, custom.networks) == ("custom", True, ("MSD_musicnn",))
    # an object equal to a named recipe (the schedule aside) takes its name
    named = parse_recipe({"embedding": "pool", "epochs": 5})
    assert (named.name, named.epochs) == ("musicnn-pool", 5)
    assert parse_recipe({"name": "mine", "deltas": True}).name == "mine"
    assert parse_recipe({"epochs": 70.0}).epochs == 70  # JSON's 70.0 is an integer


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("nope", "Unknown recipe 'nope'"),
        (7, "must be a name or a JSON object"),
        (["seed"], "must be a name or a JSON object"),
        ({"colour": "red"}, "Unknown recipe field(s) colour"),
        ({"architecture": "transformer"}, "'architecture' must be one of baseline, bilstm"),
        ({"embedding": "last"}, "'embedding' must be one of penultimate, pool"),
        ({"epochs": 0}, "'epochs' must be an integer"),
        ({"epochs": 2.5}, "'epochs' must be an integer"),
        ({"epochs": True}, "'epochs' must be an integer"),
        ({"n_mfcc": 1000}, "'n_mfcc' must be an integer"),
        ({"learning_rate": 0}, "'learning_rate' must be in (0, 1)"),
        ({"deltas": "yes"}, "'deltas' must be true or false"),
        ({"networks": ["MSD_musicnn", "MSD_musicnn"]}, "'networks' must list distinct"),
        ({"networks": ["Other_musicnn"]}, "'networks' must list distinct"),
        ({"networks": []}, "'networks' must list distinct"),
        ({"name": ""}, "'name' must be 1 to 64 characters"),
    ],
)
def test_invalid_recipes_are_refused_with_the_reason(value: Any, words: str) -> None:
    with pytest.raises(InvalidRecipe) as caught:
        parse_recipe(value)
    assert caught.value.status == 422
    assert caught.value.code == "invalid_recipe"
    assert words in caught.value.detail


def test_a_request_for_musicnn_weights_that_are_not_installed_is_refused() -> None:
    assert (WEIGHTS_DIR / "MSD_musicnn.npz").is_file()  # the shipped weights
    both = {"embedding": "penultimate", "networks": ["MSD_musicnn", "MTT_musicnn"]}
    if (WEIGHTS_DIR / "MTT_musicnn.npz").is_file():
        assert parse_recipe(both).networks == tuple(NETWORKS)
    else:
        with pytest.raises(RecipeUnavailable, match="MTT_musicnn are not installed") as caught:
            parse_recipe(both)
        assert (caught.value.status, caught.value.code) == (409, "recipe_unavailable")
    # without an embedding the networks are not read
    assert parse_recipe({"networks": ["MTT_musicnn"]}).musicnn is False


def test_shipped_model_sidecar_without_a_recipe_gets_its_benchmark_variant() -> None:
    card = json.loads(next(SHIPPED.glob("*.json")).read_text())
    assert recipe_from_sidecar(card) == Recipe.from_dict(card["recipe"])  # as it records it

    older = {key: value for key, value in card.items() if key != "recipe"}  # as it was shipped
    recipe = recipe_from_sidecar(older)
    assert recipe == RECIPES[card["options"]["variant"]]
    assert recipe.musicnn is card["feature_config"]["musicnn"]


def test_older_sidecars_get_a_recipe_from_their_options_and_features() -> None:
    seed = {
        "feature_config": {"n_mfcc": 13, "deltas": False, "musicnn": False},
        "architecture": "baseline",
        "options": {"architecture": "baseline", "epochs": 30, "augment": False, "patience": 4},
    }
    recipe = recipe_from_sidecar(seed)
    assert recipe == replace(RECIPES["seed"], epochs=30, patience=4)

    fused = {
        "feature_config": {"n_mfcc": 13, "deltas": True, "musicnn": True},
        "architecture": "musicnn_bilstm",
        "options": {"embedding": "penultimate"},
    }
    assert recipe_from_sidecar(fused).name == "musicnn+bilstm+deltas"
    # the least a sidecar has: genres and MFCC settings
    assert recipe_from_sidecar({"feature_config": {"n_mfcc": 20}}) == replace(
        RECIPES["seed"], name="custom", n_mfcc=20
    )


def test_a_recorded_recipe_wins_and_a_broken_one_is_an_error() -> None:
    recorded = replace(RECIPES["musicnn"], epochs=12)
    card = {"feature_config": {"musicnn": False}, "recipe": recorded.to_dict()}
    assert recipe_from_sidecar(card) == recorded
    with pytest.raises(InvalidRecipe):
        recipe_from_sidecar({"recipe": {"architecture": "gru"}})


def test_the_recipe_module_needs_only_the_standard_library() -> None:
    code = (
        "import sys, shared.core.nets.recipe\n"
        "heavy = [m for m in ('numpy', 'tensorflow', 'keras', 'librosa') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
