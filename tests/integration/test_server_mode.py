"""``genreflow predict --server``: the real app over HTTP, the real worker, the CLI as users run it.

The app is served by werkzeug in a thread on a free port, on the integration home (its model
is the tiny one); each test serves its own app, with the settings that provoke the answer it
checks (413, 415, 429, 503, 507).
"""

from __future__ import annotations

import contextlib
import csv
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import update

from shared.store.config import Settings
from tests.cli.test_commands import genreflow
from tests.integration.conftest import DEMO_GENRES
from tests.integration.helpers import write_song


class StatusLog:
    """WSGI middleware that records each request's method, path and answer status."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status[:3])))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


@contextlib.contextmanager
def served(worker_env: dict[str, str], **env: str) -> Iterator[tuple[str, StatusLog]]:
    """Serve the app on the integration home with ``env`` on top; yield its URL and log."""
    from werkzeug.serving import make_server

    from web import create_app

    log = StatusLog(create_app(Settings.from_env({**worker_env, **env})))
    server = make_server("127.0.0.1", 0, log, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", log
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def rows_by_name(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as handle:
        return {Path(row["path"]).name: row for row in csv.DictReader(handle)}


def test_a_folder_through_the_api_with_the_refusals_as_rows(
    tmp_path, worker_env, worker, integration_model
):
    library = tmp_path / "library"
    for seed, style in enumerate(DEMO_GENRES[:2]):
        write_song(library / f"{style}.wav", style=style, seconds=6.0, seed=300 + seed)
    write_song(library / "long" / "take.wav", seconds=45.0, seed=302)  # over 1 MiB: 413
    (library / "cover.mp3").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3000))  # 415
    (library / "broken.mp3").write_bytes(bytes(range(256)) * 40)  # 415 at the door's probe
    out = tmp_path / "out.csv"
    with served(worker_env, GENREFLOW_MAX_UPLOAD_MB="1") as (url, log):
        args = ("predict", "--server", url, str(library), "--jobs", "2", "-o", str(out))
        first = genreflow(*args, home=tmp_path, check=False)
        assert first.returncode == 1, first.stderr
        rows = rows_by_name(out)
        for style in DEMO_GENRES[:2]:
            assert rows[f"{style}.wav"]["genre"] in DEMO_GENRES, rows
            assert rows[f"{style}.wav"]["model"] == integration_model.stem
            assert rows[f"{style}.wav"]["error"] == ""
        assert rows["take.wav"]["error"].startswith("413 upload_too_large"), rows["take.wav"]
        assert rows["cover.mp3"]["error"].startswith("415 unsupported_media_type")
        assert rows["broken.mp3"]["error"].startswith("415 unsupported_media_type")
        assert "ffmpeg finds no audio" in rows["broken.mp3"]["error"]
        assert "5 song(s): 2 classified, 3 failed" in first.stdout
        assert sum(1 for method, _, _ in log.seen if method == "POST") == 5  # none retried

        again = genreflow(*args, home=tmp_path, check=False)
        assert "skipped 2 song(s) already in" in again.stdout
        assert sum(1 for method, _, _ in log.seen if method == "POST") == 8


def test_429_and_507_become_rows_when_retry_after_is_over_max_wait(tmp_path, worker_env, worker):
    songs = [write_song(tmp_path / f"s{i}.wav", seconds=4.0, seed=310 + i) for i in range(2)]
    out = tmp_path / "out.csv"
    with served(worker_env, GENREFLOW_UPLOADS_PER_MINUTE="1") as (url, _):
        done = genreflow("predict", "--server", url, *map(str, songs), "--jobs", "1",
                         "--max-wait", "0", "-o", str(out), home=tmp_path, check=False)  # fmt: skip
    rows = rows_by_name(out)
    assert rows["s0.wav"]["error"] == ""
    assert rows["s1.wav"]["error"].startswith("429 rate_limited"), rows["s1.wav"]
    assert "over --max-wait" in rows["s1.wav"]["error"]
    assert done.returncode == 1

    out.unlink()
    with served(worker_env, GENREFLOW_MIN_FREE_MB=str(10**9)) as (url, _):
        genreflow("predict", "--server", url, str(songs[0]), "--max-wait", "1", "-o", str(out),
                  home=tmp_path, check=False)  # fmt: skip
    error = rows_by_name(out)["s0.wav"]["error"]
    assert error.startswith("507 insufficient_storage")
    assert re.search(r"\(Retry-After (29\d|300) s, over --max-wait\)$", error), error


def test_a_503_is_waited_out_for_its_retry_after_and_the_song_goes_through(
    tmp_path, worker_env, worker, integration_settings, integration_model
):
    """With no active model the API answers 503 + Retry-After: the client waits and retries."""
    from shared.store.db import session_scope
    from shared.store.orm import ModelVersion
    from shared.store.registry import activate_version

    song = write_song(tmp_path / "late.wav", seconds=4.0, seed=320)
    out = tmp_path / "out.jsonl"
    database = integration_settings.database_url
    with session_scope(database) as session:
        session.execute(update(ModelVersion).values(active=False))
    try:
        with served(worker_env) as (url, log):

            def reactivate_after_a_503() -> None:
                deadline = time.monotonic() + 60
                while (("POST", "/api/v1/jobs", 503) not in log.seen
                       and time.monotonic() < deadline):  # fmt: skip
                    time.sleep(0.05)
                with session_scope(database) as session:
                    activate_version(session, integration_model.stem)

            helper = threading.Thread(target=reactivate_after_a_503, daemon=True)
            helper.start()
            started = time.monotonic()
            genreflow("predict", "--server", url, str(song), "-o", str(out), home=tmp_path)
            helper.join(timeout=5)
    finally:
        with session_scope(database) as session:
            activate_version(session, integration_model.stem)
    assert ("POST", "/api/v1/jobs", 503) in log.seen
    assert [status for method, _, status in log.seen if method == "POST"][-1] in (200, 202)
    assert time.monotonic() - started >= 5  # the API's Retry-After for a 503 is 5 s
    assert '"error": ""' in out.read_text()


def test_a_refused_key_stops_the_run_with_one_line(tmp_path, worker_env, worker):
    song = write_song(tmp_path / "song.wav", seconds=4.0, seed=330)
    with served(worker_env, GENREFLOW_REQUIRE_KEYS="1") as (url, _):
        done = genreflow("predict", "--server", url, "--key", "gf_not_a_key", str(song),
                         home=tmp_path, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"Error: {url} refused the request: 401")


def test_tag_through_the_server_with_a_classify_key(tmp_path, worker_env, worker):
    from shared.library.tags import read_genres
    from shared.store.db import session_scope
    from shared.store.keys import create_key

    with session_scope(Settings.from_env(worker_env).database_url) as session:
        token = create_key(session, name="tagger", scope="classify").token
    song = write_song(tmp_path / "song.mp3", style="metal", seconds=6.0, seed=340)
    undo = tmp_path / "undo.jsonl"
    with served(worker_env, GENREFLOW_REQUIRE_KEYS="1") as (url, _):
        args = ("--include-uncertain", "--undo-file", str(undo))
        done = genreflow("tag", "--server", url, "--key", token, str(song), *args, home=tmp_path)
    assert "tagged 1 song(s)" in done.stdout
    assert read_genres(song)[0] in DEMO_GENRES
