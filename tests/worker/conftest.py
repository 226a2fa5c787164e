"""Fixtures of the worker-side unit tests: settings and a migrated SQLite database per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from shared.store.config import Settings
from shared.store.db import dispose_engines, session_scope, upgrade_database


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file at ``alembic upgrade head`` (each test copies it)."""
    path = tmp_path_factory.mktemp("worker-template") / "genreflow.sqlite3"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture
def settings(tmp_path: Path, migrated_template: Path) -> Iterator[Settings]:
    """Return settings of a fresh home with a migrated database (no Redis needed)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(migrated_template, home / "genreflow.sqlite3")
    result = Settings.from_env(
        {
            "GENREFLOW_HOME": str(home),
            "GENREFLOW_WEBHOOK_SECRET": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "GENREFLOW_WEBHOOK_BACKOFF_S": "2",
        }
    )
    result.ensure_dirs()
    yield result
    dispose_engines()


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """Yield a session on the test's database (committed at the end)."""
    with session_scope(settings.database_url) as db:
        yield db
