"""Jobs: upload a song, follow its classification, fetch its audio and webhook deliveries."""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Any

from apiflask import APIBlueprint
from flask import request, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from shared.celery_config import (
    QUEUE_PREDICT,
    QUEUE_WEBHOOKS,
    TASK_CLASSIFY_SONG,
    TASK_DELIVER_WEBHOOK,
)
from shared.errors import EmptyAudio, JobNotFound
from shared.models import Job, JobStatus, ModelVersion, Prediction, WebhookDelivery, utcnow
from shared.registry import active_model, scan_model_dir
from shared.webhooks import EVENT_COMPLETED
from web.api import API_PREFIX
from web.api.pagination import paginate
from web.api.schemas import DeliveryListOut, JobOut, JobPageOut, JobQuery, JobUploadIn
from web.context import get_db, get_queue, get_settings
from web.errors import ApiError
from web.queue import QueueUnavailable
from web.uploads import (
    UploadTooLargeError,
    audio_extension,
    clean_filename,
    looks_like_non_audio,
    store_upload,
    valid_webhook_url,
)

log = logging.getLogger(__name__)

SNIFF_BYTES = 64

bp = APIBlueprint("jobs", __name__, url_prefix=API_PREFIX, tag="Jobs")

NO_MODEL_DETAIL = (
    "No model is active, so songs cannot be classified yet. Train one with "
    "`genreflow train DATA_DIR --out $GENREFLOW_MODEL_DIR` on a GTZAN-layout folder, or set "
    "GENREFLOW_TRAIN_DATA_DIR and `POST /api/v1/models/train`; for a synthetic demo run "
    "`genreflow demo-data DIR` and then train on DIR."
)


def _find_job(job_id: str) -> Job:
    job = get_db().get(Job, job_id)
    if job is None:
        raise JobNotFound(f"No job has id {job_id!r}.")
    return job


def _require_active_model() -> ModelVersion:
    db = get_db()
    model = active_model(db)
    if model is None:
        scan_model_dir(db, get_settings())  # a model trained by the CLI into the model dir
        db.commit()
        model = active_model(db)
    if model is None:
        raise ApiError(503, "no_active_model", "No active model", NO_MODEL_DETAIL)
    return model


@bp.post("/jobs")
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
    responses=[200, 400, 413, 415, 422, 503],
)
def create_job(form_and_files_data: Any = None) -> ResponseReturnValue:
    """Accept an upload: validate, store durably, commit the job, then enqueue it."""
    del form_and_files_data  # parsed by hand below for precise status codes
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(
            400, "missing_file", "No file uploaded",
            "Send the song as multipart/form-data in a field named 'file'.",
        )  # fmt: skip
    webhook_url = (request.form.get("webhook_url") or "").strip() or None
    if webhook_url is not None and not valid_webhook_url(webhook_url):
        raise ApiError(
            400, "invalid_webhook_url", "Invalid webhook URL",
            f"webhook_url must be an absolute http(s) URL, got {webhook_url[:200]!r}.",
        )  # fmt: skip
    filename = clean_filename(upload.filename)
    extension = audio_extension(filename, upload.mimetype)
    head = upload.stream.read(SNIFF_BYTES)
    upload.stream.seek(0)
    if extension is None or looks_like_non_audio(head):
        raise ApiError(
            415, "unsupported_media_type", "Not an audio file",
            f"{filename!r} ({upload.mimetype or 'no content type'}) is not a supported audio "
            "file; send mp3, wav, flac, ogg, au or m4a.",
        )  # fmt: skip
    if not head:
        raise EmptyAudio(f"{filename!r} is empty.")
    model = _require_active_model()

    settings = get_settings()
    try:
        stored = store_upload(
            upload.stream, settings.upload_dir, extension, max_bytes=settings.max_upload_bytes
        )
    except UploadTooLargeError:
        raise ApiError(
            413, "upload_too_large", "Upload too large",
            f"The upload is larger than the {settings.max_upload_mb} MiB limit "
            "(GENREFLOW_MAX_UPLOAD_MB).",
        ) from None  # fmt: skip

    db = get_db()
    job = Job(
        filename=filename,
        upload_path=str(stored.path),
        content_sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        webhook_url=webhook_url,
        status=JobStatus.QUEUED.value,
        progress=0.0,
        attempts=0,
    )
    earlier = _earlier_result(stored.sha256, model.version)
    if earlier is not None:
        now = utcnow()
        job.status, job.progress, job.model_version = JobStatus.DONE.value, 1.0, model.version
        job.started_at = job.finished_at = now
        db.add(job)
        db.flush()
        job.prediction = _copy_prediction(earlier, job.id)
        db.commit()
        log.info("job %s: same bytes as job %s, result copied", job.id, earlier.job_id)
        if webhook_url:
            try:
                get_queue().send(
                    TASK_DELIVER_WEBHOOK, [job.id, EVENT_COMPLETED], queue=QUEUE_WEBHOOKS
                )
            except QueueUnavailable:
                log.error("job %s: webhook not queued, broker unreachable", job.id)
        return job.to_dict(), 200, {"Location": job.links["self"]}

    db.add(job)
    db.commit()  # the row exists before any worker can see the message
    try:
        get_queue().send(TASK_CLASSIFY_SONG, [job.id], queue=QUEUE_PREDICT)
    except QueueUnavailable as exc:
        job.set_error(exc.code, exc.title, exc.detail)
        job.finished_at = utcnow()
        db.commit()
        raise ApiError(
            503, exc.code, exc.title,
            f"{exc.detail} The file was kept; upload it again to retry.",
            headers={"Retry-After": "5"}, job_id=job.id,
        ) from exc  # fmt: skip
    return job.to_dict(), 202, {"Location": job.links["self"]}


def _earlier_result(sha256: str, model_version: str) -> Prediction | None:
    query = (
        select(Prediction)
        .join(Job, Prediction.job_id == Job.id)
        .where(
            Job.content_sha256 == sha256,
            Job.model_version == model_version,
            Job.status == JobStatus.DONE.value,
        )
        .order_by(Job.finished_at.desc())
        .limit(1)
    )
    return get_db().scalars(query).first()


def _copy_prediction(source: Prediction, job_id: str) -> Prediction:
    return Prediction(
        job_id=job_id,
        genre=source.genre,
        confidence=source.confidence,
        probabilities=source.probabilities,
        votes=source.votes,
        segments=source.segments,
        duration_s=source.duration_s,
        n_segments=source.n_segments,
    )


@bp.get("/jobs")
@bp.input(JobQuery, location="query")
@bp.output(JobPageOut)
@bp.doc(summary="List jobs, newest first", responses=[400])
def list_jobs(query_data: dict[str, Any]) -> dict[str, Any]:
    """Return a page of jobs, newest first, optionally filtered by status."""
    page, per_page = query_data["page"], query_data["per_page"]
    base = select(Job)
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
@bp.output(JobOut)
@bp.doc(summary="Get a job", responses=[404])
def get_job(job_id: str) -> dict[str, Any]:
    """Return one job."""
    return _find_job(job_id).to_dict()


@bp.get("/jobs/<job_id>/audio")
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
@bp.output(DeliveryListOut)
@bp.doc(summary="List a job's webhook deliveries", responses=[404])
def list_deliveries(job_id: str) -> dict[str, Any]:
    """Return every webhook delivery attempt of a job, oldest first."""
    job = _find_job(job_id)
    rows = get_db().scalars(
        select(WebhookDelivery).where(WebhookDelivery.job_id == job.id).order_by(WebhookDelivery.id)
    )
    return {"items": [row.to_dict() for row in rows]}
