"""The web page at / in real headless Chromium (Debian's `chromium`, driven by Playwright): upload a PDF, watch
the job, ask, see a streamed answer with a citation that opens the cited page."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import fixture

from .conftest import CRAZY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # no connections to the closed network


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (uses Debian's chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def test_upload_ask_and_open_the_cited_page(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(server.url + "/")
    page.fill("#collection", "webpage")
    page.dispatch_event("#collection", "change")
    page.set_input_files("#files", str(fixture(CRAZY)))
    page.click("#upload")
    page.wait_for_function("document.getElementById('job-state').textContent.startsWith('succeeded')",
                           timeout=180_000)
    assert "crazyones.pdf: ok" in page.inner_text("#job-files")
    page.wait_for_selector("#docs td:has-text('crazyones.pdf')")

    page.fill("#question", "Who are the crazy ones?")
    page.select_option("#chain", "stuff")
    page.fill("#k", "1")
    page.click("#ask")
    link = page.wait_for_selector("#sources li a", timeout=300_000)
    assert link.inner_text() == "crazyones.pdf, p. 1"
    assert page.inner_text("#answer").strip()
    assert page.inner_text("#trace").startswith("stuff")
    shot = tmp_path / "api-page.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("API_PAGE_SCREENSHOT"):  # to refresh docs/api-page.png: API_PAGE_SCREENSHOT=docs/api-page.png
        shutil.copy(shot, os.environ["API_PAGE_SCREENSHOT"])

    with page.expect_popup() as popup:
        link.click()
    opened = popup.value
    assert opened.url.startswith("blob:") and opened.url.endswith("#page=1")
    page.close()
