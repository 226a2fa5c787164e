"""The classify page in a real Chromium against the real service: upload, follow, result.

Each test drives the page the way a person would (file picker, clicks, keys) and checks what
the page shows against what the JSON API says about the same job.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.helpers import submit_past_the_door

pytestmark = pytest.mark.browser

JOB_TIMEOUT_MS = 120_000
DISPLAY_NAMES = {"hiphop": "Hip-hop"}


def display(genre: str) -> str:
    """Return the page's name of a genre."""
    return DISPLAY_NAMES.get(genre, genre.capitalize())


def answer(result: dict[str, Any]) -> str:
    """Return the page's words for a result's answer ("Not sure — closest: X" when uncertain)."""
    name = display(result["genre"])
    return f"Not sure — closest: {name}" if result.get("uncertain") else name


def percent(p: float) -> str:
    """Write a probability the way the page does (whole percent above 1%)."""
    return f"{p * 100:.0f}%"


def sounds_like_line(result: dict[str, Any]) -> re.Pattern[str]:
    """Return the page's "Sounds like: Heavy metal 0.45 · …" line for a result, as a pattern."""
    items = [rf"{re.escape(item['name'])} \d\.\d\d" for item in result["sounds_like"]]
    return re.compile("^Sounds like: " + " · ".join(items) + "$")


def upload_item(page: Any, filename: str) -> Any:
    """Return the row of an uploaded file in the upload list."""
    return page.locator(".upload-item").filter(
        has=page.locator(".upload-item__name", has_text=filename)
    )


def job_id_of(item: Any) -> str:
    """Return the job id an upload row links to."""
    href = item.get_by_role("link").get_attribute("href")
    return href.rstrip("/").rsplit("/", 1)[-1]


def post_file(base_url: str, path: Path, content_type: str) -> requests.Response:
    """Upload ``path`` straight to the API, as the page does."""
    with path.open("rb") as handle:
        return requests.post(
            f"{base_url}/api/v1/jobs",
            files={"file": (path.name, handle, content_type)},
            timeout=30,
        )


def classified(live_service: Any, path: Path, content_type: str) -> dict[str, Any]:
    """Upload ``path`` through the API and return its job once it is done."""
    answer = post_file(live_service.base_url, path, content_type)
    assert answer.status_code in (200, 202), answer.text
    job = answer.json()
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = live_service.api(f"/jobs/{job['id']}")
    assert job["status"] == "done", job
    return job


@pytest.fixture(scope="module")
def done_job(live_service: Any, audio_files: dict[str, Path]) -> dict[str, Any]:
    """Return a classified job of the synthetic mixtape (uploaded through the API)."""
    return classified(live_service, audio_files["mixtape"], "audio/mpeg")


def test_upload_two_songs_and_read_genre_bars_and_timeline(
    page: Any, live_service: Any, audio_files: dict[str, Path], screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(live_service.url("/"))
    expect(page.get_by_role("heading", name="What genre is this song?", exact=True)).to_be_visible()
    page.get_by_label("Choose files").set_input_files(
        [str(audio_files["mixtape"]), str(audio_files["metal"])]
    )
    mixtape = upload_item(page, "mixtape.mp3")
    metal = upload_item(page, "metal song.ogg")
    expect(mixtape).to_be_visible()
    expect(metal).to_be_visible()
    expect(mixtape.get_by_role("progressbar", name="Progress of mixtape.mp3")).to_be_attached()

    # The first file the server accepts opens at once, at its own URL, and follows its job.
    expect(page).to_have_url(re.compile(r"/jobs/[^/]+$"))
    expect(page.locator("#result")).to_be_visible()
    expect(mixtape).to_have_attribute("data-state", "done", timeout=JOB_TIMEOUT_MS)
    expect(metal).to_have_attribute("data-state", "done", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#result")).to_have_attribute("data-status", "done")

    # Open the mixtape's result from its row.
    mixtape.get_by_role("link", name="View result").click()
    job_id = job_id_of(mixtape)
    expect(page).to_have_url(live_service.url(f"/jobs/{job_id}"))
    job = live_service.api(f"/jobs/{job_id}")
    result = job["result"]
    expect(page.locator("#result")).to_have_attribute("data-job-id", job_id)
    check_result_matches(page, job)
    expect(mixtape.locator(".chip")).to_have_text(answer(result))
    expect(page.locator("#announcer")).not_to_be_empty()
    expect(page.locator(f'.history__link[data-job-id="{job_id}"]')).to_be_visible()
    wait_for_audio(page, "a.readyState >= 1", "load its metadata")
    page.screenshot(path=str(screenshot_dir / "result.png"), full_page=True)

    # The URL is the result: a reload shows the same.
    page.reload()
    check_result_matches(page, job)
    expect(page).to_have_title(re.compile(re.escape(display(result["genre"]))))
    page.screenshot(path=str(screenshot_dir / "result-reloaded.png"), full_page=True)


AUDIO_STATE_JS = """() => { const a = document.querySelector('audio.player');
  return a && {readyState: a.readyState, networkState: a.networkState, paused: a.paused,
    currentTime: a.currentTime, error: a.error && a.error.message, src: a.currentSrc}; }"""


def wait_for_audio(page: Any, predicate: str, what: str, **kwargs: Any) -> None:
    """Wait for ``predicate(audio, arg)``; fail with the player's state if it never holds."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        player = "document.querySelector('audio.player')"
        script = f"arg => {{ const a = {player}; return a && ({predicate}); }}"
        page.wait_for_function(script, **kwargs)
    except PlaywrightTimeout:
        pytest.fail(f"the player never got to {what}: {page.evaluate(AUDIO_STATE_JS)}")


DROP_FILE_JS = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  return transfer;
}"""


def test_drop_a_song_on_the_drop_zone(
    page: Any, live_service: Any, audio_files: dict[str, Path]
) -> None:
    import base64

    from playwright.sync_api import expect

    path = audio_files["metal"]
    page.goto(live_service.url("/"))
    payload = base64.b64encode(path.read_bytes()).decode("ascii")
    transfer = page.evaluate_handle(DROP_FILE_JS, [path.name, "audio/ogg", payload])
    zone = page.locator("#dropzone")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile("is-dragging"))
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile("is-dragging"))
    item = upload_item(page, path.name)
    expect(item).to_have_attribute("data-state", "done", timeout=JOB_TIMEOUT_MS)
    job = live_service.api(f"/jobs/{job_id_of(item)}")
    expect(page.locator(".verdict__genre")).to_have_text(display(job["result"]["genre"]))


def check_result_matches(page: Any, job: dict[str, Any]) -> None:
    """Check the result panel shows ``job``'s genre, confidence, genres and segments."""
    from playwright.sync_api import expect

    result = job["result"]
    expect(page.locator(".verdict__genre")).to_have_text(display(result["genre"]))
    expect(page.locator(".verdict__value")).to_have_text(percent(result["confidence"]))
    expect(page.locator(".result__filename")).to_have_text(job["filename"])
    bars = page.locator(".prob-bars li")
    expect(bars).to_have_count(len(result["probabilities"]))
    shown = bars.evaluate_all("items => items.map(li => li.dataset.genre)")
    assert sorted(shown) == sorted(result["probabilities"])
    probabilities = [result["probabilities"][g] for g in shown]
    assert probabilities == sorted(probabilities, reverse=True), "most probable first"
    expect(page.locator(".prob-bars li.is-top")).to_have_attribute("data-genre", result["genre"])
    # a second opinion in AudioSet's words under the answer, with what it is on hover
    assert len(result["sounds_like"]) == 3
    sounds = page.locator(".verdict__sounds")
    expect(sounds).to_have_text(sounds_like_line(result))
    expect(sounds).to_have_attribute("title", re.compile("trained on AudioSet"))
    expect(page.locator(".verdict__votes")).to_contain_text(
        f"{result['votes'][result['genre']]} of {result['n_segments']} slices"
    )

    bands = page.locator(".timeline .band")
    expect(bands).to_have_count(result["n_segments"])
    band_genres = bands.evaluate_all("items => items.map(b => b.dataset.genre)")
    assert band_genres == [segment["genre"] for segment in result["segments"]]
    band_colours = bands.evaluate_all("items => items.map(b => b.style.backgroundColor)")
    colours = dict(zip(band_genres, band_colours, strict=True))
    assert len(set(colours.values())) == len(colours), "one colour per genre"
    expect(page.locator(".legend li")).to_have_count(len(result["probabilities"]))
    audio = page.locator("audio.player")
    assert audio.get_attribute("src").endswith(f"/api/v1/jobs/{job['id']}/audio")


def test_timeline_seeks_on_click_and_keys_and_follows_playback(
    page: Any, live_service: Any, done_job: dict[str, Any], screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    result = done_job["result"]
    segments = result["segments"]
    total = max(result["duration_s"], segments[-1]["end"])
    page.goto(live_service.url(f"/jobs/{done_job['id']}"))
    slider = page.get_by_role("slider", name=re.compile("Song timeline"))
    expect(slider).to_be_visible()
    wait_for_audio(page, "a.readyState >= 1", "load its metadata")

    def current_time() -> float:
        return page.evaluate("document.querySelector('audio.player').currentTime")

    # Click in the middle: the player jumps there.
    track = page.locator(".timeline__track")
    box = track.bounding_box()
    track.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
    wait_for_audio(page, "Math.abs(a.currentTime - arg) < 0.6", "the middle", arg=total / 2)
    expect(slider).to_have_attribute("aria-valuenow", str(round(current_time())))

    # Hover: the tooltip and the inspector name the slice under the pointer.
    track.hover(position={"x": box["width"] * 0.05, "y": box["height"] / 2})
    first = segments[0]
    tooltip = page.locator(".timeline__tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text(display(first["genre"]))
    expect(page.locator(".inspector")).to_contain_text("Under the pointer")
    expect(page.locator(".inspector")).to_contain_text(f"Slice 1 of {len(segments)}")
    expect(page.locator(".inspector .mini-bars li")).to_have_count(len(first["probabilities"]))
    page.locator(".listen").screenshot(path=str(screenshot_dir / "timeline-hover.png"))
    page.mouse.move(1, 1)

    # Keys: Home, End, arrows move by slice.
    slider.focus()
    page.keyboard.press("Home")
    assert current_time() == pytest.approx(0.0, abs=0.05)
    page.keyboard.press("ArrowRight")
    assert current_time() == pytest.approx(segments[1]["start"], abs=0.05)
    page.keyboard.press("End")
    assert current_time() == pytest.approx(segments[-1]["start"], abs=0.05)
    expect(page.locator(".inspector")).to_contain_text("At the playhead")
    expect(page.locator(".inspector")).to_contain_text(f"Slice {len(segments)} of {len(segments)}")
    expect(page.locator(".band.is-current")).to_have_attribute(
        "data-index", str(segments[-1]["index"])
    )

    # Space plays: the playhead follows the music.
    page.keyboard.press("Home")
    page.keyboard.press(" ")
    wait_for_audio(page, "a.currentTime > 1.0", "play a second")
    left = page.locator(".timeline__playhead").evaluate("e => parseFloat(e.style.left)")
    assert left > 0
    page.keyboard.press(" ")
    expect(page.locator("audio.player")).to_have_js_property("paused", True)


def test_opening_another_result_silences_the_previous_song(
    page: Any, live_service: Any, done_job: dict[str, Any], audio_files: dict[str, Path]
) -> None:
    from playwright.sync_api import expect

    other = post_file(live_service.base_url, audio_files["metal"], "audio/ogg").json()
    page.goto(live_service.url(f"/jobs/{done_job['id']}"))
    wait_for_audio(page, "a.readyState >= 1", "load its metadata")
    playing = page.evaluate_handle("document.querySelector('audio.player')")
    page.get_by_role("slider", name=re.compile("Song timeline")).press(" ")
    wait_for_audio(page, "a.currentTime > 0.3", "play")

    page.locator(f'.history__link[data-job-id="{other["id"]}"]').click()
    expect(page).to_have_url(live_service.url(f"/jobs/{other['id']}"))
    expect(page.locator("#result")).to_have_attribute("data-job-id", other["id"])
    assert playing.evaluate("a => a.paused && !a.isConnected")
    page.go_back()
    expect(page.locator("#result")).to_have_attribute("data-job-id", done_job["id"])


def test_undecodable_file_is_refused_at_upload(
    page: Any, live_service: Any, audio_files: dict[str, Path], screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(live_service.url("/"))
    page.get_by_label("Choose files").set_input_files(str(audio_files["bad"]))
    item = upload_item(page, "broken.mp3")
    expect(item).to_have_attribute("data-state", "refused")
    expect(item.get_by_role("alert")).to_contain_text("broken.mp3")
    page.screenshot(path=str(screenshot_dir / "failed-upload.png"), full_page=True)


def test_failed_job_shows_the_workers_reason(
    page: Any, live_service: Any, audio_files: dict[str, Path], screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    # Past the door's probe, as a file that only fails when decoded would be.
    job_id = submit_past_the_door(live_service.settings, audio_files["bad"])
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    job = live_service.api(f"/jobs/{job_id}")
    while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = live_service.api(f"/jobs/{job_id}")
    assert job["status"] == "failed"

    page.goto(live_service.url(f"/jobs/{job_id}"))
    notice = page.locator("#result").get_by_role("alert")
    expect(notice).to_contain_text(job["error"]["detail"])
    expect(notice).to_contain_text(job["error"]["title"])
    page.reload()
    expect(page.locator("#result").get_by_role("alert")).to_contain_text(job["error"]["detail"])
    page.screenshot(path=str(screenshot_dir / "failed-job.png"), full_page=True)


@pytest.mark.parametrize(
    ("key", "content_type", "status"),
    [("text", "text/plain", 415), ("big", "audio/wav", 413)],
    ids=["not-audio-415", "too-large-413"],
)
def test_refused_upload_shows_the_problem_detail(
    page: Any,
    live_service: Any,
    audio_files: dict[str, Path],
    screenshot_dir: Path,
    key: str,
    content_type: str,
    status: int,
) -> None:
    from playwright.sync_api import expect

    path = audio_files[key]
    answer = post_file(live_service.base_url, path, content_type)
    assert answer.status_code == status
    problem = answer.json()

    page.goto(live_service.url("/"))
    page.get_by_label("Choose files").set_input_files(str(path))
    item = upload_item(page, path.name)
    expect(item).to_have_attribute("data-state", "refused")
    expect(item.locator(".upload-item__status")).to_contain_text(str(status))
    expect(item.get_by_role("alert")).to_contain_text(problem["detail"])
    page.screenshot(path=str(screenshot_dir / f"refused-{status}.png"))
    item.get_by_role("button", name=f"Dismiss {path.name}").click()
    expect(item).to_have_count(0)


def test_unknown_job_url_says_so(page: Any, live_service: Any) -> None:
    from playwright.sync_api import expect

    page.goto(live_service.url("/jobs/no-such-job"))
    expect(page.locator("#result").get_by_role("alert")).to_contain_text("No such song")


def test_upload_without_a_model_shows_503_detail(
    page: Any, modelless_service: Any, audio_files: dict[str, Path], screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    path = audio_files["metal"]
    answer = post_file(modelless_service.base_url, path, "audio/ogg")
    assert answer.status_code == 503
    page.goto(modelless_service.url("/"))
    page.get_by_label("Choose files").set_input_files(str(path))
    item = upload_item(page, path.name)
    expect(item).to_have_attribute("data-state", "refused")
    expect(item.locator(".upload-item__status")).to_contain_text("503")
    expect(item.get_by_role("alert")).to_contain_text(answer.json()["detail"])
    page.screenshot(path=str(screenshot_dir / "refused-503.png"))


def test_result_fits_a_phone(
    open_page: Any, live_service: Any, done_job: dict[str, Any], screenshot_dir: Path
) -> None:
    from playwright.sync_api import expect

    phone = open_page(
        viewport={"width": 360, "height": 780}, device_scale_factor=2, is_mobile=True,
        has_touch=True,
    )  # fmt: skip
    phone.goto(live_service.url(f"/jobs/{done_job['id']}"))
    expect(phone.locator(".verdict__genre")).to_have_text(display(done_job["result"]["genre"]))
    expect(phone.locator(".timeline .band")).to_have_count(done_job["result"]["n_segments"])
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    expect(phone.get_by_role("link", name="API")).to_be_in_viewport()
    expect(phone.get_by_label("Choose files")).to_be_attached()
    phone.screenshot(path=str(screenshot_dir / "phone-result.png"), full_page=True)


def test_keyboard_reaches_every_control_with_a_visible_focus(
    page: Any, live_service: Any, done_job: dict[str, Any]
) -> None:
    page.goto(live_service.url(f"/jobs/{done_job['id']}"))
    page.locator(".timeline").wait_for()
    page.locator("body").focus()
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        info = page.evaluate(FOCUS_INFO_JS)
        if info["tag"] == "BODY":
            break
        seen.append(info)
    names = [f"{i['tag']}#{i['id']}.{i['cls']}" for i in seen]
    assert any(i["id"] == "file-input" for i in seen), names
    assert any("timeline" in i["cls"] for i in seen), names
    assert any(i["tag"] == "AUDIO" for i in seen), names
    assert any(i["text"] == "Copy link" for i in seen), names
    for info in seen:
        if info["tag"] == "AUDIO":
            continue  # the browser draws the focus of its own media controls
        assert info["outline"] != "none", info
        assert info["width"] >= 2, info


HERE = Path(__file__).parent
CONTRAST_JS = (HERE / "contrast.js").read_text(encoding="utf-8")
FOCUS_INFO_JS = (HERE / "focus_info.js").read_text(encoding="utf-8")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(
    open_page: Any, live_service: Any, done_job: dict[str, Any], scheme: str
) -> None:
    page = open_page(color_scheme=scheme)
    page.goto(live_service.url(f"/jobs/{done_job['id']}"))
    page.locator(".timeline").wait_for()
    page.locator(".history__link").first.wait_for()
    selectors = [
        ".site-nav a", ".brand", ".result__meta", ".eyebrow", ".verdict__genre", ".verdict__value",
        ".verdict__label", ".verdict__votes", ".verdict__sounds", ".prob-bars__name",
        ".prob-bars__value", ".timeline__axis span", ".legend li", ".inspector__where",
        ".inspector__mode", ".mini-bars__value", ".history__name", ".history__meta time", ".chip",
        ".badge",
        ".button", ".dropzone__hint", ".site-footer p",
    ]  # fmt: skip
    measured = page.evaluate(CONTRAST_JS, selectors)
    assert {m["selector"] for m in measured} >= {".verdict__genre", ".prob-bars__value", ".button"}
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, low


GENRE_CONTRAST_JS = """async () => {
  const { GENRE_COLORS } = await import('/assets/js/format.js');
  const host = document.querySelector('#result-body');
  const out = [];
  for (const [genre, colour] of Object.entries(GENRE_COLORS)) {
    const box = document.createElement('section');
    box.className = 'verdict';
    box.style.setProperty('--genre', colour);
    const name = document.createElement('p');
    name.className = 'verdict__genre test-probe';
    name.textContent = genre;
    const chip = document.createElement('span');
    chip.className = 'chip test-probe';
    chip.style.setProperty('--genre', colour);
    chip.textContent = genre;
    box.append(name, chip);
    host.append(box);
  }
  return out;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_genre_colour_keeps_its_text_readable(
    open_page: Any, live_service: Any, done_job: dict[str, Any], scheme: str
) -> None:
    page = open_page(color_scheme=scheme)
    page.goto(live_service.url(f"/jobs/{done_job['id']}"))
    page.locator(".timeline").wait_for()
    page.evaluate(GENRE_CONTRAST_JS)
    measured = page.evaluate(CONTRAST_JS, [".test-probe"])
    assert len(measured) == 22  # GTZAN's ten and electronic: the verdict's name and a chip each
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, low


def test_page_says_warming_up_until_a_worker_holds_the_model(page: Any, live_service: Any) -> None:
    from playwright.sync_api import expect

    warming = {
        "type": "urn:genreflow:problem:not_ready", "title": "Not ready", "status": 503,
        "detail": "Not ready: worker: warming up", "code": "not_ready", "failed": ["worker"],
        "checks": {"worker": {"ok": False, "detail": "warming up: no predict worker holds it"}},
    }  # fmt: skip
    # /ready answers as it does before any worker is warm (the live worker is warm by now).
    page.route(
        "**/ready",
        lambda route: route.fulfill(
            status=503, content_type="application/problem+json", body=json.dumps(warming)
        ),
    )
    page.goto(live_service.url("/"))
    status = page.locator("#service-status")
    expect(status).to_be_visible()
    expect(status).to_have_text(re.compile(r"^Warming up"))

    page.unroute("**/ready")  # the real answer: the integration worker holds the model
    expect(status).to_be_hidden(timeout=10_000)


@pytest.fixture(scope="module")
def keyed_service(live_service: Any) -> Any:
    """Yield the same service with ``GENREFLOW_REQUIRE_KEYS=1``, on its own port."""
    from tests.browser.conftest import LiveService, serving
    from web import create_app

    settings = live_service.settings.replace(require_keys=True)
    with serving(create_app(settings)) as base_url:
        yield LiveService(base_url, settings, live_service.worker)


def test_with_keys_required_the_upload_page_asks_for_a_key_and_uses_it(
    page: Any, keyed_service: Any, audio_files: dict[str, Path]
) -> None:
    from playwright.sync_api import expect

    from shared.store.db import session_scope
    from shared.store.keys import create_key

    with session_scope(keyed_service.settings.database_url) as session:
        key = create_key(session, name="browser upload", scope="classify").token
    page.goto(keyed_service.url("/"))
    expect(page.locator("#client-key-status")).to_contain_text("needs an API key")

    # Without a key the server refuses the upload, and the row says so.
    page.get_by_label("Choose files").set_input_files(str(audio_files["metal"]))
    expect(upload_item(page, "metal song.ogg")).to_have_attribute("data-state", "refused")

    page.get_by_label("API key", exact=True).fill("gf_not-a-real-key-at-all")
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#client-key-status")).to_contain_text("unknown or has been revoked")

    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#client-key-status")).to_contain_text(f"Using the API key {key[:11]}")
    expect(page.locator("#client-key-form")).to_be_hidden()

    page.get_by_label("Choose files").set_input_files(str(audio_files["mixtape"]))
    mixtape = upload_item(page, "mixtape.mp3")
    expect(mixtape).to_have_attribute("data-state", "done", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#result")).to_have_attribute("data-status", "done")
    # The player cannot send a header: it plays the audio the page fetched with the key.
    expect(page.locator("audio.player")).to_have_attribute("src", re.compile(r"^blob:"))
    # The key stays for the session: a reload lists the job in the history without asking.
    job_id = job_id_of(mixtape)
    page.reload()
    expect(page.locator("#client-key-status")).to_contain_text("Using the API key")
    expect(page.locator(f'.history__link[data-job-id="{job_id}"]')).to_be_visible()


def test_an_uncertain_answer_reads_not_sure_with_the_closest_genre(
    page: Any, live_service: Any, audio_files: dict[str, Path], screenshot_dir: Path
) -> None:
    """The page's side of "uncertain": whatever the model decided, the page must say it."""
    from playwright.sync_api import expect

    from shared.store.db import session_scope
    from shared.store.orm import StoredPrediction

    job = classified(live_service, audio_files["metal"], "audio/ogg")
    with session_scope(live_service.settings.database_url) as session:
        stored = session.query(StoredPrediction).filter_by(job_id=job["id"]).one()
        stored.uncertain, stored.uncertain_reason = True, "unfamiliar_sound"
    closest = job["result"]["genre"]

    page.goto(live_service.url(f"/jobs/{job['id']}"))
    verdict = page.locator(".verdict")
    expect(verdict.locator(".eyebrow")).to_have_text("Not sure — closest genre")
    expect(verdict.locator(".verdict__genre")).to_have_attribute("data-genre", closest)
    expect(verdict.get_by_role("note")).to_contain_text("does not sound like the music")
    # unsure, the AudioSet network's words are the main hint: a line under the answer, in full
    sounds = verdict.locator(".verdict__sounds")
    expect(sounds).to_have_text(sounds_like_line(job["result"]))
    expect(sounds).to_have_css("font-weight", "650")
    history = page.locator(f'.history__link[data-job-id="{job["id"]}"]')
    expect(history).to_contain_text("Not sure — closest:")
    expect(history.locator(".history__sounds")).to_have_text(
        f"sounds like {job['result']['sounds_like'][0]['name']}"
    )
    page.screenshot(path=str(screenshot_dir / "uncertain-answer.png"), full_page=True)
