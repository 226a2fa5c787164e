"""The ORM: jobs, predictions, labels, model versions, training runs and webhook deliveries.

SQLAlchemy 2.0 declarative mapping on :class:`shared.store.columns.Base`. The schema changes
only through ``migrations/``. The rows know no URLs and no JSON shapes: the API's schemas
(``web/api/schemas/``) dump them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.core.nets.sidecar import confusion_png_path
from shared.store.columns import Base, check_in, new_id, utcnow


class JobStatus(StrEnum):
    """Lifecycle of a classification job."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class RunStatus(StrEnum):
    """Lifecycle of a training run (``skipped``: the data had not changed)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


#: Statuses a job never leaves.
JOB_FINAL_STATUSES: Final = frozenset({JobStatus.DONE.value, JobStatus.FAILED.value})
#: Statuses a training run never leaves.
RUN_FINAL_STATUSES: Final = frozenset(
    {RunStatus.DONE.value, RunStatus.FAILED.value, RunStatus.SKIPPED.value}
)


class LabelStatus(StrEnum):
    """Review state of a user's label: pending until an admin approves or rejects it."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class RunTrigger(StrEnum):
    """What started a training run."""

    API = "api"
    SCHEDULE = "schedule"
    CLI = "cli"


class Job(Base):
    """One uploaded song to classify."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(check_in("status", JobStatus), name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    filename: Mapped[str] = mapped_column(String(255))
    upload_path: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_title: Mapped[str | None] = mapped_column(String(255))
    error_detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: The API key that uploaded the song (``None``: an anonymous upload on an open service).
    api_key_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), index=True
    )
    #: Last sign of life: when the job was (re-)enqueued, or its task's latest heartbeat.
    heartbeat_at: Mapped[datetime | None]
    #: When the retention sweep let the job's audio go (``None``: still kept).
    audio_expired_at: Mapped[datetime | None]

    prediction: Mapped[StoredPrediction | None] = relationship(
        back_populates="job", uselist=False, cascade="all, delete-orphan", lazy="selectin"
    )
    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="WebhookDelivery.id"
    )
    label: Mapped[JobLabel | None] = relationship(
        back_populates="job", uselist=False, cascade="all, delete-orphan", lazy="selectin"
    )

    def set_error(self, code: str, title: str, detail: str) -> None:
        """Mark the job failed with an error (the caller sets ``finished_at`` if it wants)."""
        self.status = JobStatus.FAILED.value
        self.error_code, self.error_title, self.error_detail = code, title, detail


class StoredPrediction(Base):
    """The result of one job (at most one per job)."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True, index=True
    )
    genre: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[dict[str, Any]]
    votes: Mapped[dict[str, Any]]
    segments: Mapped[list[Any]]
    duration_s: Mapped[float] = mapped_column(Float)
    n_segments: Mapped[int] = mapped_column(Integer)
    #: The model is not sure: the genre is only the closest one
    #: (see shared.core.serving.calibration).
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    uncertain_reason: Mapped[str | None] = mapped_column(String(32))
    #: AudioSet's music genres the song sounds like, ``[{"name", "score"}]`` best first: a second
    #: opinion from the AudioSet ear (shared.core.nets.audioset); null for older answers.
    sounds_like: Mapped[list[Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="prediction")

    @classmethod
    def from_result(cls, job_id: str, result: dict[str, Any]) -> StoredPrediction:
        """Build a row from :meth:`shared.core.serving.predict.Prediction.to_dict` output."""
        return cls(
            job_id=job_id,
            genre=result["genre"],
            confidence=float(result["confidence"]),
            probabilities=dict(result["probabilities"]),
            votes=dict(result["votes"]),
            segments=list(result["segments"]),
            duration_s=float(result["duration_s"]),
            n_segments=int(result["n_segments"]),
            uncertain=bool(result.get("uncertain", False)),
            uncertain_reason=result.get("uncertain_reason"),
            sounds_like=result.get("sounds_like"),
        )


class JobLabel(Base):
    """A user's word on a job's genre (at most one per job); approved labels are training data.

    The audio stays where the upload put it (``jobs.upload_path``): a pending or approved label
    keeps it from the retention sweep.
    """

    __tablename__ = "job_labels"
    __table_args__ = (
        CheckConstraint(check_in("status", LabelStatus), name="status"),
        Index("ix_job_labels_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True, index=True
    )
    genre: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=LabelStatus.PENDING.value)
    #: What the model said when the label was given.
    predicted_genre: Mapped[str | None] = mapped_column(String(64))
    #: The key that gave the label (``None``: a keyless client).
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When an admin approved or rejected it (an admin's own label: when it was given).
    decided_at: Mapped[datetime | None]

    job: Mapped[Job] = relationship(back_populates="label")


class RetentionSweep(Base):
    """One pass of the retention sweep: what it let go (the ``/metrics`` counters sum these)."""

    __tablename__ = "retention_sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    n_audio_expired: Mapped[int] = mapped_column(Integer, default=0)
    n_files_removed: Mapped[int] = mapped_column(Integer, default=0)
    n_results_expired: Mapped[int] = mapped_column(Integer, default=0)
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0)


class TrainingRun(Base):
    """One training of a model from a dataset folder."""

    __tablename__ = "training_runs"
    __table_args__ = (
        CheckConstraint(check_in("status", RunStatus), name="status"),
        CheckConstraint(check_in("trigger", RunTrigger), name="trigger"),
        Index("ix_training_runs_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16), default=RunTrigger.API.value)
    data_dir: Mapped[str | None] = mapped_column(Text)
    data_fingerprint: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(128))
    activated: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any] | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: Last sign of life: when the run was (re-)enqueued, or its task's latest heartbeat.
    heartbeat_at: Mapped[datetime | None]


class ModelVersion(Base):
    """A trained model file known to the registry; exactly one is active once any exists."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # At most one active row, enforced by the database (partial unique index).
        Index(
            "uq_model_versions_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    genres: Mapped[list[Any]]
    metrics: Mapped[dict[str, Any] | None]
    feature_config: Mapped[dict[str, Any] | None]
    data_fingerprint: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    training_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL")
    )

    @property
    def confusion_png_path(self) -> str:
        """Where training wrote the confusion matrix image (``<stem>.confusion.png``)."""
        return str(confusion_png_path(self.path))


class WebhookDelivery(Base):
    """One attempt to deliver a webhook for a job."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    url: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="deliveries")


class KeyScope(StrEnum):
    """What an API key may do: ``classify`` (upload, read own jobs) or ``admin`` (everything)."""

    CLASSIFY = "classify"
    ADMIN = "admin"


class ApiKey(Base):
    """An API key; only the SHA-256 of the secret token is stored (see ``shared/store/keys.py``)."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(check_in("scope", KeyScope), name="scope"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        """Whether the key still opens doors (not revoked)."""
        return self.revoked_at is None


class WebhookOutbox(Base):
    """A job event owed to its webhook: kept until delivered or given up (the outbox).

    The row is written in the same transaction that ends the job, so a crash between that commit
    and the queueing of the delivery loses nothing: the recovery sweep sends what is due.
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        UniqueConstraint("job_id", "event_type", name="uq_webhook_outbox_job_id_event_type"),
        Index("ix_webhook_outbox_closed_at_next_attempt_at", "closed_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    #: When the next attempt is due (an attempt in progress pushes it ahead: a claim).
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When a message for the next attempt was last put on the queue (``None``: none is).
    enqueued_at: Mapped[datetime | None]
    #: When it was delivered or given up; ``None`` while owed.
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
