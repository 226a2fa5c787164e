"""Activation policy and scheduled-retrain planning (no training happens here)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from shared.lifecycle.training_runs import decide_activation, run_training
from shared.store.config import Settings
from shared.store.orm import TrainingRun

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


def test_run_found_running_was_interrupted_and_is_failed(
    db_session: Session, settings: Settings
) -> None:
    run = TrainingRun(status="running", trigger="api", data_dir="/data")
    db_session.add(run)
    db_session.flush()

    assert run_training(db_session, run.id, settings) == "failed"
    assert run.error_code == "interrupted"


def test_finished_run_is_left_alone(db_session: Session, settings: Settings) -> None:
    run = TrainingRun(status="done", trigger="api", data_dir="/data", model_version="v9")
    db_session.add(run)
    db_session.flush()

    assert run_training(db_session, run.id, settings) == "done"
    assert run.model_version == "v9"
