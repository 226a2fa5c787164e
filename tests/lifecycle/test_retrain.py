"""The scheduled retrain: skipped when there is no data folder or the data did not change."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from shared.lifecycle.retrain import plan_scheduled_run
from shared.store.config import Settings
from shared.store.orm import ModelVersion


def test_scheduled_run_is_skipped_without_a_data_folder(
    db_session: Session, settings: Settings
) -> None:
    run = plan_scheduled_run(db_session, settings)

    assert (run.status, run.error_code, run.trigger) == ("skipped", "no_training_data", "schedule")


def test_scheduled_run_is_skipped_when_data_is_unchanged(
    db_session: Session, settings: Settings, tmp_path: Path
) -> None:
    from shared.core.learning.dataset import dataset_fingerprint
    from shared.core.learning.demo_data import write_demo_dataset

    data = tmp_path / "data"
    write_demo_dataset(data, genres=("metal", "reggae"), tracks_per_genre=1, seconds=3.5)
    settings = settings.replace(train_data_dir=data)
    db_session.add(
        ModelVersion(
            version="v1", path="/m/v1.keras", genres=["metal", "reggae"], active=True,
            data_fingerprint=dataset_fingerprint(data),
        )
    )  # fmt: skip
    db_session.flush()

    skipped = plan_scheduled_run(db_session, settings)
    assert (skipped.status, skipped.error_code) == ("skipped", "data_unchanged")

    (data / "metal" / "metal.00000.wav").touch()  # any change to a track counts
    planned = plan_scheduled_run(db_session, settings)
    assert planned.status == "queued"


def test_a_scheduled_run_keeps_the_active_models_recipe(
    db_session: Session, settings: Settings, tmp_path: Path
) -> None:
    from shared.core.learning.demo_data import write_demo_dataset
    from shared.core.nets.recipe import RECIPES
    from shared.core.nets.sidecar import write_sidecar
    from shared.store.registry import register_model

    data = tmp_path / "data"
    write_demo_dataset(data, genres=("metal", "reggae"), tracks_per_genre=1, seconds=3.5)
    model = settings.model_dir / "v2.keras"
    model.write_bytes(b"PK\x03\x04 placeholder")
    recipe = RECIPES["musicnn-pool"].to_dict()
    write_sidecar(model, {"version": "v2", "genres": ["metal", "reggae"], "recipe": recipe})
    register_model(db_session, model, activate=True)

    planned = plan_scheduled_run(db_session, settings.replace(train_data_dir=data))

    assert planned.status == "queued"
    assert planned.metrics == {"recipe": recipe, "recipe_source": "active model v2"}
