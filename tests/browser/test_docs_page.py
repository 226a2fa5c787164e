"""/docs: Swagger UI from the installed package, offline, under the page's CSP."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser


def test_docs_render_from_this_origin_under_the_csp(page: Any, live_service: Any) -> None:
    from playwright.sync_api import expect

    origin = urlsplit(live_service.url("/")).netloc
    elsewhere: list[str] = []
    problems: list[str] = []
    page.on(
        "request",
        lambda request: (
            elsewhere.append(request.url)
            if urlsplit(request.url).netloc not in (origin, "")
            and not request.url.startswith(("data:", "blob:"))
            else None
        ),
    )
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    response = page.goto(live_service.url("/docs"))
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("genreflow")
    expect(page.get_by_text("/api/v1/jobs").first).to_be_visible()
    assert page.locator('link[rel="icon"]').get_attribute("href") != "None"
    assert elsewhere == []
    assert problems == []
