"""The page blueprint without a browser: routes, headers, assets, nothing from outside.

These run everywhere (no Chromium needed), so a machine without a browser still checks that the
pages are served and self-contained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared.store.config import Settings

WEB = Path(__file__).resolve().parents[2] / "web"
STATIC = WEB / "static"
#: XML namespaces name things; they are never fetched.
NAMESPACES = {"http://www.w3.org/2000/svg"}
#: An absolute or protocol-relative URL ("https://cdn...", "//fonts.example.com/...").
OUTSIDE_URL = r"https?://[^\s\"')]+|(?<![:/])//[\w-]+(?:\.[\w-]+)+[^\s\"')]*"


@pytest.fixture
def page_client(tmp_path: Path) -> Any:
    """Return a test client of the real app (the pages need no database, broker or model)."""
    from web import create_app

    settings = Settings.from_env({"GENREFLOW_HOME": str(tmp_path / "home")})
    return create_app(settings, config={"TESTING": True}).test_client()


@pytest.mark.parametrize("path", ["/", "/jobs/3f1c0a2e-any-id", "/models"])
def test_page_routes_serve_html_pinned_to_their_origin(page_client: Any, path: str) -> None:
    response = page_client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert '<html lang="en">' in response.text
    assert 'name="viewport"' in response.text


def test_job_page_carries_the_job_id(page_client: Any) -> None:
    html = page_client.get("/jobs/abc-123").text
    assert 'data-job-id="abc-123"' in html
    assert 'data-job-id="' not in page_client.get("/").text


def test_upload_input_accepts_every_supported_extension(page_client: Any) -> None:
    from shared.core.audio.audio import SUPPORTED_EXTENSIONS

    html = page_client.get("/").text
    accept = re.search(r'accept="([^"]+)"', html).group(1).split(",")
    assert set(SUPPORTED_EXTENSIONS) <= set(accept)
    assert "audio/*" in accept


def test_every_asset_and_module_import_is_served(page_client: Any) -> None:
    pending = []
    for path in ("/", "/models"):
        html = page_client.get(path).text
        pending += re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
    seen = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        response = page_client.get(url)
        assert response.status_code == 200, url
        if url.endswith(".js"):
            assert response.mimetype in ("text/javascript", "application/javascript"), url
            base = url.rsplit("/", 1)[0]
            imports = re.findall(r'from "\./([\w.]+)"', response.text)
            pending += [f"{base}/{name}" for name in imports]
        response.close()
    assert {"/assets/css/app.css", "/assets/js/classify.js", "/assets/js/timeline.js"} <= seen


def test_nothing_is_fetched_from_another_origin() -> None:
    files = [*STATIC.rglob("*.*"), *(WEB / "templates").rglob("*.html")]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        urls = set(re.findall(OUTSIDE_URL, text))
        assert urls <= NAMESPACES, f"{path.relative_to(WEB)} refers to {urls - NAMESPACES}"
        assert "@import" not in text, path
