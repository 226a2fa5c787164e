"""run_classification's bookkeeping, with fake models (real audio decoding is integration)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shared.errors import ModelError
from shared.lifecycle.classification import MAX_JOB_ATTEMPTS, abandon_job, run_classification
from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.orm import Job
from web.api.schemas import dump_job


def make_job(db_session: Session, **fields: Any) -> Job:
    values = {
        "filename": "song.wav", "upload_path": "missing.wav", "content_sha256": "0" * 64,
        "size_bytes": 10, "status": "queued", "progress": 0.0, "attempts": 0, **fields,
    }  # fmt: skip
    job = Job(**values)
    db_session.add(job)
    db_session.flush()
    return job


def no_model(_session: Session) -> Any:
    raise ModelError("No model is active.")


def test_missing_model_fails_the_job_with_the_model_error(
    db_session: Session, settings: Settings
) -> None:
    job = make_job(db_session, webhook_url="http://example.test/h")

    event = run_classification(db_session, job.id, no_model, settings)

    assert event == "job.failed"
    assert job.status == "failed"
    assert dump_job(job)["error"] == {
        "code": "model_error", "title": "Model unavailable", "detail": "No model is active.",
    }  # fmt: skip
    assert job.attempts == 1
    assert job.started_at is not None
    assert job.finished_at is not None


def test_a_job_whose_file_this_host_cannot_see_fails_with_the_reason(
    db_session: Session, settings: Settings, tiny_model_path: Any
) -> None:
    from shared.core.serving.inference import load_served_model

    model = load_served_model(tiny_model_path)
    job = make_job(db_session, upload_path=str(settings.upload_dir / "elsewhere.wav"))

    event = run_classification(db_session, job.id, lambda _s: model, settings)

    assert (event, job.status, job.error_code) == (None, "failed", "upload_missing")
    assert "GENREFLOW_UPLOAD_DIR" in job.error_detail
    assert str(settings.upload_dir / "elsewhere.wav") in job.error_detail
    # Ended, not left for a retry: a redelivered message finds it final and does nothing.
    assert run_classification(db_session, job.id, lambda _s: model, settings) is None
    assert job.attempts == 1


def test_a_worker_back_from_a_cut_drops_its_late_result_and_progress(
    db_session: Session, settings: Settings, tiny_model_path: Any, make_audio: Any, engine: Any
) -> None:
    from sqlalchemy import update

    from shared.core.serving.inference import load_served_model
    from shared.store.orm import StoredPrediction

    model = load_served_model(tiny_model_path)
    song = make_audio("disco", seconds=6.0)
    job = make_job(db_session, upload_path=str(song), webhook_url="http://example.test/h")
    db_session.commit()

    def cut_off_then_load(_session: Session) -> Any:
        # While this worker is cut off, the sweep hands the job to another, which ends it.
        with Session(engine) as other:
            other.execute(update(Job).where(Job.id == job.id).values(
                status="done", attempts=2, progress=1.0, finished_at=utcnow(),
                model_version="the-other-workers-model"))  # fmt: skip
            other.add(
                StoredPrediction(
                    job_id=job.id,
                    genre="metal",
                    confidence=0.9,
                    probabilities={},
                    votes={},
                    segments=[],
                    duration_s=6.0,
                    n_segments=2,
                )
            )
            other.commit()
        return model

    event = run_classification(db_session, job.id, cut_off_then_load, settings)
    db_session.commit()

    assert event is None  # no second webhook either
    db_session.expire_all()
    assert (job.status, job.attempts, job.prediction.genre) == ("done", 2, "metal")
    # Nor did it write its progress or its model onto the job the other worker ended.
    assert (job.progress, job.model_version) == (1.0, "the-other-workers-model")


def test_no_webhook_event_without_a_url(db_session: Session, settings: Settings) -> None:
    job = make_job(db_session)

    assert run_classification(db_session, job.id, no_model, settings) is None
    assert job.status == "failed"


def test_job_that_keeps_killing_its_worker_is_failed(
    db_session: Session, settings: Settings
) -> None:
    job = make_job(db_session, status="processing", attempts=MAX_JOB_ATTEMPTS)

    run_classification(db_session, job.id, no_model, settings)

    assert (job.status, job.error_code) == ("failed", "too_many_attempts")


def test_unknown_job_is_ignored(db_session: Session, settings: Settings) -> None:
    assert run_classification(db_session, "no-such-job", no_model, settings) is None


def test_giving_up_after_retries_fails_the_job_once(
    db_session: Session, settings: Settings
) -> None:
    job = make_job(db_session, status="processing", webhook_url="http://example.test/h")

    assert abandon_job(db_session, job.id, RuntimeError("db down")) == "job.failed"
    assert (job.status, job.error_code, job.error_detail) == ("failed", "transient", "db down")
    assert abandon_job(db_session, job.id, RuntimeError("again")) is None
