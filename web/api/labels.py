"""Labels: users say which genre a song really is; admins review the labels of other keys."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from shared.lifecycle.job_shape import label_fields
from shared.lifecycle.labels import decide_label, find_label, remove_label, set_label
from shared.store.orm import JobLabel
from web.api import API_PREFIX
from web.api.jobs import find_readable_job
from web.api.label_schemas import LabelIn, LabelOut, LabelPageOut, LabelQuery
from web.api.pagination import paginate
from web.api.schemas import JobLabelOut
from web.auth import Access, current_principal, requires
from web.context import get_db

bp = APIBlueprint("labels", __name__, url_prefix=API_PREFIX, tag="Labels")


@bp.put("/jobs/<job_id>/label")
@requires(Access.CLIENT)
@bp.input(LabelIn, arg_name="body")
@bp.output(JobLabelOut)
@bp.doc(
    summary="Say which genre the song really is",
    description=(
        "Whoever may read the job may label it; the genre may be one the model does not know. "
        "An admin's label is approved at once; any other is pending until an admin approves "
        "it. Approved labels, with their audio, join the next training run (their audio is "
        "kept until the label is removed or rejected). 409 when the job has no result or its "
        "audio is no longer stored; 422 when the genre is not a plain name."
    ),
    responses=[404, 409, 422],
)
def put_label(job_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Record (or replace) the job's label."""
    principal = current_principal()
    label = set_label(
        get_db(),
        find_readable_job(job_id),
        body["genre"],
        api_key_id=principal.key_id,
        by_admin=principal.is_admin,
    )
    return label_fields(label)


@bp.get("/jobs/<job_id>/label")
@requires(Access.CLIENT)
@bp.output(JobLabelOut)
@bp.doc(summary="Get the job's label", responses=[404])
def get_label(job_id: str) -> dict[str, Any]:
    """Return the job's label."""
    return label_fields(find_label(get_db(), find_readable_job(job_id).id))


@bp.delete("/jobs/<job_id>/label")
@requires(Access.CLIENT)
@bp.output({}, status_code=204, description="Label removed")
@bp.doc(
    summary="Remove the job's label (its audio then follows the normal retention)",
    responses=[404],
)
def delete_label(job_id: str) -> ResponseReturnValue:
    """Remove the job's label."""
    remove_label(get_db(), find_readable_job(job_id))
    return ""


@bp.get("/labels")
@requires(Access.ADMIN)
@bp.input(LabelQuery, location="query")
@bp.output(LabelPageOut)
@bp.doc(summary="List labels, newest first (e.g. ?status=pending to review)", responses=[400])
def list_labels(query_data: dict[str, Any]) -> dict[str, Any]:
    """Return a page of labels, newest first, optionally filtered by status."""
    query = select(JobLabel)
    if query_data.get("status"):
        query = query.where(JobLabel.status == query_data["status"])
    return paginate(
        get_db(),
        query,
        order_by=(JobLabel.created_at.desc(), JobLabel.id.desc()),
        page=query_data["page"],
        per_page=query_data["per_page"],
    )


@bp.post("/labels/<job_id>/approve")
@requires(Access.ADMIN)
@bp.output(LabelOut)
@bp.doc(summary="Approve a job's label: it becomes training data", responses=[404])
def approve_label(job_id: str) -> JobLabel:
    """Approve the label of job ``job_id``."""
    return decide_label(get_db(), job_id, approve=True)


@bp.post("/labels/<job_id>/reject")
@requires(Access.ADMIN)
@bp.output(LabelOut)
@bp.doc(summary="Reject a job's label: it is not training data", responses=[404])
def reject_label(job_id: str) -> JobLabel:
    """Reject the label of job ``job_id`` (approved ones too)."""
    return decide_label(get_db(), job_id, approve=False)
