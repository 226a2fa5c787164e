"""A worker that cannot write a job's result (the database's disk is full) tries again later.

The SQLite database lives on a real 8 MiB tmpfs that the test fills up at the moment the model
is ready, so the job's next write fails with ``database or disk is full``. Skipped with the
reason where a tmpfs cannot be mounted (not root).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.errors import StorageFull
from shared.lifecycle.base import transient_db_errors
from shared.lifecycle.classification import requeue_after_storage_full, run_classification
from shared.store.db import dispose_engines, session_scope, upgrade_database
from shared.store.orm import Job
from tests.conftest import make_settings
from tests.small_disk import fill, small_disk


def test_a_job_that_cannot_write_its_result_is_retried_not_lost(
    tmp_path: Path, tiny_model_path: Path, make_audio: Any
) -> None:
    from shared.core.nets.model import load_genre_model

    model = load_genre_model(tiny_model_path)
    song = make_audio("metal", seconds=9.0)
    with small_disk(tmp_path / "small", size_mb=8) as disk:
        url = f"sqlite:///{disk / 'genreflow.sqlite3'}"
        upgrade_database(url)
        settings = make_settings(tmp_path / "home", DATABASE_URL=url)
        with session_scope(url) as session:
            job = Job(
                filename=song.name,
                upload_path=str(song),
                content_sha256="0" * 64,
                size_bytes=song.stat().st_size,
            )
            session.add(job)
            session.flush()
            job_id = job.id
        fillers: list[Path] = []

        def model_then_full_disk(_session: Any) -> Any:
            fillers.append(fill(disk))  # the job's next write finds no space
            return model

        with (
            pytest.raises(StorageFull, match="disk is full"),
            transient_db_errors(f"classifying job {job_id}"),
            session_scope(url) as session,
        ):
            run_classification(session, job_id, model_then_full_disk, settings)

        fillers[0].unlink()  # space comes back; the task's retry runs the job again
        with session_scope(url) as session:
            requeue_after_storage_full(session, job_id)
        with session_scope(url) as session:
            assert session.get(Job, job_id).status == "queued"
        with transient_db_errors("again"), session_scope(url) as session:
            run_classification(session, job_id, lambda _s: model, settings)
        with session_scope(url) as session:
            job = session.get(Job, job_id)
            assert job.status == "done", (job.error_code, job.error_detail)
            assert job.prediction is not None
            assert job.attempts == 1  # the try that hit the full disk does not count
        dispose_engines()
