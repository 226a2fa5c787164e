"""Training runs: a run's bookkeeping, and real runs on tiny data."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared.core.nets.recipe import RECIPES, Recipe
from shared.core.nets.sidecar import read_sidecar
from shared.lifecycle.run_recipes import recipe_record
from shared.lifecycle.training_runs import run_training
from shared.store.config import Settings
from shared.store.orm import ModelVersion, TrainingRun
from shared.store.registry import active_model, register_model, sync_model_dir


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


# --- activation across genre sets ------------------------------------------------------------


def test_a_run_whose_kept_recipe_is_invalid_fails_with_the_reason(
    db_session: Session, settings: Settings, tmp_path: Path
) -> None:
    run = TrainingRun(
        status="queued", trigger="api", data_dir=str(tmp_path),
        metrics={"recipe": {"architecture": "gru"}},
    )  # fmt: skip
    db_session.add(run)
    db_session.flush()

    assert run_training(db_session, run.id, settings) == "failed"
    assert run.error_code == "invalid_recipe"
    assert "gru" in (run.error_detail or "")


# --- real training runs on tiny generated data -----------------------------------------------


def _run(session: Session, settings: Settings, recipe: Recipe | None = None) -> TrainingRun:
    run = TrainingRun(
        status="queued", trigger="api", data_dir=str(settings.train_data_dir),
        metrics=recipe_record(session, recipe),
    )  # fmt: skip
    session.add(run)
    session.commit()
    assert run_training(session, run.id, settings) == "done", (run.error_code, run.error_detail)
    return run


@pytest.mark.slow(seconds=20)
def test_retraining_copies_the_shipped_musicnn_recipe_and_keeps_a_model_of_other_genres_out(
    db_session: Session, settings: Settings, tiny_dataset: Path
) -> None:
    settings = settings.replace(
        train_data_dir=tiny_dataset, train_epochs=2, activate_policy="if_better"
    )
    sync_model_dir(db_session, settings)
    shipped = active_model(db_session)
    assert shipped is not None
    db_session.commit()

    run = _run(db_session, settings)

    metrics = run.metrics or {}
    assert metrics["recipe_source"] == f"active model {shipped.version}"
    assert metrics["recipe"]["embedding"] == "pool"
    card = read_sidecar(settings.model_dir / f"{run.model_version}.keras")
    assert card["feature_config"]["musicnn"] is True  # musicnn beside the LSTM, as shipped
    assert card["recipe"] == metrics["recipe"]
    assert card["options"]["epochs"] == 2  # GENREFLOW_TRAIN_EPOCHS caps the recipe's 60
    # Its genres (classical, disco, metal) are not the shipped model's: never activated
    # automatically, whatever the scores, and the run says why.
    comparison = metrics["comparison"]
    assert run.activated is False
    assert comparison["activated"] is False
    lacks = ", ".join(sorted(set(shipped.genres) - {"classical", "disco", "metal"}))
    assert f"adds disco, metal and lacks {lacks}" in comparison["reason"]
    assert comparison["active_version"] == shipped.version
    assert comparison["active_genres"] == shipped.genres
    # both were scored on the run's 3 test tracks
    assert comparison["test_tracks"] == 3
    assert comparison["candidate_metrics"]["n_test_tracks"] == 3
    assert comparison["active_metrics"]["n_test_tracks"] == 3
    assert active_model(db_session).version == shipped.version  # type: ignore[union-attr]
    registered = db_session.get(ModelVersion, run.model_version)
    assert registered is not None
    assert registered.active is False


@pytest.mark.slow
def test_if_better_scores_the_new_and_the_active_model_on_the_same_tracks(
    db_session: Session, settings: Settings, tiny_dataset: Path, tiny_model_path: Path
) -> None:
    from shared.core.learning.held_out import evaluate_on_tracks
    from shared.core.nets.model import load_genre_model

    settings = settings.replace(
        train_data_dir=tiny_dataset, train_epochs=2, activate_policy="if_better"
    )
    active = register_model(db_session, tiny_model_path, activate=True)
    db_session.commit()

    run = _run(db_session, settings, RECIPES["seed"])

    comparison = (run.metrics or {})["comparison"]
    new_path = settings.model_dir / f"{run.model_version}.keras"
    test_tracks = read_sidecar(new_path)["test_tracks"]
    keys = comparison["candidate_metrics"].keys()
    # what the run recorded is what each model, loaded from its file, scores on those tracks
    for path, recorded in ((new_path, "candidate_metrics"), (tiny_model_path, "active_metrics")):
        again = evaluate_on_tracks(load_genre_model(path), tiny_dataset, test_tracks)
        assert {k: again[k] for k in keys} == comparison[recorded]
    assert comparison["active_version"] == active.version
    new = comparison["candidate_metrics"]["track_accuracy_vote"]
    old = comparison["active_metrics"]["track_accuracy_vote"]
    assert run.activated is (new >= old)
    assert comparison["reason"].startswith(f"track_accuracy_vote {new:.3f} ")
    assert (active_model(db_session).version == run.model_version) is run.activated  # type: ignore[union-attr]
