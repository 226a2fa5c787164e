"""Uploads are checked at the door: ffmpeg reads the header before the API answers."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.store.config import Settings
from tests.web.helpers import assert_problem, queued_tasks


def post(client: Any, path: Path, filename: str | None = None) -> Any:
    with path.open("rb") as file:
        payload = {"file": (file, filename or path.name)}
        return client.post("/api/v1/jobs", data=payload, content_type="multipart/form-data")


def assert_refused(
    response: Any, status: int, code: str, settings: Settings, redis_client: redis.Redis
) -> dict[str, Any]:
    body = assert_problem(response, status, code)
    assert [p.name for p in settings.upload_dir.iterdir()] == []  # nothing stored
    assert queued_tasks(redis_client, "predict") == []  # nothing queued
    return body


def test_text_named_mp3_is_415(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str, tmp_path: Path
) -> None:
    fake = tmp_path / "song.mp3"
    fake.write_text("these are the lyrics, not the song\n" * 40)
    body = assert_refused(post(client, fake), 415, "unsupported_media_type", settings, redis_client)
    assert "song.mp3" in body["detail"]


def test_one_second_wav_is_422(
    client: Any,
    settings: Settings,
    redis_client: redis.Redis,
    active_model: str,
    make_audio: Callable[..., Path],
) -> None:
    short = make_audio(seconds=1.0, ext=".wav")
    body = assert_refused(post(client, short), 422, "audio_too_short", settings, redis_client)
    assert "1.0 s" in body["detail"]


def test_cut_mp3_is_422(
    client: Any,
    settings: Settings,
    redis_client: redis.Redis,
    active_model: str,
    make_audio: Callable[..., Path],
    tmp_path: Path,
) -> None:
    whole = make_audio(seconds=60.0, ext=".mp3")
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[:10_000])  # its header still claims 60 s
    assert_refused(post(client, cut), 422, "audio_too_short", settings, redis_client)


def test_damaged_audio_is_422(
    client: Any, settings: Settings, redis_client: redis.Redis, active_model: str, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    assert_refused(post(client, damaged), 422, "invalid_audio", settings, redis_client)


def test_song_over_the_duration_limit_is_413(
    app: Any,
    settings: Settings,
    redis_client: redis.Redis,
    active_model: str,
    make_audio: Callable[..., Path],
) -> None:
    app.extensions["genreflow"]["settings"] = settings.replace(max_duration_s=60.0)
    song = make_audio(seconds=70.0, ext=".mp3", sr=8000)
    body = assert_refused(
        post(app.test_client(), song), 413, "audio_too_long", settings, redis_client
    )
    assert "1-minute limit" in body["detail"]


@pytest.mark.parametrize("ext", [".mp3", ".ogg", ".flac", ".m4a", ".wav"])
def test_real_audio_passes_the_door(
    client: Any,
    redis_client: redis.Redis,
    active_model: str,
    make_audio: Callable[..., Path],
    ext: str,
) -> None:
    song = make_audio(seconds=4.0, ext=ext, sr=8000)
    assert post(client, song).status_code == 202
    assert len(queued_tasks(redis_client, "predict")) == 1
