"""Jobs: upload a song, follow its classification, fetch its audio and deliveries, delete it."""

from __future__ import annotations

import mimetypes
from functools import partial
from pathlib import Path
from typing import Any

from apiflask import APIBlueprint
from flask import request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from shared.core.audio.probe import probe_audio
from shared.errors import (
    EmptyAudio,
    InvalidWebhookUrl,
    JobNotFound,
    MissingFile,
    UnsupportedMediaType,
)
from shared.lifecycle.deletion import delete_job, release_audio
from shared.lifecycle.job_shape import job_links
from shared.lifecycle.jobs import Upload, require_active_model, submit_job
from shared.lifecycle.webhook_targets import check_webhook_target
from shared.store.columns import utcnow
from shared.store.disk import is_disk_full, require_free_space, storage_full_error
from shared.store.orm import Job, WebhookDelivery
from web.api import API_PREFIX
from web.api.pagination import paginate
from web.api.schemas import (
    DeliveryListOut,
    JobOut,
    JobPageOut,
    JobQuery,
    JobUploadIn,
    ListQuery,
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


def find_readable_job(job_id: str) -> Job:
    """Return the job ``job_id`` if the caller may read it, else raise :class:`JobNotFound`."""
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
        "done (a copy of the earlier result). 503 when no model is active, the database is "
        "unreachable (`database_unavailable`, no job row) or the task queue is unreachable "
        "(the file and the job row are kept; the job is marked failed with code "
        "`queue_unavailable`). 507 with Retry-After when storing the song would leave less "
        "free disk space than GENREFLOW_MIN_FREE_MB, or the disk fills up while storing it "
        "(nothing is kept). 429 with Retry-After over an upload limit; every answer says where "
        "the caller stands in X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset."
    ),
    responses=[200, 400, 413, 415, 422, 429, 503, 507],
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
    require_free_space(settings, incoming_bytes=request.content_length or 0)
    stored = store_upload(
        upload.stream,
        settings.upload_dir,
        extension,
        max_bytes=settings.max_upload_bytes,
        check=partial(probe_audio, max_duration_s=settings.max_duration_s, name=filename),
    )
    upload_row = Upload(
        filename,
        stored.path,
        stored.sha256,
        stored.size_bytes,
        webhook_url,
        api_key_id=current_principal().key_id,
    )
    try:
        job, copied = submit_job(db, upload_row, model_version=model.version, queue=get_queue())
    except DBAPIError as exc:
        if not is_disk_full(exc):
            raise
        db.rollback()  # the database is full: keep no file that no job holds
        release_audio(db, str(stored.path), held_since=utcnow())
        raise storage_full_error("recording the job") from exc
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
    return find_readable_job(job_id)


@bp.delete("/jobs/<job_id>")
@requires(Access.CLIENT)
@bp.output({}, status_code=204, description="Job deleted")
@bp.doc(
    summary="Delete a job, its result, label, webhook deliveries and audio",
    description=(
        "Whoever may read the job may delete it. Its audio file goes too unless another job "
        "holds the same bytes. A queued job is deleted and its worker drops it; a job being "
        "classified right now answers 409 with Retry-After. The job is 404 afterwards."
    ),
    responses=[404, 409],
)
def delete_job_view(job_id: str) -> ResponseReturnValue:
    """Delete one job and everything it keeps."""
    delete_job(get_db(), find_readable_job(job_id))
    return ""


@bp.get("/jobs/<job_id>/audio")
@requires(Access.CLIENT)
@bp.doc(summary="Download the uploaded audio", responses=[404])
def get_job_audio(job_id: str) -> ResponseReturnValue:
    """Send the job's stored upload (supports Range requests for the page's player)."""
    job = find_readable_job(job_id)
    path = Path(job.upload_path)
    if job.audio_expired_at is not None or not path.is_file():
        raise JobNotFound(
            f"The audio of job {job_id!r} is no longer stored (uploads are kept for "
            "GENREFLOW_AUDIO_RETENTION_DAYS)."
        )
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
@bp.input(ListQuery, location="query", arg_name="query")
@bp.output(DeliveryListOut)
@bp.doc(summary="List a job's webhook deliveries", responses=[400, 404])
def list_deliveries(job_id: str, query: dict[str, Any]) -> dict[str, Any]:
    """Return every webhook delivery attempt of a job, oldest first."""
    del query  # it has no members: only checked for unknown ones
    job = find_readable_job(job_id)
    rows = get_db().scalars(
        select(WebhookDelivery).where(WebhookDelivery.job_id == job.id).order_by(WebhookDelivery.id)
    )
    return {"items": list(rows)}
