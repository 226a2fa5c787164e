"""The exceptions genreflow raises on purpose.

Every error a user can cause is a :class:`GenreflowError` subclass. Each carries an HTTP
``status``, a short ``title``, a stable machine ``code`` and a ``detail`` sentence a person can
act on, so the CLI, the API and the job rows all report the same words.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GenreflowError(Exception):
    """Base class of every deliberate genreflow error."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
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
