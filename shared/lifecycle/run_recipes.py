"""Which recipe a service training run trains with, and where that recipe came from.

The request's recipe wins; else the active model's (from its sidecar), so that retraining makes
the same kind of model as the one in service; else the shipped model's; else the seed recipe.
The choice is kept on the run (``metrics.recipe`` and ``metrics.recipe_source``) from the moment
it is queued.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from sqlalchemy.orm import Session

from shared.core.nets.recipe import RECIPE_KEY, RECIPES, Recipe
from shared.core.nets.recipe_json import recipe_from_sidecar
from shared.core.nets.sidecar import read_sidecar
from shared.errors import InvalidRecipe, ModelError
from shared.store.orm import TrainingRun
from shared.store.registry import DEFAULT_MODEL_DIR, active_model

log = logging.getLogger(__name__)

#: The run's ``metrics`` member naming where its recipe came from.
RECIPE_SOURCE_KEY: Final = "recipe_source"


def choose_recipe(session: Session, requested: Recipe | None = None) -> tuple[Recipe, str]:
    """Return the recipe of a service training run, and where it came from, in words.

    The requested recipe wins; else the active model's (from its sidecar); else, when no model
    is active or its sidecar cannot be read, the shipped model's; else the seed recipe.
    """
    if requested is not None:
        return requested, "request"
    active = active_model(session)
    if active is not None:
        try:
            return recipe_from_sidecar(read_sidecar(active.path)), f"active model {active.version}"
        except (ModelError, InvalidRecipe) as exc:
            log.warning("no recipe in active model %s (%s)", active.version, exc.detail)
    for path in sorted(DEFAULT_MODEL_DIR.glob("*.keras")):
        try:
            return recipe_from_sidecar(read_sidecar(path)), f"shipped model {path.stem}"
        except (ModelError, InvalidRecipe) as exc:
            log.warning("no recipe in shipped model %s (%s)", path.stem, exc.detail)
    return RECIPES["seed"], "seed recipe (no model to copy)"


def recipe_record(session: Session, requested: Recipe | None = None) -> dict[str, Any]:
    """Return a new run's ``metrics``: its recipe and where it came from (:func:`choose_recipe`)."""
    recipe, source = choose_recipe(session, requested)
    return {RECIPE_KEY: recipe.to_dict(), RECIPE_SOURCE_KEY: source}


def kept_recipe(session: Session, run: TrainingRun) -> tuple[Recipe, str]:
    """Return the recipe kept on the run when it was created, else (older runs) choose one."""
    kept = (run.metrics or {}).get(RECIPE_KEY)
    if kept is None:
        return choose_recipe(session)
    return Recipe.from_dict(kept), str((run.metrics or {}).get(RECIPE_SOURCE_KEY) or "request")
