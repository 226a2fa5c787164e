"""A recipe as JSON: the OpenAPI schema of what a request may send, and a sidecar's recipe.

Standard library only, like :mod:`shared.core.nets.recipe`: the web process reads both.
"""

from __future__ import annotations

from typing import Any

from shared.core.nets import hparams
from shared.core.nets.recipe import (
    EMBEDDINGS,
    FUSIONS,
    LOUDNESS_RANGE,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LSTM_UNITS,
    MAX_N_MFCC,
    MAX_NAME_CHARS,
    NETWORKS,
    RECIPE_KEY,
    RECIPES,
    Recipe,
)


def recipe_from_sidecar(card: dict[str, Any]) -> Recipe:
    """Return the recipe of a model from its sidecar.

    Sidecars with a ``"recipe"`` member give it as written. Older ones get it derived: the
    preset named by ``options.variant`` (the shipped model's benchmark variant), else the
    ``options`` that :class:`~shared.core.learning.training.TrainOptions` wrote, ``feature_config``
    (``n_mfcc``, ``deltas``, ``musicnn``) and ``architecture``.

    Raises
    ------
    InvalidRecipe
        The sidecar's recipe (written or derived) is not valid.
    """
    written = card.get(RECIPE_KEY)
    if written is not None:
        return Recipe.from_dict(written)
    options = card.get("options") if isinstance(card.get("options"), dict) else {}
    if options.get("variant") in RECIPES:
        return RECIPES[options["variant"]]
    config = card.get("feature_config") if isinstance(card.get("feature_config"), dict) else {}
    architecture = options.get("architecture") or str(card.get("architecture") or "")
    architecture = architecture.removeprefix("musicnn_")
    derived: dict[str, Any] = {
        "architecture": architecture if architecture in hparams.ARCHITECTURES else "baseline",
        "n_mfcc": config.get("n_mfcc", 13),
        "deltas": bool(config.get("deltas", False)),
        "embedding": (options.get("embedding") or "pool") if config.get("musicnn") else None,
        "loudness_db": config.get("loudness_db"),
        "cmvn": bool(config.get("cmvn", False)),
        "audioset": bool(config.get("audioset", False)),
    }
    for name in (
        "augment",
        "normalize",
        "epochs",
        "batch_size",
        "learning_rate",
        "patience",
        "balanced",
        "l2",
        "embedding_dropout",
        "fusion",
        "lstm_units",
        "mfcc_dropout",
        "channel_augment",
    ):
        if name in options:
            derived[name] = options[name]
    if isinstance(options.get("networks"), list | tuple):
        derived["networks"] = tuple(options["networks"])
    return Recipe(**derived).named()


def recipe_json_schema() -> dict[str, Any]:
    """Return the OpenAPI 3.1 schema of what :func:`parse_recipe` accepts: a name or an object."""
    flag = {"type": "boolean"}
    return {
        "oneOf": [
            {"type": "string", "enum": list(RECIPES)},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_NAME_CHARS,
                        "pattern": r"\S",
                    },
                    "architecture": {"type": "string", "enum": list(hparams.ARCHITECTURES)},
                    "n_mfcc": {"type": "integer", "minimum": 1, "maximum": MAX_N_MFCC},
                    "deltas": flag,
                    "augment": flag,
                    "normalize": flag,
                    "embedding": {"type": ["string", "null"], "enum": [*EMBEDDINGS, None]},
                    "networks": {
                        "type": "array",
                        "items": {"type": "string", "enum": list(NETWORKS)},
                        "minItems": 1,
                        "uniqueItems": True,
                    },
                    "epochs": {"type": "integer", "minimum": 1, "maximum": MAX_EPOCHS},
                    "batch_size": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH_SIZE},
                    "learning_rate": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "exclusiveMaximum": 1,
                    },
                    "patience": {"type": "integer", "minimum": 1, "maximum": MAX_EPOCHS},
                    "balanced": flag,
                    "loudness_db": {
                        "type": ["number", "null"],
                        "minimum": LOUDNESS_RANGE[0],
                        "maximum": LOUDNESS_RANGE[1],
                    },
                    "l2": {"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1},
                    "embedding_dropout": {
                        "type": ["number", "null"],
                        "minimum": 0,
                        "exclusiveMaximum": 1,
                    },
                    "cmvn": flag,
                    "audioset": flag,
                    "fusion": {"type": "string", "enum": list(FUSIONS)},
                    "lstm_units": {"type": "integer", "minimum": 1, "maximum": MAX_LSTM_UNITS},
                    "mfcc_dropout": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                    "channel_augment": flag,
                },
                # without a musicnn embedding there is nothing for these to act on
                "if": {
                    "not": {
                        "required": ["embedding"],
                        "properties": {"embedding": {"type": "string"}},
                    }
                },
                "then": {
                    "properties": {
                        "audioset": {"const": False},
                        "fusion": {"const": "early"},
                        "mfcc_dropout": {"const": 0},
                    }
                },
            },
            {"type": "null"},
        ],
    }
