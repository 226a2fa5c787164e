"""Schemas of users' labels: the body of a label, and the review listing's shape and query."""

from __future__ import annotations

from typing import Any

from apiflask import Schema, fields
from apiflask.validators import OneOf
from marshmallow import pre_dump

from shared.lifecycle.job_shape import job_links, label_fields
from shared.store.orm import JobLabel, LabelStatus
from web.api.schemas import JobLabelOut, PageOut, PageQuery


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
    """Query parameters of ``GET /api/v1/labels``."""

    status = fields.String(validate=OneOf([s.value for s in LabelStatus]))


class LabelPageOut(PageOut):
    """A page of labels, newest first."""

    items = fields.List(fields.Nested(LabelItemOut))
