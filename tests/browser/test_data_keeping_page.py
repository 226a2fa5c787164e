"""In a real Chromium: "Wrong genre?", its review on the models page, and deleting a song."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import enter_key
from tests.browser.test_classify_page import classified

pytestmark = pytest.mark.browser


def test_label_a_song_review_it_then_delete_it(
    page: Any, live_service: Any, audio_files: dict[str, Path]
) -> None:
    from playwright.sync_api import expect

    job = classified(live_service, audio_files["metal"], "audio/ogg")
    page.goto(live_service.url(f"/jobs/{job['id']}"))
    teach = page.locator("section.teach")
    expect(teach.get_by_role("heading", name="Wrong genre?")).to_be_visible()
    teach.get_by_label("The right genre").fill("Post Rock")
    teach.get_by_role("button", name="Tell genreflow").click()
    expect(teach).to_contain_text("You said Post rock (waiting for an admin's review)")
    assert live_service.api(f"/jobs/{job['id']}")["label"]["status"] == "pending"

    page.goto(live_service.url("/models"))
    enter_key(page, live_service.admin_key)
    review = page.locator("#label-review")
    row = review.locator(f'tr[data-job-id="{job["id"]}"]')
    expect(row).to_contain_text("Post rock")
    row.get_by_role("button", name="Approve post rock for metal song.ogg").click()
    expect(row).to_have_count(0)
    assert live_service.api(f"/jobs/{job['id']}")["label"]["status"] == "approved"

    page.goto(live_service.url(f"/jobs/{job['id']}"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete metal song.ogg").first.click()
    expect(page.locator(f'.history__link[data-job-id="{job["id"]}"]')).to_have_count(0)
    expect(page.locator("#result")).to_be_hidden()
    gone = requests.get(f"{live_service.base_url}/api/v1/jobs/{job['id']}", timeout=10)
    assert gone.status_code == 404
