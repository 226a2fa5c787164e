"""Models: the registered versions, which one is active, and their confusion matrices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apiflask import APIBlueprint
from flask import send_file
from flask.typing import ResponseReturnValue

from shared.core.nets.sidecar import model_card_path
from shared.errors import ConfusionMatrixNotFound, ModelCardNotFound, ModelFileMissing
from shared.store.orm import ModelVersion
from shared.store.registry import activate_version, active_model, get_model, list_models
from web.api import API_PREFIX
from web.api.model_schemas import ModelListOut, ModelOut
from web.api.schemas import ListQuery
from web.auth import Access, requires
from web.context import get_db

bp = APIBlueprint("models", __name__, url_prefix=API_PREFIX, tag="Models")


@bp.get("/models")
@requires(Access.CLIENT)
@bp.input(ListQuery, location="query", arg_name="query")
@bp.output(ModelListOut)
@bp.doc(summary="List model versions, newest first, and the active one", responses=[400])
def list_model_versions(query: dict[str, Any]) -> dict[str, Any]:
    """Return every registered model (a pure read; the registry syncs the model dir itself)."""
    del query  # it has no members: only checked for unknown ones
    db = get_db()
    active = active_model(db)
    return {
        "items": list_models(db),
        "active_version": active.version if active is not None else None,
    }


@bp.get("/models/<version>")
@requires(Access.CLIENT)
@bp.output(ModelOut)
@bp.doc(summary="Get a model version", responses=[404])
def get_model_version(version: str) -> ModelVersion:
    """Return one model version."""
    return get_model(get_db(), version)


@bp.post("/models/<version>/activate")
@requires(Access.ADMIN)
@bp.output(ModelOut)
@bp.doc(summary="Make a model version the active one", responses=[404, 409])
def activate_model_version(version: str) -> ModelVersion:
    """Activate ``version`` (exactly one model is active afterwards)."""
    db = get_db()
    row = get_model(db, version)
    if not Path(row.path).is_file():
        raise ModelFileMissing(
            f"The file of model {version!r} ({Path(row.path).name}) is no longer on disk."
        )
    activate_version(db, version)
    db.commit()
    return row


@bp.get("/models/<version>/card")
@bp.doc(
    summary="The model's card (Markdown): genres, data and terms, method, accuracy, limits",
    responses=[404],
)
def get_model_card(version: str) -> ResponseReturnValue:
    """Send the model card that came with the model (the shipped model has one)."""
    row = get_model(get_db(), version)
    path = model_card_path(row.path)
    if path is None:
        raise ModelCardNotFound(f"Model {version!r} has no model card.")
    return send_file(path, mimetype="text/markdown; charset=utf-8", max_age=3600)


@bp.get("/models/<version>/confusion-matrix.png")
@requires(Access.CLIENT)
@bp.doc(summary="The model's confusion matrix on its test tracks (PNG)", responses=[404])
def get_confusion_matrix(version: str) -> ResponseReturnValue:
    """Send the confusion matrix image written when the model was trained."""
    row = get_model(get_db(), version)
    path = Path(row.confusion_png_path)
    if not path.is_file():
        raise ConfusionMatrixNotFound(f"Model {version!r} has no confusion matrix image.")
    return send_file(path, mimetype="image/png", conditional=True, max_age=3600)
