"""The web page at / in real headless Chromium (Debian's `chromium`, driven by Playwright): the existing collections
offered, a new one made by an upload, the job watched, a question answered with its steps shown, no element wider
than its card, and a citation reached and opened with the keyboard at the cited page."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import CRAZY, pdf

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


# one unbroken word: it used to push the delete button out of its card
LONG_NAME = "apple_think_different_the_crazy_ones_television_commercial_narration_1997_full_transcript.pdf"

OVERFLOWING = """() => {
  const bad = [];
  for (const card of document.querySelectorAll("section")) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) bad.push(el.tagName + " " + (el.id || el.textContent.slice(0, 40)));
    }
  }
  return bad;
}"""


def test_collections_offered_a_question_answered_and_a_citation_opened_by_keyboard(server, browser, tmp_path):
    assert server.client.get("/favicon.ico").status_code == 200
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelectorAll('#collection option').length > 1")
    offered = page.eval_on_selector_all("#collection option", "os => os.map(o => o.value)")
    existing = [c["name"] for c in server.client.get("/v1/collections").json()["collections"]]
    assert offered == [*existing, ""] and "crazy" in existing  # the existing ones, then "new collection..."

    page.select_option("#collection", "")
    assert page.is_visible("#new-collection")
    page.fill("#new-collection", "webpage")
    page.dispatch_event("#new-collection", "change")
    page.set_input_files("#files", [{"name": LONG_NAME, "mimeType": "application/pdf", "buffer": pdf(CRAZY)}])
    page.click("#upload")
    page.wait_for_function("document.getElementById('job-state').textContent.startsWith('succeeded')",
                           timeout=180_000)
    assert f"{LONG_NAME}: ok" in page.inner_text("#job-files")
    page.wait_for_selector(f"#docs td:has-text('{LONG_NAME[:20]}')")
    assert page.input_value("#collection") == "webpage" and page.is_hidden("#new-collection")

    # every text the status line held: a callback sees only the last of several changes made in one task,
    # so the texts replaced in between are read from the mutation records
    page.evaluate("""() => { window.stages = []; const msg = document.getElementById('ask-msg');
        new MutationObserver(records => {
            for (const r of records) {
                for (const n of r.removedNodes) window.stages.push(n.textContent);
                if (r.type === 'characterData') window.stages.push(r.oldValue);
            }
            window.stages.push(msg.textContent);
        }).observe(msg, {childList: true, characterData: true, characterDataOldValue: true, subtree: true}); }""")
    page.fill("#question", "Who are the crazy ones?")
    page.select_option("#chain", "stuff")
    page.fill("#k", "1")
    page.click("#ask")
    page.wait_for_selector("#sources li a", timeout=300_000)
    page.wait_for_function("document.getElementById('ask-msg').textContent.startsWith('answered in')")
    stages = {t.split(" · ")[0] for t in page.evaluate("window.stages")}
    assert {"retrieving passages", "reading the passages"} <= stages, stages  # progress before the answer
    assert page.inner_text("#answer").strip() and page.inner_text("#trace").startswith("stuff")
    assert page.inner_text("#sources li a") == f"{LONG_NAME}, p. 1"
    assert page.evaluate(OVERFLOWING) == []

    shot = tmp_path / "api-page.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("API_PAGE_SCREENSHOT"):  # to refresh docs/api-page.png: API_PAGE_SCREENSHOT=docs/api-page.png
        shutil.copy(shot, os.environ["API_PAGE_SCREENSHOT"])

    page.focus("#ask")
    for _ in range(30):  # Tab from the Ask button to the citation: a link the keyboard reaches
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#sources') !== null"):
            break
    assert page.evaluate("document.activeElement.tagName") == "A"
    with page.expect_popup() as popup:
        page.keyboard.press("Enter")
    opened = popup.value
    assert opened.url.startswith("blob:") and opened.url.endswith("#page=1")
    page.close()
