"""Schemas of models and training runs: a model version, a run, and the body that starts one."""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields
from apiflask.validators import OneOf
from marshmallow import RAISE, pre_dump

from shared.core.nets.recipe_json import recipe_json_schema
from shared.core.nets.sidecar import model_card_path
from shared.store.columns import isoformat
from shared.store.orm import ModelVersion, RunStatus, TrainingRun
from web.api import API_PREFIX
from web.api.schemas import PageOut


class ModelOut(Schema):
    """A registered model version."""

    version = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    active = fields.Boolean()
    genres = fields.List(fields.String())
    metrics = fields.Raw(allow_none=True)
    feature_config = fields.Raw(allow_none=True)
    data_fingerprint = fields.String(allow_none=True)
    training_run_id = fields.String(allow_none=True)
    links = fields.Dict(keys=fields.String(), values=fields.String())

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, ModelVersion):
            return data
        base = f"{API_PREFIX}/models/{data.version}"
        return {
            "version": data.version,
            "created_at": isoformat(data.created_at),
            "active": data.active,
            "genres": data.genres,
            "metrics": data.metrics,
            "feature_config": data.feature_config,
            "data_fingerprint": data.data_fingerprint,
            "training_run_id": data.training_run_id,
            "links": {
                "self": base,
                "activate": f"{base}/activate",
                "confusion_matrix": f"{base}/confusion-matrix.png",
                **({"card": f"{base}/card"} if model_card_path(data.path) else {}),
            },
        }


class ModelItemOut(ModelOut):
    """A model version inside a listing.

    Same fields as :class:`ModelOut`. A distinct class because APIFlask sorts routes by length
    and would otherwise meet ``ModelOut`` nested first and register it twice.
    """


class ModelListOut(Schema):
    """Every registered model (newest first) and the active version."""

    items = fields.List(fields.Nested(ModelItemOut))
    active_version = fields.String(allow_none=True)


class RunErrorOut(Schema):
    """The ``error`` member of a failed training run."""

    code = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class TrainIn(Schema):
    """The optional JSON body of ``POST /api/v1/models/train``; only ``recipe`` is read."""

    class Meta:
        """Members other than ``recipe`` are refused (``additionalProperties: false``)."""

        unknown = RAISE

    recipe = fields.Raw(
        allow_none=True,
        metadata={
            "description": "the recipe to train with: a name (the benchmark's variants) or a "
            "recipe object (absent members take the seed recipe's values); absent or null: the "
            "active model's recipe",
            "example": "musicnn-pool",
            **recipe_json_schema(),
        },
    )


class TrainingRunOut(Schema):
    """A training run."""

    id = fields.String()
    status = fields.String(validate=OneOf([s.value for s in RunStatus]))
    progress = fields.Float()
    stage = fields.String(allow_none=True)
    trigger = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    started_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    finished_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    model_version = fields.String(allow_none=True)
    activated = fields.Boolean()
    metrics = fields.Raw(allow_none=True)
    error = fields.Nested(RunErrorOut, allow_none=True)
    links = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, TrainingRun):
            return data
        error = None
        if data.error_code or data.error_detail:
            error = {"code": data.error_code or "training_failed", "detail": data.error_detail}
        model = f"{API_PREFIX}/models/{data.model_version}" if data.model_version else None
        return {
            "id": data.id,
            "status": data.status,
            "progress": data.progress,
            "stage": data.stage,
            "trigger": data.trigger,
            "created_at": isoformat(data.created_at),
            "started_at": isoformat(data.started_at),
            "finished_at": isoformat(data.finished_at),
            "model_version": data.model_version,
            "activated": data.activated,
            "metrics": data.metrics,
            "error": error,
            "links": {"self": training_run_link(data.id), "model": model},
        }


def training_run_link(run_id: str) -> str:
    """Return the API path of a training run."""
    return f"{API_PREFIX}/training-runs/{run_id}"


class TrainingRunPageOut(PageOut):
    """A page of training runs, newest first."""

    items = fields.List(fields.Nested(TrainingRunOut))
