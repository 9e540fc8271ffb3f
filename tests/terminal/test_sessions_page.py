"""The sessions page in a real browser: new shell, type, see, reload."""

from __future__ import annotations

import random

from tests.browser import browser, terminal_text, wait_for_terminal_text


def test_new_shell_type_and_reload(clean_app, tmp_path):
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(clean_app.url)
        page.get_by_role("button", name="New shell").click()
        page.wait_for_function("() => !!window.__codaTerm", timeout=20000)
        page.wait_for_selector("[data-testid=terminal-status]", state="hidden", timeout=15000)
        wait_for_terminal_text(page, "projects", 15000)
        page.keyboard.type("echo hello-$RANDOM-$((6*7))\n")
        page.wait_for_function(
            "() => /hello-\\d+-42/.test(Array.from({length: window.__codaTerm.buffer.active.length},"
            " (_, i) => window.__codaTerm.buffer.active.getLine(i).translateToString(true)).join('\\n'))",
            timeout=15000,
        )
        before = terminal_text(page)
        page.screenshot(path=str(tmp_path / "sessions.png"))
        _, sessions = clean_app.request("GET", "/api/sessions")
        assert len(sessions) == 1
        assert sessions[0]["id"] in page.url

        page.reload()
        page.wait_for_function("() => !!window.__codaTerm", timeout=20000)
        marker = next(line for line in before.splitlines() if "hello-" in line and "-42" in line and "echo" not in line)
        wait_for_terminal_text(page, marker.strip(), 15000)
        _, after = clean_app.request("GET", "/api/sessions")
        assert [s["id"] for s in after] == [sessions[0]["id"]]
        # the terminal takes most of the window height
        box = page.locator("[data-testid=terminal]").bounding_box()
        assert box and box["height"] > 500, box
        assert not errors, errors


def test_switch_rename_and_close(clean_app):
    ids = [clean_app.request("POST", "/api/sessions", {"agent": "bash", "label": f"work-{i}"})[1]["id"] for i in range(2)]
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{clean_app.url}/?session={ids[0]}")
        page.wait_for_function("() => !!window.__codaTerm", timeout=20000)
        page.get_by_text("work-1", exact=True).click()
        page.wait_for_url(f"**session={ids[1]}**", timeout=10000)
        # let the rerun finish: the previous session's controls go away
        page.wait_for_function(
            "() => document.querySelectorAll('input[aria-label=\"Label\"]').length <= 1"
            " && !document.querySelector('input[aria-label=\"Label\"][value=\"work-0\"]')",
            timeout=15000,
        )
        page.get_by_role("button", name="Rename").click()
        name = f"renamed-{random.randint(1000, 9999)}"
        # a stale copy of the previous session's popover may linger during the rerun
        page.locator('input[aria-label="Label"][value="work-1"]').fill(name)
        page.get_by_role("button", name="Save name").click()
        page.wait_for_function(f"() => document.body.innerText.includes('{name}')", timeout=10000)
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Close", exact=True).click()
        page.get_by_role("button", name="Close session").click()
        page.wait_for_function(
            f"() => !document.body.innerText.includes('{name}')", timeout=10000
        )
        _, listed = clean_app.request("GET", "/api/sessions")
        assert [s["id"] for s in listed] == [ids[0]]
