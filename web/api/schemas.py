"""APIFlask (marshmallow) schemas: they document ``/openapi.json`` and own the JSON shape.

Views return ORM rows; each ``*Out`` schema turns its row into the shape of
``docs/architecture.md`` (times in ISO 8601 UTC) and adds the row's links. The ORM knows no URLs.
This module holds what every resource shares (problems, paging, listing queries), a job's shape
and the health answers; labels, models and training runs, and keys have their own modules
(:mod:`web.api.label_schemas`, :mod:`web.api.model_schemas`, :mod:`web.api.key_schemas`).
The job's shape itself is :func:`shared.lifecycle.job_shape.job_fields`, which the worker uses
for webhook bodies; :func:`dump_job` dumps it through :class:`JobOut`.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields
from apiflask.validators import OneOf, Range
from marshmallow import INCLUDE, ValidationError, pre_dump, validates_schema

from shared.lifecycle.job_shape import job_fields
from shared.store.columns import isoformat
from shared.store.orm import (
    Job,
    JobStatus,
    LabelStatus,
    WebhookDelivery,
)

MAX_PER_PAGE = 100
#: Far beyond any real listing, and small enough that its SQL offset fits a 64-bit integer
#: (schemathesis found ``page=4992681003377523744047104`` answered 500 without it).
MAX_PAGE = 1_000_000
#: What ``web.uploads.valid_webhook_url`` accepts, as the OpenAPI document says it.
WEBHOOK_URL_PATTERN = r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,200}[A-Za-z0-9])?(?:/[!-~]*)?$"


class ProblemOut(Schema):
    """An ``application/problem+json`` error body (RFC 9457).

    Extension members may follow (RFC 9457 §3.2): ``errors`` (which fields were invalid),
    ``job_id`` / ``training_run_id`` (what was kept), ``checks`` and ``failed`` (``/ready``).
    """

    class Meta:
        """Extension members are part of the shape (``additionalProperties: true``)."""

        unknown = INCLUDE

    type = fields.String(metadata={"example": "urn:genreflow:problem:job_not_found"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String()


class ErrorOut(Schema):
    """The ``error`` member of a failed job."""

    code = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class SegmentOut(Schema):
    """One 3-second segment's prediction."""

    index = fields.Integer()
    start = fields.Float()
    end = fields.Float()
    genre = fields.String()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())


class SoundsLikeOut(Schema):
    """One of AudioSet's music genres a song sounds like, with its score."""

    name = fields.String(
        metadata={
            "description": "An AudioSet class name, as AudioSet spells it.",
            "example": "Heavy metal",
        }
    )
    score = fields.Float(
        metadata={
            "description": "The class's sigmoid score, averaged over the song's heard segments.",
            "example": 0.45,
        }
    )


class PredictionOut(Schema):
    """A song's predicted genre: calibrated probabilities, votes and the per-segment detail."""

    genre = fields.String(
        metadata={"description": "The answer; when `uncertain`, only the closest genre."}
    )
    confidence = fields.Float(metadata={"description": "Calibrated probability of `genre`."})
    uncertain = fields.Boolean(
        metadata={
            "description": "The model is not sure: the probability is under the model's "
            "threshold, or the audio sounds unlike anything it was trained on."
        }
    )
    uncertain_reason = fields.String(
        allow_none=True,
        validate=OneOf(["low_confidence", "unfamiliar_sound"]),
        metadata={"description": "Why the answer is uncertain (null when it is not)."},
    )
    model_version = fields.String(allow_none=True)
    duration_s = fields.Float()
    n_segments = fields.Integer()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())
    votes = fields.Dict(keys=fields.String(), values=fields.Integer())
    segments = fields.List(fields.Nested(SegmentOut))
    sounds_like = fields.List(
        fields.Nested(SoundsLikeOut),
        allow_none=True,
        metadata={
            "description": "A second opinion in AudioSet's class names from a network trained on "
            "AudioSet (EfficientAT mn04), not one of the model's genres: the top three of "
            "AudioSet's music-genre classes, best first (null for answers stored before it)."
        },
    )


class JobLabelOut(Schema):
    """A user's label of a job: the genre it really is, and where its review stands."""

    genre = fields.String(metadata={"example": "jazz"})
    status = fields.String(validate=OneOf([s.value for s in LabelStatus]))
    predicted_genre = fields.String(allow_none=True)
    created_at = fields.String(metadata={"format": "date-time"})
    decided_at = fields.String(allow_none=True, metadata={"format": "date-time"})


class JobLabelOnJobOut(JobLabelOut):
    """A job's label inside the job (a distinct class for the reason given at ModelItemOut)."""


class JobOut(Schema):
    """A classification job."""

    id = fields.String()
    status = fields.String(validate=OneOf([s.value for s in JobStatus]))
    progress = fields.Float()
    filename = fields.String()
    size_bytes = fields.Integer()
    created_at = fields.String(metadata={"format": "date-time"})
    started_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    finished_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    model_version = fields.String(allow_none=True)
    webhook_url = fields.String(allow_none=True)
    error = fields.Nested(ErrorOut, allow_none=True)
    result = fields.Nested(PredictionOut, allow_none=True)
    label = fields.Nested(JobLabelOnJobOut, allow_none=True)
    audio_expired_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    links = fields.Dict(keys=fields.String(), values=fields.String())

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        return job_fields(data) if isinstance(data, Job) else data


def dump_job(job: Job) -> dict[str, Any]:
    """Return the API shape of ``job`` (equal to :func:`~shared.lifecycle.job_shape.job_fields`)."""
    return JobOut().dump(job)


class JobUploadIn(Schema):
    """The multipart upload of ``POST /api/v1/jobs``."""

    file = fields.File(required=True, metadata={"description": "the song (mp3, wav, flac...)"})
    webhook_url = fields.String(
        metadata={
            "description": "optional http(s) URL called when the job finishes; it must reach "
            "a public address (loopback, link-local and private ones are refused)",
            "pattern": WEBHOOK_URL_PATTERN,
            "maxLength": 2048,
        }
    )


class ListQuery(Schema):
    """A listing's query parameters: an unknown one is a 400 that names it, never ignored."""

    @validates_schema(pass_original=True)
    def _no_unknown(self, _data: Any, original: Any, **_: Any) -> None:
        unknown = sorted(set(original or {}) - set(self.fields))
        if unknown:
            raise ValidationError({name: ["Unknown query parameter."] for name in unknown})


class PageQuery(ListQuery):
    """Pagination query parameters."""

    page = fields.Integer(load_default=1, validate=Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=Range(min=1, max=MAX_PER_PAGE))


class JobQuery(PageQuery):
    """Query parameters of ``GET /api/v1/jobs``."""

    status = fields.String(validate=OneOf([s.value for s in JobStatus]))


class PageOut(Schema):
    """The paging fields of every listing (see ``web.api.pagination.paginate``)."""

    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class JobPageOut(PageOut):
    """A page of jobs, newest first."""

    items = fields.List(fields.Nested(JobOut))


class DeliveryOut(Schema):
    """One webhook delivery attempt."""

    id = fields.Integer()
    job_id = fields.String()
    event_type = fields.String()
    message_id = fields.String()
    attempt = fields.Integer()
    url = fields.String()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Float(allow_none=True)
    succeeded = fields.Boolean()
    created_at = fields.String(metadata={"format": "date-time"})

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, WebhookDelivery):
            return data
        return {
            **{name: getattr(data, name) for name in _DELIVERY_FIELDS},
            "created_at": isoformat(data.created_at),
        }


_DELIVERY_FIELDS = (
    "id", "job_id", "event_type", "message_id", "attempt", "url", "status_code", "error",
    "duration_ms", "succeeded",
)  # fmt: skip


class DeliveryListOut(Schema):
    """A job's webhook deliveries, oldest first."""

    items = fields.List(fields.Nested(DeliveryOut))


class HealthOut(Schema):
    """Liveness answer."""

    status = fields.String(metadata={"example": "ok"})


class CheckOut(Schema):
    """One readiness check."""

    ok = fields.Boolean()
    detail = fields.String()


class ReadyOut(Schema):
    """Readiness answer: every check and whether it passed."""

    status = fields.String(metadata={"example": "ready"})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckOut))
