"""``genreflow jobs delete`` on a real SQLite database and upload folder."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from shared.cli.main import main
from shared.store.config import Settings
from shared.store.db import session_scope, upgrade_database
from shared.store.orm import Job
from tests.conftest import stored_result


def _stored_job(settings: Settings, name: str, data: bytes) -> tuple[str, Path]:
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    path = settings.upload_dir / name
    path.write_bytes(data)
    with session_scope(settings.database_url) as session:
        job = Job(
            filename="song.wav",
            upload_path=str(path),
            content_sha256=name.split(".")[0],
            size_bytes=len(data),
            status="done",
        )
        session.add(job)
        session.flush()
        session.add(stored_result(job.id, "rock"))
        return job.id, path


def test_jobs_delete_removes_jobs_and_audio_and_names_the_unknown(tmp_path: Path) -> None:
    env = {"GENREFLOW_HOME": str(tmp_path)}
    settings = Settings.from_env(env)
    upgrade_database(settings.database_url)
    first, first_audio = _stored_job(settings, "a" * 64 + ".wav", b"RIFF" + b"\0" * 4000)
    second, second_audio = _stored_job(settings, "b" * 64 + ".wav", b"RIFF" + b"\1" * 2000)

    result = CliRunner().invoke(main, ["jobs", "delete", first, "no-such-job", second], env=env)

    assert result.exit_code == 1
    assert f"job {first} deleted (4004 bytes of audio freed)" in result.stdout
    assert f"job {second} deleted (2004 bytes of audio freed)" in result.stdout
    assert "job no-such-job: no such job" in result.stderr
    assert "1 of 3 job(s) not deleted" in result.stderr
    assert not first_audio.exists()
    assert not second_audio.exists()
    with session_scope(settings.database_url) as session:
        assert session.get(Job, first) is None
        assert session.get(Job, second) is None
