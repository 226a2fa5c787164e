"""A full disk on a real small tmpfs: 507 with Retry-After, no partial file, and recovery.

Uploads go to the small filesystem (``GENREFLOW_UPLOAD_DIR``); the database stays on the test's
own disk, except in the database-full test, where it is the database that lives on the small
one. The check at the door, a write that meets a full disk and a commit that meets one are each
answered over HTTP. Skipped with the reason where a tmpfs cannot be mounted (not root).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from shared.errors import InsufficientStorage
from shared.store.config import Settings
from shared.store.db import dispose_engines, session_scope, upgrade_database
from shared.store.orm import Job
from shared.store.registry import register_model
from tests.small_disk import fill, small_disk
from tests.web.conftest import make_app, wav_bytes, write_model_files
from tests.web.helpers import assert_problem
from web.api import jobs as jobs_api

MIB = 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """Mount a 4 MiB filesystem for the test."""
    with small_disk(tmp_path / "small", size_mb=4) as path:
        yield path


@pytest.fixture
def small_settings(settings: Settings, disk: Path) -> Settings:
    """Return settings that store uploads on the small filesystem and keep 1 MiB free."""
    upload_dir = disk / "uploads"
    upload_dir.mkdir()
    return settings.replace(upload_dir=upload_dir, min_free_mb=1)


@pytest.fixture
def small_client(small_settings: Settings, redis_client: redis.Redis) -> Iterator[Any]:
    app = make_app(small_settings)
    yield app.test_client()
    app.extensions["genreflow"]["engine"].dispose()


def _upload(client: Any, data: bytes, name: str = "song.wav") -> Any:
    return client.post("/api/v1/jobs", data={"file": (io.BytesIO(data), name)})


def _metric(client: Any, name: str) -> float:
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_full_disk_answers_507_keeps_nothing_and_recovers(
    small_client: Any, small_settings: Settings, disk: Path, active_model: str
) -> None:
    song = wav_bytes(seconds=30.0)  # 480 kB
    filler = fill(disk, leave_bytes=MIB // 2)

    response = _upload(small_client, song)

    body = assert_problem(response, 507, "insufficient_storage")
    assert int(response.headers["Retry-After"]) > 0
    assert "disk is nearly full" in body["detail"]
    assert list(small_settings.upload_dir.iterdir()) == []  # no partial or temporary file
    ready = small_client.get("/ready").get_json()
    assert ready["checks"]["disk"]["ok"] is False
    assert ready["checks"]["disk"]["detail"].startswith("low: ")
    assert "disk" in ready["failed"]
    assert _metric(small_client, "genreflow_disk_low") == 1.0

    filler.unlink()  # space comes back: no restart needed

    response = _upload(small_client, song)
    assert response.status_code == 202, response.get_json()
    assert len(list(small_settings.upload_dir.glob("*.wav"))) == 1
    assert small_client.get("/ready").get_json()["checks"]["disk"]["ok"] is True
    assert _metric(small_client, "genreflow_disk_low") == 0.0


def test_upload_that_would_cross_the_minimum_is_refused(
    small_client: Any, small_settings: Settings, disk: Path, active_model: str
) -> None:
    fill(disk, leave_bytes=MIB + 200_000)  # above the minimum, but not with the song
    assert small_client.get("/ready").get_json()["checks"]["disk"]["ok"] is True
    assert_problem(_upload(small_client, wav_bytes(seconds=30.0)), 507, "insufficient_storage")
    assert _upload(small_client, wav_bytes(seconds=3.5)).status_code == 202  # 56 kB fits


def test_a_write_that_hits_a_full_disk_is_507_and_leaves_no_partial_file(
    small_settings: Settings, disk: Path
) -> None:
    from web.uploads import store_upload

    fill(disk, leave_bytes=100_000)
    with pytest.raises(InsufficientStorage) as caught:
        store_upload(io.BytesIO(b"\1" * 400_000), small_settings.upload_dir, ".wav", max_bytes=MIB)
    assert caught.value.status == 507
    assert "Retry-After" in caught.value.headers
    assert list(small_settings.upload_dir.iterdir()) == []


def _job_count(database_url: str) -> int:
    with session_scope(database_url) as session:
        return len(session.scalars(select(Job.id)).all())


def test_a_disk_that_fills_after_the_check_is_507_over_http_and_keeps_nothing(
    small_client: Any,
    small_settings: Settings,
    disk: Path,
    active_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check = jobs_api.require_free_space

    def check_then_fill(*args: Any, **kwargs: Any) -> None:
        check(*args, **kwargs)  # passes: the disk has room
        fill(disk, leave_bytes=100_000)  # then another writer takes it, before the song is written

    monkeypatch.setattr(jobs_api, "require_free_space", check_then_fill)

    response = _upload(small_client, wav_bytes(seconds=30.0))  # 480 kB

    assert_problem(response, 507, "insufficient_storage")
    assert int(response.headers["Retry-After"]) > 0
    assert list(small_settings.upload_dir.iterdir()) == []  # no partial file
    assert _job_count(small_settings.database_url) == 0


def test_a_database_whose_disk_fills_is_507_over_http_and_lets_the_song_go(
    settings: Settings, tmp_path: Path, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_disk(tmp_path / "db-disk", size_mb=8) as db_disk:
        url = f"sqlite:///{db_disk / 'genreflow.sqlite3'}"
        upgrade_database(url)
        db_settings = settings.replace(database_url=url)
        with session_scope(url) as session:
            register_model(session, write_model_files(db_settings.model_dir, "m-1"), activate=True)
        fillers: list[Path] = []
        store = jobs_api.store_upload

        def store_then_fill(*args: Any, **kwargs: Any) -> Any:
            stored = store(*args, **kwargs)  # the song is on the uploads disk
            fillers.append(fill(db_disk))  # then the database's disk fills, before the commit
            return stored

        monkeypatch.setattr(jobs_api, "store_upload", store_then_fill)
        app = make_app(db_settings)
        try:
            response = _upload(app.test_client(), wav_bytes(seconds=3.5))

            assert_problem(response, 507, "insufficient_storage")
            assert "Retry-After" in response.headers
            assert fillers, "the database's disk was never filled"
            assert list(db_settings.upload_dir.iterdir()) == []  # no job holds the song: gone
            fillers[0].unlink()
            assert _job_count(url) == 0
        finally:
            app.extensions["genreflow"]["engine"].dispose()
            dispose_engines()
