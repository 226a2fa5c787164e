"""The classify task on a full disk: the job goes back to ``queued``; the task retries, unlimited.

The SQLite database lives on a real 8 MiB tmpfs that the test fills up at the moment the model
is ready, so the job's next write fails with ``database or disk is full``. The task itself runs
(``classify_song.run`` with a mock ``retry``, as a worker would call it). Skipped with the
reason where a tmpfs cannot be mounted (not root).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from celery.exceptions import Retry

from shared.store.db import dispose_engines, session_scope, upgrade_database
from shared.store.orm import Job
from tests.conftest import make_settings
from tests.small_disk import fill, small_disk
from worker import tasks


def test_the_task_requeues_a_job_that_cannot_write_its_result_and_retries_without_limit(
    tmp_path: Path, tiny_model_path: Path, make_audio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.core.nets.model import load_genre_model

    model = load_genre_model(tiny_model_path)
    song = make_audio("metal", seconds=9.0)
    with small_disk(tmp_path / "small", size_mb=8) as disk:
        url = f"sqlite:///{disk / 'genreflow.sqlite3'}"
        upgrade_database(url)
        settings = make_settings(tmp_path / "home", DATABASE_URL=url)
        monkeypatch.setattr(tasks, "get_settings", lambda: settings)
        with session_scope(url) as session:
            job = Job(filename=song.name, upload_path=str(song), content_sha256="0" * 64,
                      size_bytes=song.stat().st_size)  # fmt: skip
            session.add(job)
            session.flush()
            job_id = job.id

        fillers: list[Path] = []

        def model_then_full_disk(_session: Any, _settings: Any) -> Any:
            fillers.append(fill(disk))  # the job's next write finds no space
            return model

        classify = tasks.run_classification

        def classify_then_space_back(*args: Any) -> Any:
            try:
                return classify(*args)
            except Exception:  # the write failed (the task sees StorageFull)
                fillers[-1].unlink()  # space comes back before the task puts the job back
                raise

        monkeypatch.setattr(tasks, "get_active_model", model_then_full_disk)
        monkeypatch.setattr(tasks, "run_classification", classify_then_space_back)
        retry = mock.Mock(side_effect=Retry())
        with mock.patch.object(tasks.classify_song, "retry", retry), pytest.raises(Retry):
            tasks.classify_song.run(job_id)

        retry.assert_called_once_with(countdown=tasks.STORAGE_FULL_RETRY_S, max_retries=None)
        with session_scope(url) as session:
            job = session.get(Job, job_id)
            assert (job.status, job.attempts, job.prediction) == ("queued", 0, None)

        # The retry, with room again: the job is done, and the full-disk try did not count.
        monkeypatch.setattr(tasks, "get_active_model", lambda _session, _settings: model)
        tasks.classify_song.run(job_id)
        with session_scope(url) as session:
            job = session.get(Job, job_id)
            assert job.status == "done", (job.error_code, job.error_detail)
            assert job.prediction is not None
            assert job.attempts == 1
        dispose_engines()
