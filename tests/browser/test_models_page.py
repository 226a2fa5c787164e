"""The models page in a real Chromium: metrics, versions, retraining and rolling back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.conftest import enter_key

pytestmark = pytest.mark.browser

TRAIN_TIMEOUT_MS = 300_000


def metric_text(value: float) -> str:
    """Write a metric the way the page does (percent, one decimal)."""
    return f"{value * 100:.1f}%"


def test_models_page_shows_the_active_model_and_its_metrics(
    page: Any, live_service: Any, screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    models = live_service.api("/models")
    active = next(m for m in models["items"] if m["version"] == models["active_version"])
    page.goto(live_service.url("/models"))
    expect(page.get_by_role("heading", name="Active model")).to_be_visible()
    expect(page.locator(".model-id__version")).to_have_text(active["version"])
    tiles = page.locator(".tile")
    expect(tiles.filter(has_text="Track accuracy (vote)")).to_contain_text(
        metric_text(active["metrics"]["track_accuracy_vote"])
    )
    expect(tiles.filter(has_text="Slice accuracy")).to_contain_text(
        metric_text(active["metrics"]["segment_accuracy"])
    )
    image = page.get_by_role("img", name="Confusion matrix")
    expect(image).to_have_attribute("src", active["links"]["confusion_matrix"])
    page.wait_for_function(
        "() => { const i = document.querySelector('.confusion img'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator(".genre-chips li")).to_have_count(len(active["genres"]))
    rows = page.locator("#model-versions tbody tr")
    expect(rows).to_have_count(len(models["items"]))
    expect(page.locator(f'tr[data-version="{active["version"]}"]')).to_contain_text("Active")
    page.screenshot(path=str(screenshot_dir / "models.png"), full_page=True)


def test_retrain_shows_progress_then_the_new_model_and_rolls_back(
    page: Any, live_service: Any, screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    before = live_service.api("/models")["active_version"]
    page.goto(live_service.url("/models"))
    enter_key(page, live_service.admin_key)
    expect(page.locator("#key-status")).to_contain_text("Using the admin key")
    button = page.get_by_role("button", name="Train a new model")
    expect(button).to_be_enabled()
    button.click()

    # While it runs: a stage and a progress bar, and the button waits.
    expect(page.locator(".train-run")).to_be_visible()
    expect(page.locator(".train-run progress")).to_have_attribute("aria-label", "Training progress")
    expect(page.locator("#train-button")).to_be_disabled()
    page.locator("#train-status").screenshot(path=str(screenshot_dir / "models-training.png"))

    status = page.locator("#train-status [data-status]")
    expect(status).to_have_attribute("data-status", "done", timeout=TRAIN_TIMEOUT_MS)
    runs = live_service.api("/training-runs")["items"]
    run = runs[0]
    assert run["status"] == "done", run
    new_version = run["model_version"]
    expect(status).to_contain_text(new_version)
    expect(page.locator("#train-button")).to_be_enabled()

    # The new model is listed; the service's policy here ("always") made it active.
    models = live_service.api("/models")
    assert models["active_version"] == new_version
    expect(page.locator(".model-id__version")).to_have_text(new_version)
    expect(page.locator(f'tr[data-version="{new_version}"]')).to_contain_text("Active")
    expect(page.locator(".runs__item").first).to_contain_text("done")
    page.screenshot(path=str(screenshot_dir / "models-after-training.png"), full_page=True)

    # Roll back to the model that was active before, from its row.
    page.get_by_role("button", name=f"Roll back to model {before}").click()
    expect(page.locator(f'tr[data-version="{before}"]')).to_contain_text("Active")
    expect(page.locator(".model-id__version")).to_have_text(before)
    expect(page.locator("#activate-status")).to_contain_text(f"Model {before} is now active")
    assert live_service.api("/models")["active_version"] == before
    expect(page.get_by_role("button", name=f"Activate model {new_version}")).to_be_visible()


def test_models_page_without_a_model_or_training_data(
    page: Any, modelless_service: Any, screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    headers = {"Authorization": f"Bearer {modelless_service.admin_key}"}
    refusal = requests.post(
        modelless_service.url("/api/v1/models/train"), headers=headers, timeout=10
    )
    assert refusal.status_code == 409
    page.goto(modelless_service.url("/models"))
    enter_key(page, modelless_service.admin_key)
    expect(page.locator("#active-model")).to_contain_text("No active model")
    expect(page.locator("#model-versions")).to_contain_text("No models yet")
    page.get_by_role("button", name="Train a new model").click()
    alert = page.locator("#train-status").get_by_role("alert")
    expect(alert).to_contain_text(refusal.json()["detail"])
    expect(page.get_by_role("button", name="Train a new model")).to_be_enabled()
    page.screenshot(path=str(screenshot_dir / "models-empty.png"), full_page=True)


def test_admin_buttons_wait_for_an_admin_key_and_say_why(
    open_page: Any, live_service: Any, screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    from tests.web.conftest import make_key

    page = open_page()
    page.goto(live_service.url("/models"))
    expect(page.locator(".model-id__version")).to_be_visible()
    expect(page.get_by_role("button", name="Train a new model")).to_be_hidden()
    expect(page.locator("#train-locked")).to_contain_text("needs an admin API key")
    expect(page.locator("#key-status")).to_contain_text("admin")
    expect(page.locator("#model-versions button")).to_have_count(0)

    enter_key(page, "gf_" + "x" * 43)
    expect(page.locator("#key-status")).to_contain_text("unknown or has been revoked")
    expect(page.get_by_role("button", name="Train a new model")).to_be_hidden()

    enter_key(page, make_key(live_service.settings, "classify", name="browser classify"))
    expect(page.locator("#key-status")).to_contain_text('"classify" scope')
    expect(page.get_by_role("button", name="Train a new model")).to_be_hidden()
    page.screenshot(path=str(screenshot_dir / "models-key-refused.png"), full_page=True)

    enter_key(page, live_service.admin_key)
    expect(page.get_by_role("button", name="Train a new model")).to_be_visible()
    expect(page.locator("#train-locked")).to_be_hidden()
    page.reload()  # asked once: the browser session keeps it
    expect(page.get_by_role("button", name="Train a new model")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('genreflow.adminKey')") == (
        live_service.admin_key
    )
    page.get_by_role("button", name="Forget the key").click()
    expect(page.get_by_role("button", name="Train a new model")).to_be_hidden()
    fresh = open_page()  # another browser session does not know the key
    fresh.goto(live_service.url("/models"))
    expect(fresh.locator("#train-locked")).to_be_visible()


def test_models_page_fits_a_phone(open_page: Any, live_service: Any, screenshot_dir: Path) -> None:
    from playwright.sync_api import expect

    phone = open_page(viewport={"width": 360, "height": 780}, device_scale_factor=2)
    phone.goto(live_service.url("/models"))
    expect(phone.locator(".model-id__version")).to_be_visible()
    expect(phone.locator("#model-versions tbody tr").first).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    versions = phone.locator("#model-versions .table-scroll")
    assert versions.evaluate("e => e.scrollWidth <= e.clientWidth"), "versions fit: no side-scroll"
    phone.screenshot(path=str(screenshot_dir / "phone-models.png"), full_page=True)
