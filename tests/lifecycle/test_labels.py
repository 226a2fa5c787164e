"""Labels as training data: what a training run sees, on a real database, audio and training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared.core.learning.dataset import dataset_fingerprint, find_tracks
from shared.core.learning.demo_data import synth_track, write_audio
from shared.errors import InvalidLabel
from shared.lifecycle.labels import (
    MIN_EXAMPLES_NEW_GENRE,
    label_tracks,
    normalize_genre,
    training_fingerprint,
)
from shared.lifecycle.retrain import plan_scheduled_run
from shared.lifecycle.training_runs import run_training
from shared.store.columns import utcnow
from shared.store.config import Settings
from shared.store.orm import Job, JobLabel, ModelVersion, TrainingRun
from tests.conftest import TINY_GENRES, stored_result


def labelled_job(
    session: Session,
    settings: Settings,
    *,
    style: str,
    genre: str,
    seed: int,
    status: str = "approved",
) -> Job:
    """Add a done job whose uploaded song (synthetic ``style``) carries a ``genre`` label."""
    path = write_audio(
        settings.upload_dir / f"{style}-{seed:04d}.wav",
        synth_track(style, seconds=9.0, seed=seed),
        sr=22_050,
    )
    job = Job(
        filename=path.name,
        upload_path=str(path),
        content_sha256=path.stem,
        size_bytes=path.stat().st_size,
        status="done",
        finished_at=utcnow(),
    )
    session.add(job)
    session.flush()
    session.add(stored_result(job.id, "classical"))
    session.add(JobLabel(job_id=job.id, genre=genre, status=status, predicted_genre="classical"))
    session.commit()
    return job


def test_genre_names_are_normalised_or_refused() -> None:
    assert normalize_genre("  Hip   Hop ") == "hip hop"
    assert normalize_genre("R&B") == "r&b"
    for bad in ("", "a/b", "..", "x" * 65, None, 3):
        with pytest.raises(InvalidLabel):
            normalize_genre(bad)


def test_only_approved_labels_count_and_a_new_genre_waits_for_enough_examples(
    db_session: Session, settings: Settings
) -> None:
    labelled_job(db_session, settings, style="metal", genre="metal", seed=1)
    labelled_job(db_session, settings, style="metal", genre="metal", seed=2, status="pending")
    labelled_job(db_session, settings, style="disco", genre="disco", seed=3, status="rejected")
    for seed in range(MIN_EXAMPLES_NEW_GENRE - 1):
        labelled_job(db_session, settings, style="reggae", genre="reggae", seed=100 + seed)

    labels = label_tracks(db_session, set(TINY_GENRES))

    assert [(t.genre, t.path.name) for t in labels.tracks] == [("metal", "metal-0001.wav")]
    assert labels.waiting == {"reggae": MIN_EXAMPLES_NEW_GENRE - 1}

    labelled_job(db_session, settings, style="reggae", genre="reggae", seed=999)
    labels = label_tracks(db_session, set(TINY_GENRES))

    assert labels.used == {"metal": 1, "reggae": MIN_EXAMPLES_NEW_GENRE}
    assert labels.waiting == {}


def test_an_approved_label_makes_the_scheduled_retrain_train(
    db_session: Session, settings: Settings, tiny_dataset: Path
) -> None:
    settings = settings.replace(train_data_dir=tiny_dataset)
    db_session.add(
        ModelVersion(
            version="v-folder-only",
            path="/nowhere.keras",
            genres=list(TINY_GENRES),
            data_fingerprint=dataset_fingerprint(tiny_dataset),
            active=True,
        )
    )
    db_session.commit()
    assert plan_scheduled_run(db_session, settings).error_code == "data_unchanged"
    job = labelled_job(db_session, settings, style="metal", genre="metal", seed=5, status="pending")
    assert plan_scheduled_run(db_session, settings).error_code == "data_unchanged"  # not yet

    job.label.status = "approved"
    db_session.commit()
    run = plan_scheduled_run(db_session, settings)

    assert run.status == "queued"
    assert run.data_fingerprint == training_fingerprint(db_session, tiny_dataset)
    assert run.data_fingerprint != dataset_fingerprint(tiny_dataset)


@pytest.mark.slow(seconds=40)
def test_labels_change_what_the_next_training_run_sees(
    db_session: Session, settings: Settings, tiny_dataset: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "train"
    shutil.copytree(tiny_dataset, data_dir)
    settings = settings.replace(train_data_dir=data_dir, train_epochs=2, activate_policy="always")
    folder = {f"{t.genre}/{t.path.name}" for t in find_tracks(data_dir)}

    def train() -> TrainingRun:
        run = TrainingRun(status="queued", trigger="api", data_dir=str(data_dir))
        db_session.add(run)
        db_session.commit()
        assert run_training(db_session, run.id, settings) == "done", run.error_detail
        return run

    def sidecar(run: TrainingRun) -> dict:
        row = db_session.get(ModelVersion, run.model_version)
        return json.loads(Path(row.path).with_suffix(".json").read_text())

    labelled_job(db_session, settings, style="metal", genre="metal", seed=11)
    first = train()

    assert first.metrics["sources"] == {"folder": len(folder), "labels": 1}
    assert first.metrics["labels"]["by_genre"] == {"metal": 1}
    assert first.activated is True
    first_card = sidecar(first)
    assert first_card["training_data"]["sources"] == {"folder": len(folder), "labels": 1}
    assert first_card["test_tracks"]  # a subset check of nothing would pass
    assert set(first_card["test_tracks"]) <= folder  # labelled songs never decide if_better

    for seed in range(MIN_EXAMPLES_NEW_GENRE):  # a new genre, with just enough examples
        labelled_job(db_session, settings, style="reggae", genre="reggae", seed=200 + seed)
    second = train()

    assert second.metrics["sources"] == {
        "folder": len(folder),
        "labels": 1 + MIN_EXAMPLES_NEW_GENRE,
    }
    second_card = sidecar(second)
    assert second_card["genres"] == sorted([*TINY_GENRES, "reggae"])
    assert second_card["test_tracks"] == first_card["test_tracks"]  # the same held-out tracks
    assert second.activated is False  # a new genre set waits for an admin
    assert "it adds reggae" in second.metrics["comparison"]["reason"]
    assert db_session.get(ModelVersion, first.model_version).active is True
