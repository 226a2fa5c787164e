"""APIFlask (marshmallow) schemas: they document ``/openapi.json`` and own the JSON shape.

Views return ORM rows; each ``*Out`` schema turns its row into the shape of
``docs/architecture.md`` (times in ISO 8601 UTC) and adds the row's links. The ORM knows no URLs.
The job's shape itself is :func:`shared.lifecycle.job_shape.job_fields`, which the worker uses
for webhook bodies; :func:`dump_job` dumps it through :class:`JobOut`.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields
from apiflask.validators import Length, OneOf, Range
from marshmallow import INCLUDE, RAISE, ValidationError, pre_dump, validates_schema

from shared.core.nets.recipe import recipe_json_schema
from shared.core.nets.sidecar import model_card_path
from shared.lifecycle.job_shape import job_fields, job_links, label_fields
from shared.store.keys import MAX_NAME_CHARS as MAX_KEY_NAME_CHARS
from shared.store.orm import (
    ApiKey,
    Job,
    JobLabel,
    JobStatus,
    KeyScope,
    LabelStatus,
    ModelVersion,
    RunStatus,
    TrainingRun,
    WebhookDelivery,
    isoformat,
)
from web.api import API_PREFIX

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


class PageQuery(Schema):
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


class LabelIn(Schema):
    """The body of ``PUT /api/v1/jobs/<id>/label``."""

    genre = fields.String(
        required=True,
        metadata={
            "description": "the song's real genre (may be new to the model)",
            "example": "jazz",
        },
    )


class LabelOut(JobLabelOut):
    """A label with its job, as the review listing shows it."""

    job_id = fields.String()
    filename = fields.String()
    links = fields.Dict(keys=fields.String(), values=fields.String())

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, JobLabel):
            return data
        links = job_links(data.job_id)
        return {
            **label_fields(data),
            "job_id": data.job_id,
            "filename": data.job.filename,
            "links": {"job": links["self"], "audio": links["audio"], "self": links["label"]},
        }


class LabelItemOut(LabelOut):
    """A label inside a listing (a distinct class for the reason given at ModelItemOut)."""


class LabelQuery(PageQuery):
    """Query parameters of ``GET /api/v1/labels`` (an unknown one is a 400, not ignored)."""

    status = fields.String(validate=OneOf([s.value for s in LabelStatus]))

    @validates_schema(pass_original=True)
    def _no_unknown(self, _data: Any, original: Any, **_: Any) -> None:
        unknown = sorted(set(original or {}) - set(self.fields))
        if unknown:
            raise ValidationError({name: ["Unknown query parameter."] for name in unknown})


class LabelPageOut(PageOut):
    """A page of labels, newest first."""

    items = fields.List(fields.Nested(LabelItemOut))


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


class ModelOut(Schema):
    """A registered model version."""

    version = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    active = fields.Boolean()
    genres = fields.List(fields.String())
    metrics = fields.Raw(allow_none=True)
    feature_config = fields.Raw(allow_none=True)
    data_fingerprint = fields.String(allow_none=True)
    training_run_id = fields.String(allow_none=True)
    links = fields.Dict(keys=fields.String(), values=fields.String())

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, ModelVersion):
            return data
        base = f"{API_PREFIX}/models/{data.version}"
        return {
            "version": data.version,
            "created_at": isoformat(data.created_at),
            "active": data.active,
            "genres": data.genres,
            "metrics": data.metrics,
            "feature_config": data.feature_config,
            "data_fingerprint": data.data_fingerprint,
            "training_run_id": data.training_run_id,
            "links": {
                "self": base,
                "activate": f"{base}/activate",
                "confusion_matrix": f"{base}/confusion-matrix.png",
                **({"card": f"{base}/card"} if model_card_path(data.path) else {}),
            },
        }


class ModelItemOut(ModelOut):
    """A model version inside a listing.

    Same fields as :class:`ModelOut`. A distinct class because APIFlask sorts routes by length
    and would otherwise meet ``ModelOut`` nested first and register it twice.
    """


class ModelListOut(Schema):
    """Every registered model (newest first) and the active version."""

    items = fields.List(fields.Nested(ModelItemOut))
    active_version = fields.String(allow_none=True)


class RunErrorOut(Schema):
    """The ``error`` member of a failed training run."""

    code = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)


class TrainIn(Schema):
    """The optional JSON body of ``POST /api/v1/models/train``; only ``recipe`` is read."""

    class Meta:
        """Members other than ``recipe`` are refused (``additionalProperties: false``)."""

        unknown = RAISE

    recipe = fields.Raw(
        allow_none=True,
        metadata={
            "description": "the recipe to train with: a name (the benchmark's variants) or a "
            "recipe object (absent members take the seed recipe's values); absent or null: the "
            "active model's recipe",
            "example": "musicnn-pool",
            **recipe_json_schema(),
        },
    )


class TrainingRunOut(Schema):
    """A training run."""

    id = fields.String()
    status = fields.String(validate=OneOf([s.value for s in RunStatus]))
    progress = fields.Float()
    stage = fields.String(allow_none=True)
    trigger = fields.String()
    created_at = fields.String(metadata={"format": "date-time"})
    started_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    finished_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    model_version = fields.String(allow_none=True)
    activated = fields.Boolean()
    metrics = fields.Raw(allow_none=True)
    error = fields.Nested(RunErrorOut, allow_none=True)
    links = fields.Dict(keys=fields.String(), values=fields.String(allow_none=True))

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, TrainingRun):
            return data
        error = None
        if data.error_code or data.error_detail:
            error = {"code": data.error_code or "training_failed", "detail": data.error_detail}
        model = f"{API_PREFIX}/models/{data.model_version}" if data.model_version else None
        return {
            "id": data.id,
            "status": data.status,
            "progress": data.progress,
            "stage": data.stage,
            "trigger": data.trigger,
            "created_at": isoformat(data.created_at),
            "started_at": isoformat(data.started_at),
            "finished_at": isoformat(data.finished_at),
            "model_version": data.model_version,
            "activated": data.activated,
            "metrics": data.metrics,
            "error": error,
            "links": {"self": training_run_link(data.id), "model": model},
        }


def training_run_link(run_id: str) -> str:
    """Return the API path of a training run."""
    return f"{API_PREFIX}/training-runs/{run_id}"


class TrainingRunPageOut(PageOut):
    """A page of training runs, newest first."""

    items = fields.List(fields.Nested(TrainingRunOut))


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


class KeyIn(Schema):
    """A key to create: a label and a scope."""

    name = fields.String(
        required=True,
        validate=Length(min=1, max=MAX_KEY_NAME_CHARS),
        metadata={"description": "who or what uses the key", "example": "mobile app"},
    )
    scope = fields.String(
        required=True,
        validate=OneOf([s.value for s in KeyScope]),
        metadata={"description": "classify: upload, read own jobs; admin: everything"},
    )


class KeyOut(Schema):
    """An API key as listed: never the key itself, only its first characters."""

    id = fields.String()
    name = fields.String()
    scope = fields.String(validate=OneOf([s.value for s in KeyScope]))
    prefix = fields.String(metadata={"description": "the key's first characters"})
    created_at = fields.String(metadata={"format": "date-time"})
    revoked_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    active = fields.Boolean()
    links = fields.Dict(keys=fields.String(), values=fields.String())

    @pre_dump
    def _from_row(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, ApiKey):
            return data
        return dump_key(data)


def dump_key(key: ApiKey) -> dict[str, Any]:
    """Return the API shape of a key (never the key itself nor its hash)."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "created_at": isoformat(key.created_at),
        "revoked_at": isoformat(key.revoked_at),
        "active": key.active,
        "links": {"self": f"{API_PREFIX}/keys/{key.id}"},
    }


class NewKeyOut(KeyOut):
    """A key just created, with the key itself: shown this once, stored only as a hash."""

    key = fields.String(metadata={"description": "send as 'Authorization: Bearer <key>'"})


class KeyItemOut(KeyOut):
    """An API key inside a listing (a distinct class for the reason given at ModelItemOut)."""


class KeyListOut(Schema):
    """Every API key, newest first (revoked ones included)."""

    items = fields.List(fields.Nested(KeyItemOut))


class WhoAmIOut(Schema):
    """The caller as the server sees it."""

    authenticated = fields.Boolean()
    key_id = fields.String(allow_none=True)
    scope = fields.String(allow_none=True)
    can_upload = fields.Boolean()
    can_admin = fields.Boolean()
    keys_required = fields.Boolean()
