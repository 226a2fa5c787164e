import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared.errors import ModelError
from shared.store import registry
from shared.store.columns import isoformat
from shared.store.config import Settings
from shared.store.orm import ModelVersion, TrainingRun
from shared.store.registry import (
    ModelVersionNotFound,
    activate_version,
    active_model,
    register_model,
    sync_model_dir,
)
from tests.web.conftest import write_model_files


def _active_versions(db_session: Session) -> list[str]:
    return [m.version for m in db_session.query(ModelVersion).filter(ModelVersion.active.is_(True))]


def test_register_model_reads_the_sidecar(settings: Settings, db_session: Session) -> None:
    path = write_model_files(settings.model_dir, "v1", created_at="2026-02-03T04:05:06Z")
    row = register_model(db_session, path)
    assert row.version == "v1"
    assert row.path == str(path.resolve())
    assert row.genres == ["blues", "classical", "rock"]
    assert row.metrics["track_accuracy_vote"] == 0.8
    assert row.feature_config["n_mfcc"] == 13
    assert row.data_fingerprint == "fp-v1"
    assert isoformat(row.created_at) == "2026-02-03T04:05:06Z"
    assert row.active is False
    assert active_model(db_session) is None


def test_register_model_is_idempotent_and_links_the_run(
    settings: Settings, db_session: Session
) -> None:
    run = TrainingRun(trigger="cli")
    db_session.add(run)
    db_session.flush()
    path = write_model_files(settings.model_dir, "v1")
    first = register_model(db_session, path)
    again = register_model(db_session, path, activate=True, training_run_id=run.id)
    assert first is again
    assert again.training_run_id == run.id
    assert db_session.query(ModelVersion).count() == 1
    assert _active_versions(db_session) == ["v1"]


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
    settings: Settings, db_session: Session, sidecar: str | None
) -> None:
    path = write_model_files(settings.model_dir, "v1")
    if sidecar is None:
        path.with_suffix(".json").unlink()
    else:
        path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(ModelError):
        register_model(db_session, path)


def test_register_model_rejects_a_missing_file(settings: Settings, db_session: Session) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        register_model(db_session, settings.model_dir / "nope.keras")


def test_activate_leaves_exactly_one_active(settings: Settings, db_session: Session) -> None:
    for version in ("a", "b", "c"):
        register_model(db_session, write_model_files(settings.model_dir, version))
    activate_version(db_session, "a")
    activate_version(db_session, "c")
    assert _active_versions(db_session) == ["c"]
    activate_version(db_session, "c")
    assert _active_versions(db_session) == ["c"]
    assert active_model(db_session).version == "c"
    with pytest.raises(ModelVersionNotFound) as info:
        activate_version(db_session, "zzz")
    assert info.value.status == 404
    assert _active_versions(db_session) == ["c"]


def test_sync_model_dir_registers_new_files_and_activates_newest(
    settings: Settings, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", tmp_path / "shipped-none")
    write_model_files(settings.model_dir, "old", created_at="2026-01-01T00:00:00Z")
    write_model_files(settings.model_dir, "new", created_at="2026-03-01T00:00:00Z")
    broken = settings.model_dir / "broken.keras"
    broken.write_bytes(b"x")  # no sidecar: skipped with a warning
    result = sync_model_dir(db_session, settings)
    assert sorted(result.added) == ["new", "old"]
    assert result.activated == "new"
    assert _active_versions(db_session) == ["new"]
    assert sync_model_dir(db_session, settings) == registry.SyncResult()
    write_model_files(settings.model_dir, "newer", created_at="2026-04-01T00:00:00Z")
    assert sync_model_dir(db_session, settings).added == ["newer"]
    assert _active_versions(db_session) == ["new"]  # an active model is never replaced by a sync


def test_sync_model_dir_without_a_model_dir(
    tmp_path: Path, db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", tmp_path / "shipped-none")
    settings = Settings.from_env({"GENREFLOW_HOME": str(tmp_path / "elsewhere")})
    assert sync_model_dir(db_session, settings) == registry.SyncResult()


def test_sync_registers_the_shipped_default_model(
    settings: Settings, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", tmp_path / "shipped-none")
    assert sync_model_dir(db_session, settings).activated is None
    shipped = tmp_path / "shipped"
    write_model_files(shipped, "default-1")
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", shipped)
    result = sync_model_dir(db_session, settings)
    assert (result.added, result.activated) == (["default-1"], "default-1")
    assert _active_versions(db_session) == ["default-1"]
    assert sync_model_dir(db_session, settings) == registry.SyncResult()
    assert db_session.query(ModelVersion).count() == 1


def test_shipped_default_model_does_not_replace_an_active_one(
    settings: Settings, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_model(db_session, write_model_files(settings.model_dir, "mine"), activate=True)
    shipped = tmp_path / "shipped"
    write_model_files(shipped, "default-1")
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", shipped)
    sync_model_dir(db_session, settings)
    assert _active_versions(db_session) == ["mine"]


def test_a_model_the_user_trains_takes_over_from_the_shipped_one(
    settings: Settings, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "shipped"
    write_model_files(shipped, "default-1", created_at="2026-06-01T00:00:00Z")
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", shipped)
    assert sync_model_dir(db_session, settings).activated == "default-1"
    # older than the shipped model, but the user's: it takes over
    write_model_files(settings.model_dir, "mine", created_at="2026-01-01T00:00:00Z")
    assert sync_model_dir(db_session, settings).activated == "mine"
    activate_version(db_session, "default-1")  # roll back to the shipped model: it stays
    assert sync_model_dir(db_session, settings) == registry.SyncResult()
    assert _active_versions(db_session) == ["default-1"]
    never = Settings.from_env(
        {"GENREFLOW_HOME": str(settings.home), "GENREFLOW_ACTIVATE_POLICY": "never"}
    )
    write_model_files(never.model_dir, "later")
    assert sync_model_dir(db_session, never).activated is None
    assert _active_versions(db_session) == ["default-1"]


def test_a_fresh_home_with_a_trained_model_uses_it_not_the_shipped_one(
    settings: Settings, db_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "shipped"
    write_model_files(shipped, "default-1", created_at="2026-06-01T00:00:00Z")
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", shipped)
    write_model_files(settings.model_dir, "mine", created_at="2026-01-01T00:00:00Z")
    assert sync_model_dir(db_session, settings).activated == "mine"


def test_a_sync_that_loses_the_race_to_register_skips_the_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.store.db import session_scope

    shipped = tmp_path / "shipped"
    write_model_files(shipped, "raced")
    monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", shipped)
    with session_scope(settings.database_url) as first:
        assert sync_model_dir(first, settings).added == ["raced"]
    with session_scope(settings.database_url) as second:
        # As if this process looked before the other one committed: it sees no such version.
        monkeypatch.setattr(second, "get", lambda *_args, **_kwargs: None)
        monkeypatch.setattr(registry, "DEFAULT_MODEL_DIR", tmp_path / "none")
        write_model_files(settings.model_dir, "raced")  # same version, another path
        assert sync_model_dir(second, settings).added == []  # IntegrityError caught, not raised
    with session_scope(settings.database_url) as session:
        assert _active_versions(session) == ["raced"]
        assert session.query(ModelVersion).count() == 1
