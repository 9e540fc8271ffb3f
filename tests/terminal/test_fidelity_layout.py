"""Layout polish (issue 9, point 7): the pages in chromium at 1000 px and wider."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image

from tests.browser import browser, wait_for_terminal_text
from tests.fidelity import wait_live

TRUNCATED = """() => [...document.querySelectorAll('[data-testid=stMain] button')]
  .filter((b) => b.offsetParent !== null)
  .flatMap((b) => [b, ...b.querySelectorAll('*')])
  .filter((e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).textOverflow === 'ellipsis')
  .map((e) => e.textContent)"""


@pytest.mark.parametrize("width", [1000, 1280, 1600])
def test_top_of_the_page_and_actions(clean_app, width):
    ids = [clean_app.request("POST", "/api/sessions", {"agent": "bash"})[1]["id"] for _ in range(2)]
    with browser() as b:
        page = b.new_page(viewport={"width": width, "height": 850})
        page.goto(f"{clean_app.url}/?session={ids[1]}")
        wait_live(page)
        bar = page.locator(".st-key-session-bar").bounding_box()
        head = page.locator(".st-key-session-head").bounding_box()
        term = page.get_by_test_id("terminal").bounding_box()
        assert bar["y"] <= 40, bar  # no empty band above the page
        # every session and the list of them are above the terminal, never below it
        assert bar["y"] + bar["height"] <= head["y"] <= term["y"]
        assert page.get_by_role("button", name=re.compile(r"All sessions \(2\)")).bounding_box()["y"] < term["y"]
        assert page.evaluate(TRUNCATED) == []
        for name in ("New shell", "Rename", "Close"):
            button = page.get_by_role("button", name=name, exact=True)
            assert button.is_visible() and name in button.inner_text()
        assert term["height"] > 400



@pytest.mark.parametrize(("path", "title"), [("launch", "Launch an agent"), ("sync", "Workspace sync"),
                                             ("setup", "Setup")])
def test_no_empty_band_above_any_page(clean_app, path, title):
    with browser() as b:
        page = b.new_page(viewport={"width": 1280, "height": 850})
        page.goto(f"{clean_app.url}/{path}")
        heading = page.get_by_role("heading", name=title, exact=True)
        heading.wait_for(timeout=60000)
        # The page frame's style lands a moment after the first paint; Streamlit's default puts the title at ~96 px.
        page.wait_for_function("(el) => el.getBoundingClientRect().top <= 60", arg=heading.element_handle(),
                               timeout=10000)

def test_default_names_tell_sessions_apart(clean_app):
    project = clean_app.home / "projects" / "demo"
    project.mkdir(parents=True, exist_ok=True)
    labels = [clean_app.request("POST", "/api/sessions", body)[1]["label"] for body in (
        {"agent": "bash"}, {"agent": "bash"}, {"agent": "bash", "cwd": "demo"}, {"agent": "bash", "cwd": "demo"})]
    assert labels == ["Shell · projects · 1", "Shell · projects · 2", "Shell · demo · 1", "Shell · demo · 2"]


def test_search_matches_are_readable_on_the_light_theme(clean_app):
    settings = clean_app.home / ".coda" / "settings.json"
    saved = settings.read_text() if settings.exists() else None
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({**(json.loads(saved) if saved else {}), "theme": "light"}))
    try:
        _, s = clean_app.request("POST", "/api/sessions", {"agent": "bash"})
        with browser() as b:
            page = b.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{clean_app.url}/?session={s['id']}")
            wait_live(page)
            page.keyboard.type("echo needle haystack needle\n")
            wait_for_terminal_text(page, "needle haystack")
            page.keyboard.press("Control+Shift+F")
            page.get_by_test_id("terminal-search").fill("needle")
            page.wait_for_function(
                "() => [...document.querySelectorAll('*')].map((e) => e.shadowRoot).filter(Boolean)"
                ".some((r) => r.querySelector('.xterm-find-result-decoration'))", timeout=10000)
            page.wait_for_timeout(500)
            shot = page.get_by_test_id("terminal").screenshot()
            assert page.get_by_test_id("terminal").get_attribute("data-theme") == "light"
    finally:
        if saved is None:
            settings.unlink()
        else:
            settings.write_text(saved)
    # The matches are painted light (the text on them is the dark foreground): count such pixels.
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    raw = image.tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    light_match = sum(1 for p in pixels if abs(p[0] - 0xFF) < 8 and abs(p[1] - 0xE5) < 8 and abs(p[2] - 0x8A) < 8)
    active = sum(1 for p in pixels if abs(p[0] - 0xFF) < 8 and abs(p[1] - 0xB0) < 8 and abs(p[2] - 0x57) < 8)
    dark_olive = sum(1 for p in pixels if abs(p[0] - 0x6B) < 8 and abs(p[1] - 0x5D) < 8 and p[2] < 8)
    assert light_match + active > 200 and dark_olive == 0, (light_match, active, dark_olive)
