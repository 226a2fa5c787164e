"""What the lifecycles share: failing a row and committing throttled, monotone progress."""

from __future__ import annotations

from sqlalchemy.orm import Session

from shared.lifecycle.base import mark_failed, progress_writer
from shared.store.orm import Job, TrainingRun


def make_job(db_session: Session) -> Job:
    job = Job(
        filename="song.wav", upload_path="x.wav", content_sha256="0" * 64, size_bytes=1,
        status="processing", progress=0.1, attempts=1,
    )  # fmt: skip
    db_session.add(job)
    db_session.flush()
    return job


def test_mark_failed_ends_a_job_with_code_title_and_detail(db_session: Session) -> None:
    job = make_job(db_session)
    mark_failed(job, code="invalid_audio", title="Not audio", detail="junk.mp3 is not audio")
    assert (job.status, job.error_code, job.error_title) == ("failed", "invalid_audio", "Not audio")
    assert job.error_detail == "junk.mp3 is not audio"
    assert job.finished_at is not None


def test_mark_failed_ends_a_training_run(db_session: Session) -> None:
    run = TrainingRun(trigger="api", status="running")
    db_session.add(run)
    mark_failed(run, code="training_failed", detail="ValueError: boom")
    assert (run.status, run.error_code, run.error_detail) == (
        "failed", "training_failed", "ValueError: boom",
    )  # fmt: skip
    assert run.finished_at is not None


def test_progress_maps_each_stage_onto_its_span_and_never_goes_back(db_session: Session) -> None:
    run = TrainingRun(trigger="api", status="running", stage="features", progress=0.0)
    db_session.add(run)
    write = progress_writer(
        db_session, run, spans={"features": (0.0, 0.5), "training": (0.5, 1.0)}, min_interval_s=0
    )
    write("features", 0.5)
    assert (run.stage, run.progress) == ("features", 0.25)
    write("features", 0.2)  # backwards: ignored
    assert run.progress == 0.25
    write("training", 0.5)
    assert (run.stage, run.progress) == ("training", 0.75)


def test_progress_is_throttled_but_the_end_is_always_written(db_session: Session) -> None:
    job = make_job(db_session)
    write = progress_writer(db_session, job, spans={"p": (0.1, 0.99)}, min_interval_s=3600)
    write("p", 0.5)
    first = job.progress
    write("p", 0.6)  # too soon after the first write
    assert job.progress == first
    write("p", 1.0)
    assert job.progress == 0.99
