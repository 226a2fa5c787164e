"""APIFlask (marshmallow) schemas: they document ``/openapi.json`` and shape the responses.

The dicts come from the ORM's ``to_dict()``; these schemas mirror ``docs/architecture.md``.
"""

from __future__ import annotations

from apiflask import Schema, fields
from apiflask.validators import OneOf, Range

from shared.models import JobStatus, RunStatus

MAX_PER_PAGE = 100


class ProblemOut(Schema):
    """An ``application/problem+json`` error body (RFC 9457)."""

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


class PredictionOut(Schema):
    """A song's predicted genre: segment mean, votes and the per-segment detail."""

    genre = fields.String()
    confidence = fields.Float()
    model_version = fields.String(allow_none=True)
    duration_s = fields.Float()
    n_segments = fields.Integer()
    probabilities = fields.Dict(keys=fields.String(), values=fields.Float())
    votes = fields.Dict(keys=fields.String(), values=fields.Integer())
    segments = fields.List(fields.Nested(SegmentOut))


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
    links = fields.Dict(keys=fields.String(), values=fields.String())


class JobUploadIn(Schema):
    """The multipart upload of ``POST /api/v1/jobs``."""

    file = fields.File(required=True, metadata={"description": "the song (mp3, wav, flac...)"})
    webhook_url = fields.String(
        metadata={"description": "optional http(s) URL called when the job finishes"}
    )


class PageQuery(Schema):
    """Pagination query parameters."""

    page = fields.Integer(load_default=1, validate=Range(min=1))
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
