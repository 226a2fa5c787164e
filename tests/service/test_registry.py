import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared import registry
from shared.errors import ModelError
from shared.store.config import Settings
from shared.store.orm import ModelVersion, TrainingRun
from shared.store.registry import (
    ModelVersionNotFound,
    activate,
    active_model,
    register_default_model,
    register_model,
    scan_model_dir,
)
from tests.service.conftest import write_model_files


def _active_versions(db: Session) -> list[str]:
    return [m.version for m in db.query(ModelVersion).filter(ModelVersion.active.is_(True))]


def test_register_model_reads_the_sidecar(settings: Settings, db: Session) -> None:
    path = write_model_files(settings.model_dir, "v1", created_at="2026-02-03T04:05:06Z")
    row = register_model(db, path)
    assert row.version == "v1"
    assert row.path == str(path.resolve())
    assert row.genres == ["blues", "classical", "rock"]
    assert row.metrics["track_accuracy_vote"] == 0.8
    assert row.feature_config["n_mfcc"] == 13
    assert row.data_fingerprint == "fp-v1"
    assert row.to_dict()["created_at"] == "2026-02-03T04:05:06Z"
    assert row.active is False
    assert active_model(db) is None


def test_register_model_is_idempotent_and_links_the_run(settings: Settings, db: Session) -> None:
    run = TrainingRun(trigger="cli")
    db.add(run)
    db.flush()
    path = write_model_files(settings.model_dir, "v1")
    first = register_model(db, path)
    again = register_model(db, path, activate=True, training_run_id=run.id)
    assert first is again
    assert again.training_run_id == run.id
    assert db.query(ModelVersion).count() == 1
    assert _active_versions(db) == ["v1"]


def test_register_model_without_tensorflow(settings: Settings) -> None:
    path = write_model_files(settings.model_dir, "v1")
    code = (
        "import sys\n"
        "from shared.store.db import session_scope, upgrade_database\n"
        "from shared.store.registry import register_model\n"
        f"url = 'sqlite:///{settings.home / 'other.sqlite3'}'\n"
        "upgrade_database(url)\n"
        "with session_scope(url) as s:\n"
        f"    register_model(s, {str(path)!r}, activate=True)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "sidecar",
    [None, "not json", json.dumps(["list"]), json.dumps({"version": "v1", "genres": []})],
)
def test_register_model_rejects_a_bad_sidecar(
    settings: Settings, db: Session, sidecar: str | None
) -> None:
    path = write_model_files(settings.model_dir, "v1")
    if sidecar is None:
        path.with_suffix(".json").unlink()
    else:
        path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(ModelError):
        register_model(db, path)


def test_register_model_rejects_a_missing_file(settings: Settings, db: Session) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        register_model(db, settings.model_dir / "nope.keras")


def test_activate_leaves_exactly_one_active(settings: Settings, db: Session) -> None:
    for version in ("a", "b", "c"):
        register_model(db, write_model_files(settings.model_dir, version))
    activate(db, "a")
    activate(db, "c")
    assert _active_versions(db) == ["c"]
    activate(db, "c")
    assert _active_versions(db) == ["c"]
    assert active_model(db).version == "c"
    with pytest.raises(ModelVersionNotFound) as info:
        activate(db, "zzz")
    assert info.value.status == 404
    assert _active_versions(db) == ["c"]


def test_scan_model_dir_registers_new_files_and_activates_newest(
    settings: Settings, db: Session
) -> None:
    write_model_files(settings.model_dir, "old", created_at="2026-01-01T00:00:00Z")
    write_model_files(settings.model_dir, "new", created_at="2026-03-01T00:00:00Z")
    broken = settings.model_dir / "broken.keras"
    broken.write_bytes(b"x")  # no sidecar: skipped with a warning
    added = scan_model_dir(db, settings)
    assert sorted(row.version for row in added) == ["new", "old"]
    assert _active_versions(db) == ["new"]
    assert scan_model_dir(db, settings) == []
    write_model_files(settings.model_dir, "newer", created_at="2026-04-01T00:00:00Z")
    assert [row.version for row in scan_model_dir(db, settings)] == ["newer"]
    assert _active_versions(db) == ["new"]  # an active model is never replaced by a scan


def test_scan_model_dir_without_a_model_dir(tmp_path: Path, db: Session) -> None:
    settings = Settings.from_env({"GENREFLOW_HOME": str(tmp_path / "elsewhere")})
    assert scan_model_dir(db, settings) == []


def test_register_default_model(
    settings: Settings, db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", tmp_path / "shipped-none")
    assert register_default_model(db, settings) is None
    shipped = tmp_path / "shipped"
    write_model_files(shipped, "default-1")
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", shipped)
    row = register_default_model(db, settings)
    assert row is not None
    assert row.version == "default-1"
    assert _active_versions(db) == ["default-1"]
    assert register_default_model(db, settings).version == "default-1"
    assert db.query(ModelVersion).count() == 1


def test_shipped_default_model_does_not_replace_an_active_one(
    settings: Settings, db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_model(db, write_model_files(settings.model_dir, "mine"), activate=True)
    shipped = tmp_path / "shipped"
    write_model_files(shipped, "default-1")
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", shipped)
    register_default_model(db, settings)
    assert _active_versions(db) == ["mine"]
