"""Fixtures of the web tests: the app, its client, an active model and model files.

``settings``, ``redis_client`` and the database fixtures come from the root ``conftest.py``.
"""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.store.config import Settings
from shared.store.db import make_engine, session_scope


def make_app(settings: Settings) -> Any:
    """Build the web app under test for ``settings``."""
    from web import create_app

    return create_app(settings, config={"TESTING": True})


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis) -> Iterator[Any]:
    """Yield the web app under test."""
    application = make_app(settings)
    yield application
    application.extensions["genreflow"]["engine"].dispose()


@pytest.fixture
def client(app: Any) -> Any:
    """Return a test client of :func:`app`."""
    return app.test_client()


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
    with session_scope(settings.database_url) as session:
        return register_model(session, path, activate=True).version


def wav_bytes(seconds: float = 3.5, *, sr: int = 8000, freq: float = 440.0) -> bytes:
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


def make_key(settings: Settings, scope: str, *, name: str = "test key") -> str:
    """Create an API key with ``scope`` in the test database; return the key itself."""
    from shared.store.keys import create_key

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        token = create_key(session, name=name, scope=scope).token
    engine.dispose()
    return token


@pytest.fixture
def admin_headers(settings: Settings) -> dict[str, str]:
    """Return an ``Authorization`` header carrying a new admin key."""
    return {"Authorization": f"Bearer {make_key(settings, 'admin', name='test admin')}"}
