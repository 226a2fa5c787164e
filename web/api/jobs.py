"""Jobs: upload a song, follow its classification, fetch its audio and webhook deliveries."""

from __future__ import annotations

import mimetypes
from functools import partial
from pathlib import Path
from typing import Any

from apiflask import APIBlueprint
from flask import request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from shared.core.probe import probe_audio
from shared.errors import (
    EmptyAudio,
    InvalidWebhookUrl,
    JobNotFound,
    MissingFile,
    UnsupportedMediaType,
)
from shared.lifecycle.job_shape import job_links
from shared.lifecycle.jobs import Upload, require_active_model, submit_job
from shared.lifecycle.webhook_targets import check_webhook_target
from shared.store.orm import Job, WebhookDelivery
from web.api import API_PREFIX
from web.api.pagination import paginate
from web.api.schemas import (
    DeliveryListOut,
    JobOut,
    JobPageOut,
    JobQuery,
    JobUploadIn,
)
from web.auth import Access, can_read_job, current_principal, requires, visible_jobs
from web.context import get_db, get_queue, get_settings
from web.limits import limit_uploads
from web.uploads import (
    audio_extension,
    clean_filename,
    looks_like_non_audio,
    store_upload,
    valid_webhook_url,
)

SNIFF_BYTES = 64

bp = APIBlueprint("jobs", __name__, url_prefix=API_PREFIX, tag="Jobs")


def _find_job(job_id: str) -> Job:
    job = get_db().get(Job, job_id)
    if job is None or not can_read_job(job, current_principal()):
        raise JobNotFound(f"No job has id {job_id!r}.")
    return job


@bp.post("/jobs")
@requires(Access.CLIENT)
@limit_uploads
@bp.input(JobUploadIn, location="form_and_files", validation=False)
@bp.output(JobOut, status_code=202, description="Job accepted and queued")
@bp.doc(
    summary="Upload a song to classify",
    description=(
        "Answers 202 with the queued job and a Location header. When the same bytes were "
        "already classified by the active model, answers 200 with a new job that is already "
        "done (a copy of the earlier result). 503 when no model is active or the task queue is "
        "unreachable (the file and the job row are kept; the job is marked failed with code "
        "`queue_unavailable`)."
    ),
    responses=[200, 400, 413, 415, 422, 429, 503],
)
def create_job(form_and_files_data: Any = None) -> ResponseReturnValue:
    """Accept an upload: validate, store durably, then submit the job (commit, enqueue)."""
    del form_and_files_data  # parsed by hand below for precise status codes
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise MissingFile()
    webhook_url = (request.form.get("webhook_url") or "").strip() or None
    if webhook_url is not None and not valid_webhook_url(webhook_url):
        raise InvalidWebhookUrl(
            f"webhook_url must be an absolute http(s) URL, got {webhook_url[:200]!r}."
        )
    if webhook_url is not None:
        check_webhook_target(webhook_url, allow_private=get_settings().webhook_allow_private)
    filename = clean_filename(upload.filename)
    extension = audio_extension(filename, upload.mimetype)
    head = upload.stream.read(SNIFF_BYTES)
    upload.stream.seek(0)
    if extension is None or looks_like_non_audio(head):
        raise UnsupportedMediaType(
            f"{filename!r} ({upload.mimetype or 'no content type'}) is not a supported audio "
            "file; send mp3, wav, flac, ogg, au or m4a."
        )
    if not head:
        raise EmptyAudio(f"{filename!r} is empty.")
    db = get_db()
    settings = get_settings()
    model = require_active_model(db, model_dir=settings.model_dir)
    stored = store_upload(
        upload.stream,
        settings.upload_dir,
        extension,
        max_bytes=settings.max_upload_bytes,
        check=partial(probe_audio, max_duration_s=settings.max_duration_s, name=filename),
    )
    job, copied = submit_job(
        db,
        Upload(
            filename,
            stored.path,
            stored.sha256,
            stored.size_bytes,
            webhook_url,
            api_key_id=current_principal().key_id,
        ),
        model_version=model.version,
        queue=get_queue(),
    )
    return job, 200 if copied else 202, {"Location": job_links(job.id)["self"]}


@bp.get("/jobs")
@requires(Access.CLIENT)
@bp.input(JobQuery, location="query")
@bp.output(JobPageOut)
@bp.doc(summary="List jobs, newest first", responses=[400])
def list_jobs(query_data: dict[str, Any]) -> dict[str, Any]:
    """Return a page of jobs, newest first, optionally filtered by status."""
    page, per_page = query_data["page"], query_data["per_page"]
    base = visible_jobs(select(Job), current_principal())
    if query_data.get("status"):
        base = base.where(Job.status == query_data["status"])
    return paginate(
        get_db(),
        base,
        order_by=(Job.created_at.desc(), Job.id.desc()),
        page=page,
        per_page=per_page,
    )


@bp.get("/jobs/<job_id>")
@requires(Access.CLIENT)
@bp.output(JobOut)
@bp.doc(summary="Get a job", responses=[404])
def get_job(job_id: str) -> Job:
    """Return one job."""
    return _find_job(job_id)


@bp.get("/jobs/<job_id>/audio")
@requires(Access.CLIENT)
@bp.doc(summary="Download the uploaded audio", responses=[404])
def get_job_audio(job_id: str) -> ResponseReturnValue:
    """Send the job's stored upload (supports Range requests for the page's player)."""
    job = _find_job(job_id)
    path = Path(job.upload_path)
    if not path.is_file():
        raise JobNotFound(f"The audio of job {job_id!r} is no longer stored.")
    mimetype = mimetypes.guess_type(job.filename)[0] or mimetypes.guess_type(path.name)[0]
    return send_file(
        path,
        mimetype=mimetype or "application/octet-stream",
        download_name=job.filename,
        conditional=True,
        max_age=3600,
    )


@bp.get("/jobs/<job_id>/deliveries")
@requires(Access.CLIENT)
@bp.output(DeliveryListOut)
@bp.doc(summary="List a job's webhook deliveries", responses=[404])
def list_deliveries(job_id: str) -> dict[str, Any]:
    """Return every webhook delivery attempt of a job, oldest first."""
    job = _find_job(job_id)
    rows = get_db().scalars(
        select(WebhookDelivery).where(WebhookDelivery.job_id == job.id).order_by(WebhookDelivery.id)
    )
    return {"items": list(rows)}
