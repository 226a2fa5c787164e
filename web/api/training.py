"""Training runs: start one from ``GENREFLOW_TRAIN_DATA_DIR`` and follow it."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from shared.celery_config import QUEUE_TRAIN, TASK_TRAIN_MODEL
from shared.errors import TrainingRunNotFound
from shared.models import RunStatus, RunTrigger, TrainingRun, utcnow
from web.api import API_PREFIX
from web.api.pagination import paginate
from web.api.schemas import PageQuery, TrainingRunOut, TrainingRunPageOut
from web.context import get_db, get_queue, get_settings
from web.errors import ApiError
from web.queue import QueueUnavailable

bp = APIBlueprint("training", __name__, url_prefix=API_PREFIX, tag="Training")


@bp.post("/models/train")
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
    settings = get_settings()
    data_dir = settings.train_data_dir
    if data_dir is None:
        raise ApiError(
            409, "training_not_configured", "Training is not configured",
            "Set GENREFLOW_TRAIN_DATA_DIR to a GTZAN-layout folder (one sub-folder per genre) "
            "and restart, or train from the command line with `genreflow train DATA_DIR`.",
        )  # fmt: skip
    if not data_dir.is_dir():
        raise ApiError(
            422, "training_data_missing", "Training data missing",
            f"GENREFLOW_TRAIN_DATA_DIR={data_dir} is not a folder. Create it with one "
            "sub-folder of audio files per genre (or `genreflow demo-data DIR`).",
        )  # fmt: skip
    db = get_db()
    busy = db.scalars(
        select(TrainingRun)
        .where(TrainingRun.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]))
        .order_by(TrainingRun.created_at.desc())
    ).first()
    if busy is not None:
        raise ApiError(
            409, "training_in_progress", "Training already in progress",
            f"Training run {busy.id} is {busy.status}; wait for it to finish.",
            headers={"Location": busy.links["self"]}, training_run_id=busy.id,
        )  # fmt: skip
    run = TrainingRun(
        status=RunStatus.QUEUED.value,
        trigger=RunTrigger.API.value,
        data_dir=str(data_dir),
        progress=0.0,
        activated=False,
    )
    db.add(run)
    db.commit()
    try:
        get_queue().send(TASK_TRAIN_MODEL, [run.id], queue=QUEUE_TRAIN)
    except QueueUnavailable as exc:
        run.status, run.error_code, run.error_detail = RunStatus.FAILED.value, exc.code, exc.detail
        run.finished_at = utcnow()
        db.commit()
        raise ApiError(
            503, exc.code, exc.title, exc.detail,
            headers={"Retry-After": "5"}, training_run_id=run.id,
        ) from exc  # fmt: skip
    return run.to_dict(), 202, {"Location": run.links["self"]}


@bp.get("/training-runs")
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
@bp.output(TrainingRunOut)
@bp.doc(summary="Get a training run", responses=[404])
def get_training_run(run_id: str) -> dict[str, Any]:
    """Return one training run."""
    run = get_db().get(TrainingRun, run_id)
    if run is None:
        raise TrainingRunNotFound(f"No training run has id {run_id!r}.")
    return run.to_dict()
