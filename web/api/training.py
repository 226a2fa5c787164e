"""Training runs: start one from ``GENREFLOW_TRAIN_DATA_DIR`` and follow it."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from shared.errors import TrainingBusy, TrainingRunNotFound
from shared.lifecycle.training_runs import start_training_run
from shared.store.orm import TrainingRun
from web.api import API_PREFIX
from web.api.pagination import paginate
from web.api.schemas import PageQuery, TrainingRunOut, TrainingRunPageOut, training_run_link
from web.auth import Access, requires
from web.context import get_db, get_queue, get_settings

bp = APIBlueprint("training", __name__, url_prefix=API_PREFIX, tag="Training")


@bp.post("/models/train")
@requires(Access.ADMIN)
@bp.output(TrainingRunOut, status_code=202, description="Training run queued")
@bp.doc(
    summary="Train a new model from GENREFLOW_TRAIN_DATA_DIR",
    description=(
        "409 when GENREFLOW_TRAIN_DATA_DIR is not set or a run is already queued or running; "
        "422 when the folder does not exist; 503 when the task queue is unreachable."
    ),
    responses=[409, 422, 503],
)
def start_training() -> ResponseReturnValue:
    """Create a training run, commit it, then send it to the ``train`` queue."""
    try:
        run = start_training_run(get_db(), get_settings(), queue=get_queue())
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
