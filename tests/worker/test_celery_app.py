"""The Celery app's wiring: beat schedule from GENREFLOW_RETRAIN_CRON, queues and routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery.schedules import crontab

from shared.lifecycle.queues import parse_cron
from shared.store.config import Settings
from worker.celery_app import make_celery


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"GENREFLOW_HOME": str(tmp_path), **env})


def test_beat_runs_retrain_on_the_train_queue_on_the_configured_cron(tmp_path: Path) -> None:
    app = make_celery(settings_for(tmp_path, GENREFLOW_RETRAIN_CRON="15 4 * * 1"))

    entry = app.conf.beat_schedule["retrain-if-changed"]

    assert entry["task"] == "genreflow.retrain_if_changed"
    assert entry["options"]["queue"] == "train"
    assert entry["schedule"] == crontab(minute="15", hour="4", day_of_week="1")
    app.loader.import_default_modules()  # what a worker or beat does on start
    assert "genreflow.retrain_if_changed" in app.tasks


def test_beat_syncs_the_model_registry_every_few_seconds(tmp_path: Path) -> None:
    app = make_celery(settings_for(tmp_path))

    entry = app.conf.beat_schedule["sync-models"]

    assert entry["task"] == "genreflow.sync_models"
    assert 0 < entry["schedule"] <= 60
    app.loader.import_default_modules()
    assert "genreflow.sync_models" in app.tasks


def test_default_schedule_is_weekly(tmp_path: Path) -> None:
    app = make_celery(settings_for(tmp_path))

    entry = app.conf.beat_schedule["retrain-if-changed"]

    assert entry["schedule"] == crontab(minute="0", hour="3", day_of_week="0")


def test_module_app_reads_settings_lazily_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    import worker.celery_app

    monkeypatch.setenv("GENREFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("GENREFLOW_RETRAIN_CRON", "*/10 * * * *")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/5")
    module = importlib.reload(worker.celery_app)
    try:
        conf = module.celery_app.conf
        entry = conf.beat_schedule["retrain-if-changed"]
        assert entry["schedule"] == crontab(minute="*/10")
        assert conf.broker_url == "redis://127.0.0.1:1/5"
    finally:
        monkeypatch.undo()
        importlib.reload(worker.celery_app)


@pytest.mark.parametrize("bad", ["0 3 * *", "61 * * * *", "every sunday"])
def test_bad_cron_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        parse_cron(bad)


def test_reliability_settings_and_routes(tmp_path: Path) -> None:
    conf = make_celery(settings_for(tmp_path, REDIS_URL="redis://127.0.0.1:6390/0")).conf

    assert conf.broker_url == "redis://127.0.0.1:6390/0"
    assert conf.task_ignore_result is True
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    # Senders' default; each worker gets its own queues' timeout at start (celeryd_init).
    assert conf.broker_transport_options["visibility_timeout"] == 30 * 60
    routes = {
        "genreflow.classify_song": "predict",
        "genreflow.train_model": "train",
        "genreflow.retrain_if_changed": "train",
        "genreflow.deliver_webhook": "webhooks",
    }
    app = make_celery(settings_for(tmp_path))
    for task, queue in routes.items():
        routed = app.amqp.router.route({}, task)["queue"]
        # Each queue has its own exchange and key, so a task reaches exactly one queue.
        assert (routed.name, routed.exchange.name, routed.routing_key) == (queue, queue, queue)


def test_recovery_is_no_beat_chore(tmp_path: Path) -> None:
    # The workers sweep for lost work themselves (worker/sweeper.py); beat has no part in it.
    schedule = make_celery(settings_for(tmp_path)).conf.beat_schedule

    assert set(schedule) == {"sync-models", "retrain-if-changed"}


@pytest.mark.parametrize(
    ("queues", "timeout", "key"),
    [
        ("predict,webhooks", 120, "unacked:predict+webhooks"),
        (["train"], 1800, "unacked:train"),
        (None, 1800, "unacked:predict+train+webhooks"),
    ],
)
def test_visibility_timeout_is_sized_to_the_queues_a_worker_consumes(
    queues: str | list[str] | None, timeout: int, key: str
) -> None:
    from shared.lifecycle.queues import worker_transport_options

    options = worker_transport_options(queues)

    assert (options["visibility_timeout"], options["unacked_key"]) == (timeout, key)
