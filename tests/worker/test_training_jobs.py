"""Activation policy and scheduled-retrain planning (no training happens here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared.lifecycle.training_runs import decide_activation, plan_scheduled_run, run_training
from shared.store.config import Settings
from shared.store.orm import ModelVersion, TrainingRun

NEW = {"track_accuracy_vote": 0.8}


@pytest.mark.parametrize(
    ("policy", "active", "error", "expected"),
    [
        ("if_better", {"track_accuracy_vote": 0.7}, None, True),
        ("if_better", {"track_accuracy_vote": 0.8}, None, True),  # ties go to the new model
        ("if_better", {"track_accuracy_vote": 0.9}, None, False),
        ("if_better", None, None, True),  # nothing active yet
        ("if_better", None, "genres differ", True),
        ("always", {"track_accuracy_vote": 0.99}, None, True),
        ("never", None, None, False),
    ],
)
def test_activation_policy(
    policy: str, active: dict[str, float] | None, error: str | None, expected: bool
) -> None:
    activate, reason = decide_activation(policy, NEW, active, compare_error=error)

    assert activate is expected
    assert reason


def test_scheduled_run_is_skipped_without_a_data_folder(
    session: Session, settings: Settings
) -> None:
    run = plan_scheduled_run(session, settings)

    assert (run.status, run.error_code, run.trigger) == ("skipped", "no_training_data", "schedule")


def test_scheduled_run_is_skipped_when_data_is_unchanged(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    from shared.core.dataset import dataset_fingerprint
    from shared.core.demo_data import write_demo_dataset

    data = tmp_path / "data"
    write_demo_dataset(data, genres=("metal", "reggae"), tracks_per_genre=1, seconds=3.5)
    settings = settings.replace(train_data_dir=data)
    session.add(
        ModelVersion(
            version="v1", path="/m/v1.keras", genres=["metal", "reggae"], active=True,
            data_fingerprint=dataset_fingerprint(data),
        )
    )  # fmt: skip
    session.flush()

    skipped = plan_scheduled_run(session, settings)
    assert (skipped.status, skipped.error_code) == ("skipped", "data_unchanged")

    (data / "metal" / "metal.00000.wav").touch()  # any change to a track counts
    planned = plan_scheduled_run(session, settings)
    assert planned.status == "queued"


def test_run_found_running_was_interrupted_and_is_failed(
    session: Session, settings: Settings
) -> None:
    run = TrainingRun(status="running", trigger="api", data_dir="/data")
    session.add(run)
    session.flush()

    assert run_training(session, run.id, settings) == "failed"
    assert run.error_code == "interrupted"


def test_finished_run_is_left_alone(session: Session, settings: Settings) -> None:
    run = TrainingRun(status="done", trigger="api", data_dir="/data", model_version="v9")
    session.add(run)
    session.flush()

    assert run_training(session, run.id, settings) == "done"
    assert run.model_version == "v9"
