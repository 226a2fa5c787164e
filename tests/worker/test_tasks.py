"""The thin tasks, called directly with a mock ``self``; import-time hygiene of the worker."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from unittest import mock

import pytest
from celery.exceptions import Retry

from shared.lifecycle.webhooks import DeliveryOutcome
from shared.store.config import Settings
from worker import tasks


@pytest.fixture
def task_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    return settings


def test_importing_the_worker_loads_no_tensorflow_and_opens_nothing() -> None:
    code = (
        "import sys, worker.celery_app, worker.tasks\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'keras' not in sys.modules, 'keras imported'\n"
        "assert 'librosa' not in sys.modules, 'librosa imported'\n"
        "import worker.sweeper\n"
        "web = [name for name in sys.modules if name == 'web' or name.startswith('web.')]\n"
        "assert not web, f'a worker needs none of the web code: {web}'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tasks_are_named_and_configured_for_reliability() -> None:
    for task, name in [
        (tasks.classify_song, "genreflow.classify_song"),
        (tasks.train_model, "genreflow.train_model"),
        (tasks.retrain_if_changed, "genreflow.retrain_if_changed"),
        (tasks.deliver_webhook, "genreflow.deliver_webhook"),
    ]:
        assert task.name == name
        assert task.acks_late is True
        assert task.ignore_result is True
        assert task.max_retries == 5
        assert task.retry_backoff is True


def test_deliver_webhook_schedules_the_next_attempt(
    task_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        tasks, "deliver_job_event", lambda *a, **k: DeliveryOutcome("retry", 1, retry_in=2.0)
    )
    retry = mock.Mock(side_effect=Retry())

    with (
        mock.patch.object(tasks.deliver_webhook, "retry", retry),
        pytest.raises(Retry),
    ):
        tasks.deliver_webhook.run("job-1", "job.completed")

    retry.assert_called_once_with(countdown=2.0, max_retries=None)


def test_classify_song_enqueues_the_webhook_after_commit(
    task_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.store.db import session_scope
    from shared.store.orm import Job
    from tests.lifecycle.test_jobs import make_job

    with session_scope(task_settings.database_url) as session:
        job_id = make_job(session, webhook_url="http://example.test/h").id

    def finish(session: Any, job_id: str, *_: Any) -> str:
        session.get(Job, job_id).status = "done"  # the task's session commits this
        return "job.completed"

    seen: list[tuple[str, str]] = []

    def enqueue(job_id: str, event: str) -> None:
        # Another connection, as a worker taking the delivery would be: the end is committed.
        with session_scope(task_settings.database_url) as other:
            seen.append((other.get(Job, job_id).status, event))

    monkeypatch.setattr(tasks, "run_classification", finish)
    monkeypatch.setattr(tasks, "enqueue_webhook", enqueue)

    tasks.classify_song.run(job_id)

    assert seen == [("done", "job.completed")]


def test_classify_song_waits_while_a_live_task_holds_the_job(
    task_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.lifecycle.heartbeats import JOB_STALE_S, WorkInProgress

    def busy(*_args: object) -> None:
        raise WorkInProgress("busy")

    monkeypatch.setattr(tasks, "run_classification", busy)
    retry = mock.Mock(side_effect=Retry())

    with mock.patch.object(tasks.classify_song, "retry", retry), pytest.raises(Retry):
        tasks.classify_song.run("job-1")

    retry.assert_called_once_with(countdown=JOB_STALE_S + 1, max_retries=None)


@pytest.mark.usefixtures("no_shipped_model")
def test_sync_models_registers_and_activates_what_training_wrote(task_settings: Settings) -> None:
    from shared.store.db import session_scope
    from shared.store.registry import active_model
    from tests.web.conftest import write_model_files

    write_model_files(task_settings.model_dir, "from-cli")
    tasks.sync_models.run()

    with session_scope(task_settings.database_url) as session:
        active = active_model(session)
        assert active is not None
        assert active.version == "from-cli"
