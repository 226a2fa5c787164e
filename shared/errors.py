"""The exceptions genreflow raises on purpose.

Every error a user can cause is a :class:`GenreflowError` subclass. Each carries an HTTP
``status``, a short ``title``, a stable machine ``code`` and a ``detail`` sentence a person can
act on, so the CLI, the API and the job rows all report the same words. Views raise these;
``web/errors.py`` renders them as ``application/problem+json`` (with the optional ``headers``
and extension members ``extra``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class GenreflowError(Exception):
    """Base class of every deliberate genreflow error."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    code: ClassVar[str] = "bad_request"
    #: The detail when none is given (else the title).
    default_detail: ClassVar[str | None] = None

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        self.detail = detail or self.default_detail or self.title
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = extra
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        """Return the error as ``{"code", "title", "detail"}``."""
        return {"code": self.code, "title": self.title, "detail": self.detail}


class InvalidAudio(GenreflowError):
    """The file is not audio that ffmpeg can decode."""

    status = 422
    title = "Not a readable audio file"
    code = "invalid_audio"


class EmptyAudio(InvalidAudio):
    """The file is empty or holds no audio samples."""

    title = "Empty audio"
    code = "empty_audio"


class AudioTooShort(InvalidAudio):
    """The audio is shorter than one 3-second segment."""

    title = "Audio too short"
    code = "audio_too_short"


class AudioTooLong(InvalidAudio):
    """The audio is longer than the configured maximum duration."""

    status = 413
    title = "Audio too long"
    code = "audio_too_long"


class NotFound(GenreflowError):
    """Base class of "no such thing" errors."""

    status = 404
    title = "Not found"
    code = "not_found"


class JobNotFound(NotFound):
    """No job has the requested id."""

    title = "Job not found"
    code = "job_not_found"


class TrainingRunNotFound(NotFound):
    """No training run has the requested id."""

    title = "Training run not found"
    code = "training_run_not_found"


class ModelVersionNotFound(NotFound):
    """No registered model has the requested version."""

    title = "Model version not found"
    code = "model_not_found"


class DatasetError(GenreflowError):
    """A training folder is missing, empty or not in GTZAN layout."""

    title = "Unusable dataset"
    code = "dataset_error"


class ModelError(GenreflowError):
    """A model file is missing, unreadable or was built for other features."""

    status = 503
    title = "Model unavailable"
    code = "model_error"


class FeatureMismatch(ModelError):
    """A model's stored feature config differs from the one asked for."""

    title = "Model built for other features"
    code = "feature_mismatch"


class TransientError(GenreflowError):
    """A failure worth retrying (broker, database or network hiccup)."""

    status = 503
    title = "Temporarily unavailable"
    code = "transient"


class MissingFile(GenreflowError):
    """An upload without a ``file`` field."""

    title = "No file uploaded"
    code = "missing_file"

    default_detail = "Send the song as multipart/form-data in a field named 'file'."


class InvalidWebhookUrl(GenreflowError):
    """A ``webhook_url`` that is not an absolute http(s) URL."""

    title = "Invalid webhook URL"
    code = "invalid_webhook_url"


class UnsupportedMediaType(GenreflowError):
    """An upload that is not an audio file by its name, type or first bytes."""

    status = 415
    title = "Not an audio file"
    code = "unsupported_media_type"


class UploadTooLarge(GenreflowError):
    """An upload over ``GENREFLOW_MAX_UPLOAD_MB``."""

    status = 413
    title = "Upload too large"
    code = "upload_too_large"

    @classmethod
    def over_limit(cls, limit_mb: float | str | None) -> UploadTooLarge:
        """Return the error for an upload over ``limit_mb`` MiB (``None``: limit unknown)."""
        if not limit_mb:
            return cls("The request body is too large.")
        return cls(f"The upload is larger than the {limit_mb} MiB limit (GENREFLOW_MAX_UPLOAD_MB).")


class NoActiveModel(GenreflowError):
    """No model is active, so songs cannot be classified yet."""

    status = 503
    title = "No active model"
    code = "no_active_model"

    default_detail = (
        "No model is active, so songs cannot be classified yet. Train one with "
        "`genreflow train DATA_DIR` on a GTZAN-layout folder, or set GENREFLOW_TRAIN_DATA_DIR "
        "and `POST /api/v1/models/train`; for a synthetic demo run `genreflow demo-data DIR` "
        "and then train on DIR."
    )

    @staticmethod
    def for_model_dir(model_dir: object) -> str:
        """Return the detail naming the model folder the service reads (not a variable name)."""
        return (
            "No model is active, so songs cannot be classified yet. Train one with "
            f"`genreflow train DATA_DIR --out {model_dir}` on a GTZAN-layout folder (the "
            "service picks it up by itself), or set GENREFLOW_TRAIN_DATA_DIR and "
            "`POST /api/v1/models/train`; for a synthetic demo run `genreflow demo-data DIR` "
            "and then train on DIR."
        )


class ModelFileMissing(GenreflowError):
    """A registered model whose file is no longer on disk cannot be activated."""

    status = 409
    title = "Model file missing"
    code = "model_file_missing"


class UploadMissing(GenreflowError):
    """A worker cannot find an accepted job's file: the uploads folder is not shared with it."""

    status = 500
    title = "Uploaded file not found"
    code = "upload_missing"


class ConfusionMatrixNotFound(NotFound):
    """A model without a confusion matrix image."""

    title = "Confusion matrix not found"
    code = "confusion_matrix_not_found"


class ModelCardNotFound(NotFound):
    """A model without a model card."""

    title = "Model card not found"
    code = "model_card_not_found"


class TrainingNotConfigured(GenreflowError):
    """``GENREFLOW_TRAIN_DATA_DIR`` is not set."""

    status = 409
    title = "Training is not configured"
    code = "training_not_configured"

    default_detail = (
        "Set GENREFLOW_TRAIN_DATA_DIR to a GTZAN-layout folder (one sub-folder per genre) "
        "and restart, or train from the command line with `genreflow train DATA_DIR`."
    )


class TrainingDataMissing(GenreflowError):
    """``GENREFLOW_TRAIN_DATA_DIR`` is not a folder."""

    status = 422
    title = "Training data missing"
    code = "training_data_missing"


class InvalidRecipe(GenreflowError):
    """A training recipe that is not a known name nor a valid recipe object."""

    status = 422
    title = "Invalid training recipe"
    code = "invalid_recipe"


class RecipeUnavailable(GenreflowError):
    """A valid training recipe this installation cannot train (its musicnn weights are missing)."""

    status = 409
    title = "Training recipe unavailable"
    code = "recipe_unavailable"


class TrainingBusy(GenreflowError):
    """Another training is queued, running or holds the training lock."""

    status = 409
    title = "Training already in progress"
    code = "training_in_progress"


class QueueUnavailable(TransientError):
    """The task broker (Redis) could not be reached."""

    title = "Task queue unavailable"
    code = "queue_unavailable"


class DatabaseUnavailable(TransientError):
    """The database could not be reached (restarting, or the connection was lost)."""

    title = "Database unavailable"
    code = "database_unavailable"


class RunnerError(GenreflowError):
    """``genreflow run`` could not start the service."""

    status = 500
    title = "The service could not be started"
    code = "runner_error"


class Unauthorized(GenreflowError):
    """No usable API key came with a request that needs one (HTTP 401)."""

    status = 401
    title = "API key required"
    code = "unauthorized"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        # RFC 9110 §11.6.1: a 401 names the scheme the client should use.
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="genreflow"'}, **extra)


class InvalidApiKey(Unauthorized):
    """The API key sent is unknown or revoked."""

    title = "Invalid API key"
    code = "invalid_api_key"


class Forbidden(GenreflowError):
    """The API key is valid but its scope does not allow the request (HTTP 403)."""

    status = 403
    title = "Not allowed for this API key"
    code = "forbidden"


class ApiKeyNotFound(NotFound):
    """No API key has the requested id."""

    title = "API key not found"
    code = "api_key_not_found"


class RetryLater(GenreflowError):
    """An error whose answer tells the client when to try again (``Retry-After``, seconds)."""

    default_retry_after_s: ClassVar[int] = 60

    def __init__(self, detail: str | None = None, *, retry_after_s: int | None = None) -> None:
        seconds = self.default_retry_after_s if retry_after_s is None else retry_after_s
        super().__init__(detail, headers={"Retry-After": str(max(1, int(seconds)))})


class RateLimited(RetryLater):
    """Too many uploads, or too many bytes, from one key or address (HTTP 429)."""

    status = 429
    title = "Too many requests"
    code = "rate_limited"


class WebhookTargetRefused(GenreflowError):
    """A webhook URL that points inward (loopback, link-local or private addresses)."""

    title = "Webhook URL not allowed"
    code = "webhook_target_refused"


class InsufficientStorage(RetryLater):
    """The disk where genreflow writes is (nearly) full (HTTP 507, RFC 4918 §11.5)."""

    status = 507
    title = "Not enough free disk space"
    code = "insufficient_storage"
    default_retry_after_s = 300


class StorageFull(TransientError):
    """A worker could not write (no space left on the disk or in the database): retried later."""

    title = "Storage full"
    code = "storage_full"


class JobInProgress(RetryLater):
    """A job a worker is classifying right now cannot be deleted yet."""

    status = 409
    title = "Job in progress"
    code = "job_in_progress"
    default_retry_after_s = 15


class InvalidLabel(GenreflowError):
    """A label whose genre is empty or not a plain name."""

    status = 422
    title = "Invalid label"
    code = "invalid_label"


class LabelNotAllowed(GenreflowError):
    """A job that cannot be labelled: it has no result, or its audio is no longer stored."""

    status = 409
    title = "Job cannot be labelled"
    code = "label_not_allowed"


class LabelNotFound(NotFound):
    """A job without a label."""

    title = "Label not found"
    code = "label_not_found"


class ServerUnusable(GenreflowError):
    """A genreflow server that ``--server`` cannot use: unreachable, or it refuses the key."""

    status = 502
    title = "Server unusable"
    code = "server_unusable"
