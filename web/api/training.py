"""Training runs: start one from ``GENREFLOW_TRAIN_DATA_DIR`` and follow it."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from shared.core.nets.recipe import Recipe, parse_recipe
from shared.errors import InvalidRecipe, TrainingBusy, TrainingRunNotFound
from shared.lifecycle.training_runs import start_training_run
from shared.store.orm import TrainingRun
from web.api import API_PREFIX
from web.api.model_schemas import TrainIn, TrainingRunOut, TrainingRunPageOut, training_run_link
from web.api.pagination import paginate
from web.api.schemas import PageQuery
from web.auth import Access, requires
from web.context import get_db, get_queue, get_settings

bp = APIBlueprint("training", __name__, url_prefix=API_PREFIX, tag="Training")


@bp.post("/models/train")
@requires(Access.ADMIN)
@bp.input(TrainIn, location="json", validation=False)
@bp.output(TrainingRunOut, status_code=202, description="Training run queued")
@bp.doc(
    summary="Train a new model from GENREFLOW_TRAIN_DATA_DIR",
    description=(
        '`{"recipe": NAME or OBJECT}` trains with that recipe; `{}` (or no body at all) uses '
        "the active model's recipe. The run keeps it in `metrics.recipe`. "
        "409 when GENREFLOW_TRAIN_DATA_DIR is not set, a run is already queued or running, or "
        "the recipe needs musicnn weights this installation lacks; 422 when the folder does "
        "not exist or the recipe is invalid; 503 when the task queue is unreachable."
    ),
    responses=[409, 422, 503],
)
def start_training(json_data: Any = None) -> ResponseReturnValue:
    """Create a training run, commit it, then send it to the ``train`` queue."""
    del json_data  # read by hand below: the body is optional
    recipe = _requested_recipe()
    try:
        run = start_training_run(get_db(), get_settings(), queue=get_queue(), recipe=recipe)
    except TrainingBusy as exc:
        exc.headers["Location"] = training_run_link(exc.extra["training_run_id"])
        raise
    return run, 202, {"Location": training_run_link(run.id)}


@bp.get("/training-runs")
@requires(Access.CLIENT)
@bp.input(PageQuery, location="query")
@bp.output(TrainingRunPageOut)
@bp.doc(summary="List training runs, newest first", responses=[400])
def list_training_runs(query_data: dict[str, Any]) -> dict[str, Any]:
    """Return a page of training runs."""
    page, per_page = query_data["page"], query_data["per_page"]
    return paginate(
        get_db(),
        select(TrainingRun),
        order_by=(TrainingRun.created_at.desc(), TrainingRun.id.desc()),
        page=page,
        per_page=per_page,
    )


@bp.get("/training-runs/<run_id>")
@requires(Access.CLIENT)
@bp.output(TrainingRunOut)
@bp.doc(summary="Get a training run", responses=[404])
def get_training_run(run_id: str) -> TrainingRun:
    """Return one training run."""
    run = get_db().get(TrainingRun, run_id)
    if run is None:
        raise TrainingRunNotFound(f"No training run has id {run_id!r}.")
    return run


def _requested_recipe() -> Recipe | None:
    """Return the recipe the request's JSON body names, if any (``InvalidRecipe``: invalid)."""
    if not request.get_data(cache=True):
        return None
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRecipe('The body must be a JSON object such as {"recipe": "musicnn-pool"}.')
    unknown = sorted(set(body) - {"recipe"})
    if unknown:
        raise InvalidRecipe(f"Unknown member(s) {', '.join(unknown)}; only 'recipe' is read.")
    value = body.get("recipe")
    return None if value is None else parse_recipe(value)
