"""The page in real headless Chromium (CHROMIUM, else /usr/bin/chromium or on PATH; see
tests/support/chromium.py), driven by Playwright.

The web UI runs under gunicorn over gRPC, as `make ui` runs it, against its own stand-in model
server, which the last test stops to see the banner, then starts again to see the page recover.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web_ui.drawing import draw_seven, encode
from tests.web_ui.webui_servers import StandIn, WebUiServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def servers(model_base_path, data_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("browser-logs")
    model_server = StandIn(model_base_path, str(logs / "standin.log"))
    web = WebUiServer(model_server, data_dir, str(logs / "gunicorn.log"), protocol="grpc")
    try:
        model_server.start()
        web.start()
        yield model_server, web
    finally:
        web.stop()
        model_server.stop()


class Watched:
    """A page plus every console error and every URL it requested."""

    def __init__(self, page, origin):
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not (url.startswith(self.origin) or url.startswith("data:"))]


@pytest.fixture
def watched(browser, servers):
    _, web = servers
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    watcher = Watched(page, web.url)
    page.goto(web.url + "/")
    yield watcher
    context.close()


def bar_widths(page) -> list[float]:
    return page.eval_on_selector_all("#bars .bar", "bars => bars.map(b => b.getBoundingClientRect().width)")


def test_start_page_shows_a_digit_its_prediction_and_ten_bars(watched):
    page = watched.page
    assert page.locator("#digit-image").get_attribute("src").startswith("data:image/png;base64,")
    assert re.fullmatch(r"[0-9]", page.locator("#true-label").inner_text())
    assert re.fullmatch(r"[0-9]", page.locator("#prediction").inner_text())
    assert page.locator("#bars .bar-row").count() == 10
    assert max(bar_widths(page)) > 50  # the predicted class's bar is drawn, not just a number
    assert page.locator("#bars .bar-row.top").count() == 1
    assert page.locator("#model-name").inner_text() == "mnist"
    assert page.locator("#model-version").inner_text() == "1"
    assert re.fullmatch(r"[0-9.]+ ms", page.locator("#latency").inner_text())
    assert page.locator("#banner").is_hidden()
    assert watched.errors == [] and watched.foreign_requests() == []


def test_test_random_image_fetches_a_new_digit_without_reloading(watched):
    page = watched.page
    page.evaluate("window.notReloaded = true")
    before = page.locator("#sample-index").inner_text()
    for _ in range(3):  # a random pick may repeat the same digit
        with page.expect_response("**/api/v1/predict"):
            page.get_by_role("button", name="Test random image").click()
        if page.locator("#sample-index").inner_text() != before:
            break
    expect(page.locator("#sample-index")).not_to_have_text(before)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#prediction")).to_have_text(re.compile(r"^[0-9]$"))
    expect(page.locator("#verdict")).to_have_text(re.compile(r"^(Correct|Wrong \(true label [0-9]\))"))
    assert watched.errors == []


def draw(page, strokes):
    box = page.locator("#draw-canvas").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=8)
        page.mouse.up()


def test_drawing_a_digit_gets_a_prediction_and_clear_resets(watched):
    page = watched.page
    page.get_by_role("tab", name="Draw a digit").click()
    assert page.locator("#draw-canvas").is_visible()
    with page.expect_response("**/api/v1/predict") as answer:
        draw(page, [[(130, 40), (140, 240)]])  # a "1": one downward stroke
    assert answer.value.status == 200
    assert answer.value.json()["prediction"] == 1
    expect(page.locator("#prediction")).to_have_text("1")  # rendered after the response arrives
    assert page.locator("#model-input-figure").is_visible()  # what the model saw, 28x28
    assert page.locator("#verdict").inner_text() == ""  # no true label for a drawing

    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#prediction")).to_have_text("?")
    # The bars shrink with a short CSS transition: wait for them to reach zero. (Polled from
    # here: page.wait_for_function with an expression needs eval, which the page's CSP forbids.)
    for _ in range(50):
        if max(bar_widths(page)) == 0:
            break
        page.wait_for_timeout(50)
    assert max(bar_widths(page)) == 0
    with page.expect_response("**/api/v1/predict") as answer:
        draw(page, [[(70, 60), (210, 60), (120, 240)]])  # a "7"
    assert answer.value.status == 200 and answer.value.json()["prediction"] == 7
    assert watched.errors == []


def test_uploading_an_image_gets_a_prediction(watched):
    page = watched.page
    page.get_by_role("tab", name="Upload an image").click()
    picture = encode(draw_seven(width=16), "JPEG")
    with page.expect_response("**/api/v1/predict") as answer:
        page.set_input_files(
            "#upload-input", files=[{"name": "seven.jpg", "mimeType": "image/jpeg", "buffer": picture}]
        )
    assert answer.value.status == 200
    assert page.locator("#upload-preview").is_visible()
    # The page renders the answer after the response event Playwright reports: wait for it.
    expect(page.locator("#prediction")).to_have_text(str(answer.value.json()["prediction"]))


def test_tabs_work_with_the_keyboard(watched):
    page = watched.page
    page.get_by_role("tab", name="Test digit").focus()
    page.keyboard.press("ArrowRight")
    assert page.locator("#panel-draw").is_visible() and page.locator("#panel-sample").is_hidden()
    assert page.evaluate("document.activeElement.id") == "tab-draw"
    page.keyboard.press("End")
    assert page.locator("#panel-upload").is_visible()
    page.keyboard.press("Home")
    page.keyboard.press("Tab")  # into the panel: the button is reachable and activates with Enter
    assert page.evaluate("document.activeElement.id") == "new-sample"
    with page.expect_response("**/api/v1/predict"):
        page.keyboard.press("Enter")


def test_fits_a_375_pixel_wide_phone(browser, servers):
    _, web = servers
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(web.url + "/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.locator("#bars .bar-row").count() == 10
        for selector in ("#digit-image", "#new-sample", "#bars"):
            box = page.locator(selector).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
    finally:
        context.close()


def test_the_banner_shows_when_the_model_server_is_stopped_and_clears_when_it_is_back(watched, servers):
    model_server, _ = servers
    page = watched.page
    model_server.stop()
    with page.expect_response("**/api/v1/predict") as answer:
        page.get_by_role("button", name="Test random image").click()
    assert answer.value.status == 503
    banner = page.locator("#banner")
    banner.wait_for(state="visible")
    assert "unavailable" in banner.inner_text().lower()
    expect(page.locator("#prediction")).to_have_text("?")
    expect(page.locator("#model-version")).to_have_text("–")

    # Back on the same ports: the page notices by itself (it polls /api/v1/model while the banner
    # shows), hides the banner and predicts again, with no click.
    model_server.start()
    banner.wait_for(state="hidden", timeout=60_000)
    page.wait_for_function("() => /^[0-9]$/.test(document.getElementById('prediction').textContent)")
    expect(page.locator("#model-version")).to_have_text("1")
