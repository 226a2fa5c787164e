"""A job's public JSON shape: the API's job resource and the ``data`` of its webhook events.

Both the web (``web/api/schemas.py`` documents and serves it) and the worker (the webhook body,
:mod:`worker.tasks`) use :func:`job_fields`, so a worker host needs none of the web's code and
the two can never disagree. Plain dicts and the standard library only.
"""

from __future__ import annotations

from typing import Any, Final

from shared.store.columns import isoformat
from shared.store.orm import Job, JobLabel

#: The API's path prefix; the job's ``links`` are paths under it.
API_PREFIX: Final = "/api/v1"


def job_links(job_id: str) -> dict[str, str]:
    """Return the API paths of a job, its audio, its webhook deliveries and its label."""
    base = f"{API_PREFIX}/jobs/{job_id}"
    return {
        "self": base,
        "audio": f"{base}/audio",
        "deliveries": f"{base}/deliveries",
        "label": f"{base}/label",
    }


def label_fields(label: JobLabel) -> dict[str, Any]:
    """Return the public fields of a user's label (without its job)."""
    return {
        "genre": label.genre,
        "status": label.status,
        "predicted_genre": label.predicted_genre,
        "created_at": isoformat(label.created_at),
        "decided_at": isoformat(label.decided_at),
    }


def job_fields(job: Job) -> dict[str, Any]:
    """Return the public shape of ``job`` (see ``docs/architecture.md``, "job")."""
    error = None
    if job.error_code or job.error_detail:
        error = {"code": job.error_code, "title": job.error_title, "detail": job.error_detail}
    result = None
    if job.prediction is not None:
        stored = job.prediction
        result = {
            "genre": stored.genre,
            "confidence": stored.confidence,
            "uncertain": stored.uncertain,
            "uncertain_reason": stored.uncertain_reason,
            "sounds_like": stored.sounds_like,
            "model_version": job.model_version,
            "duration_s": stored.duration_s,
            "n_segments": stored.n_segments,
            "probabilities": stored.probabilities,
            "votes": stored.votes,
            "segments": stored.segments,
        }
    return {
        "id": job.id,
        "status": job.status,
        "progress": job.progress,
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "created_at": isoformat(job.created_at),
        "started_at": isoformat(job.started_at),
        "finished_at": isoformat(job.finished_at),
        "model_version": job.model_version,
        "webhook_url": job.webhook_url,
        "error": error,
        "result": result,
        "label": label_fields(job.label) if job.label is not None else None,
        "audio_expired_at": isoformat(job.audio_expired_at),
        "links": job_links(job.id),
    }
