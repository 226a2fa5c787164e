"""Models: the registered versions, which one is active, and their confusion matrices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apiflask import APIBlueprint
from flask import send_file
from flask.typing import ResponseReturnValue

from shared.registry import activate_version, active_model, get_model, list_models, scan_model_dir
from web.api import API_PREFIX
from web.api.schemas import ModelListOut, ModelOut
from web.context import get_db, get_settings
from web.errors import ApiError

bp = APIBlueprint("models", __name__, url_prefix=API_PREFIX, tag="Models")


@bp.get("/models")
@bp.output(ModelListOut)
@bp.doc(summary="List model versions, newest first, and the active one")
def list_model_versions() -> dict[str, Any]:
    """Return every registered model (registering new files found in the model dir first)."""
    db = get_db()
    if scan_model_dir(db, get_settings()):
        db.commit()
    active = active_model(db)
    return {
        "items": [row.to_dict() for row in list_models(db)],
        "active_version": active.version if active is not None else None,
    }


@bp.get("/models/<version>")
@bp.output(ModelOut)
@bp.doc(summary="Get a model version", responses=[404])
def get_model_version(version: str) -> dict[str, Any]:
    """Return one model version."""
    return get_model(get_db(), version).to_dict()


@bp.post("/models/<version>/activate")
@bp.output(ModelOut)
@bp.doc(summary="Make a model version the active one", responses=[404, 409])
def activate_model_version(version: str) -> dict[str, Any]:
    """Activate ``version`` (exactly one model is active afterwards)."""
    db = get_db()
    row = get_model(db, version)
    if not Path(row.path).is_file():
        raise ApiError(
            409, "model_file_missing", "Model file missing",
            f"The file of model {version!r} ({Path(row.path).name}) is no longer on disk.",
        )  # fmt: skip
    activate_version(db, version)
    db.commit()
    return row.to_dict()


@bp.get("/models/<version>/confusion-matrix.png")
@bp.doc(summary="The model's confusion matrix on its test tracks (PNG)", responses=[404])
def get_confusion_matrix(version: str) -> ResponseReturnValue:
    """Send the confusion matrix image written when the model was trained."""
    row = get_model(get_db(), version)
    path = Path(row.confusion_png_path)
    if not path.is_file():
        raise ApiError(
            404, "confusion_matrix_not_found", "Confusion matrix not found",
            f"Model {version!r} has no confusion matrix image.",
        )  # fmt: skip
    return send_file(path, mimetype="image/png", conditional=True, max_age=3600)
