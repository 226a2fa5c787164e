"""Fixtures of the browser tests: Debian's Chromium driving the real service.

The service under test is real from end to end. The integration tests' fixtures
(``tests/integration/conftest.py``) provide a Redis server, a home with a migrated SQLite
database, a tiny trained model (active), a tiny training folder and a real Celery worker process
on every queue; here the real app is served over HTTP by werkzeug in a thread, on that home.
A second app with no model and no training folder answers the "nothing to work with" cases.
Chromium is never downloaded: without an executable the tests skip.

Screenshots land in ``test-output/browser/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.store.config import Settings
from tests.integration import conftest as integration

# The integration tests' session fixtures, shared: Redis, the tiny model, the training folder,
# the home and the worker process (a browser-only run starts them once, for these tests).
integration_redis_url = integration.integration_redis_url
train_data_dir = integration.train_data_dir
integration_model = integration.integration_model
worker_env = integration.worker_env
worker = integration.worker

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = PROJECT_ROOT / "test-output" / "browser"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Let <audio>.play() run without a user gesture having happened in this exact frame.
    "--autoplay-policy=no-user-gesture-required",
]
MAX_UPLOAD_MB = 2
#: Synthetic styles the tiny model was trained on.
STYLES = integration.DEMO_GENRES


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the worker's log tail to the report of a failed test that used the service."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    service = getattr(item, "funcargs", {}).get("live_service")
    if report.when == "call" and report.failed and getattr(service, "worker", None) is not None:
        report.sections.append(("celery worker log (tail)", service.worker.log()[-6000:]))


def find_chromium() -> str | None:
    """Return the path of an installed Chromium, or ``None``."""
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Return Debian's Chromium, or skip (the browser is never downloaded)."""
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium executable (looked for /usr/bin/chromium and chromium on PATH); "
            "install it with `apt-get install -y chromium`"
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Any]:
    """Yield a headless Chromium for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=LAUNCH_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Return ``test-output/browser/``, created."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR


# ---- the service ----------------------------------------------------------------------------


@dataclass
class LiveService:
    """A running genreflow reachable over HTTP."""

    base_url: str
    settings: Settings
    worker: Any = None
    admin_key: str = ""

    def url(self, path: str) -> str:
        """Return the absolute URL of ``path`` (``"/jobs/1"``)."""
        return self.base_url + path

    def api(self, path: str, *, method: str = "GET") -> Any:
        """Call the JSON API (``path`` below ``/api/v1``) and return the decoded answer."""
        import json
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url("/api/v1" + path), method=method)
        request.add_header("Accept", "application/json")
        if self.admin_key:
            request.add_header("Authorization", f"Bearer {self.admin_key}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"null")


def make_admin_key(settings: Settings, name: str = "browser tests") -> str:
    """Create an admin API key in ``settings``' database; return the key itself."""
    from shared.store.db import session_scope
    from shared.store.keys import create_key

    with session_scope(settings.database_url) as session:
        return create_key(session, name=name, scope="admin").token


def enter_key(page: Any, key: str) -> None:
    """Give the models page a key through its form, as a person would."""
    page.get_by_label("Admin API key").fill(key)
    page.get_by_role("button", name="Use this key").click()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with werkzeug on a free port in a thread; yield its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def live_service(
    chromium_executable: str, worker_env: dict[str, str], worker: Any
) -> Iterator[LiveService]:
    """Yield the whole service over HTTP: the app, the integration worker, Redis, a model.

    The app's upload limit is lowered to :data:`MAX_UPLOAD_MB` so a 413 is cheap to provoke.
    """
    from web import create_app

    del chromium_executable  # asked first: no Chromium, no service started
    settings = Settings.from_env({**worker_env, "GENREFLOW_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB)})
    with serving(create_app(settings)) as base_url:
        yield LiveService(base_url, settings, worker, make_admin_key(settings))


@pytest.fixture(scope="session")
def modelless_service(
    chromium_executable: str,
    tmp_path_factory: pytest.TempPathFactory,
    integration_redis_url: str,
) -> Iterator[LiveService]:
    """Yield an app with no model and no training folder (uploads 503, training 409)."""
    from shared.store.db import upgrade_database
    from web import create_app

    del chromium_executable
    home = tmp_path_factory.mktemp("browser-empty-home")
    settings = Settings.from_env({"GENREFLOW_HOME": str(home), "REDIS_URL": integration_redis_url})
    settings.ensure_dirs()
    upgrade_database(settings.database_url)
    with serving(create_app(settings)) as base_url:
        yield LiveService(base_url, settings, admin_key=make_admin_key(settings))


# ---- pages ----------------------------------------------------------------------------------


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """Return ``open_page(**context_options)``, which opens a page in a new browser context.

    The test fails on a script error in any such page, or on any request that leaves the
    service's host (no CDN, no outside fonts).
    """
    contexts: list[Any] = []
    script_errors: list[str] = []
    outside: list[str] = []

    def open_(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        tab = context.new_page()
        tab.on("pageerror", lambda error: script_errors.append(str(error)))
        tab.on(
            "request",
            lambda req: (
                None
                if req.url.startswith(("http://127.0.0.1:", "data:", "blob:"))
                else outside.append(req.url)
            ),
        )
        return tab

    yield open_
    for context in contexts:
        context.close()
    assert not script_errors, f"JavaScript errors on the page: {script_errors}"
    assert not outside, f"the page fetched from outside its origin: {outside}"


@pytest.fixture
def page(open_page: Any) -> Any:
    """Return a desktop-sized page (1280 x 900)."""
    return open_page()


# ---- audio files ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Write the files the tests upload: good songs, an undecodable one, a text file, a big one."""
    from shared.core.learning.demo_data import synth_track, write_audio

    root = tmp_path_factory.mktemp("browser-audio")
    parts = [synth_track(style, seconds=9.0, seed=i) for i, style in enumerate(STYLES)]
    files = {
        "mixtape": write_audio(root / "mixtape.mp3", np.concatenate(parts)),
        "metal": write_audio(root / "metal song.ogg", synth_track("metal", seconds=12.0, seed=7)),
        "big": write_audio(root / "long take.wav", synth_track("classical", seconds=60.0, seed=3)),
    }
    files["bad"] = root / "broken.mp3"
    files["bad"].write_bytes(np.random.default_rng(0).bytes(24_000))
    files["text"] = root / "lyrics.txt"
    files["text"].write_text("Not a song, just words.\n", encoding="utf-8")
    assert files["big"].stat().st_size > MAX_UPLOAD_MB * 1024 * 1024
    return files
