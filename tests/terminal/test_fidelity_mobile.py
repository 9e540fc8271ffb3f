"""Phones and tablets (issue 9, point 6): Playwright's mobile emulation (390 x 844, touch).

The key bar shows on touch screens, tapping its keys sends the right bytes
(recorded in the session) and keeps the keyboard's focus in the terminal,
and the terminal fits 40+ columns with none clipped.
"""

from __future__ import annotations

from tests.browser import browser, wait_for_terminal_text
from tests.fidelity import recorder_command, wait_file, wait_live

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/156.0 Mobile Safari/537.36",
}

# key id -> bytes sent (cursor keys in normal mode, as the recorder leaves them)
KEYS = {
    "esc": b"\x1b", "tab": b"\t", "shift-tab": b"\x1b[Z",
    "left": b"\x1b[D", "up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C",
    "home": b"\x1b[H", "end": b"\x1b[F", "pgup": b"\x1b[5~", "pgdn": b"\x1b[6~",
    "ctrl-c": b"\x03", "ctrl-d": b"\x04",
}


def test_key_bar_sends_the_right_bytes(clean_app, tmp_path):
    _, s = clean_app.request("POST", "/api/sessions", {"agent": "bash"})
    out = tmp_path / "keys.bin"
    with browser() as b:
        ctx = b.new_context(**PHONE)
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=clean_app.url)
        page = ctx.new_page()
        page.goto(f"{clean_app.url}/?session={s['id']}")
        wait_live(page)
        bar = page.get_by_test_id("terminal-keys")
        assert bar.is_visible()

        # 40+ columns, and the last one inside the visible box.
        cols = page.evaluate("() => window.__codaTerm.cols")
        assert cols >= 40, cols
        edges = page.evaluate("""() => { const t = window.__codaTerm;
            const screen = t.element.querySelector('.xterm-screen').getBoundingClientRect();
            const box = t.element.closest('.coda-terminal').getBoundingClientRect();
            return [screen.right, box.right, window.innerWidth]; }""")
        assert edges[0] <= edges[1] <= edges[2], edges

        page.keyboard.type(recorder_command(out) + "\n")
        wait_for_terminal_text(page, "REC-READY")
        expected = b""
        for key, sent in KEYS.items():
            page.get_by_test_id(f"key-{key}").tap()
            expected += sent
            wait_file(out, lambda d, e=expected: d == e)

        # Sticky modifiers apply to the next key, from the keyboard or the bar, then let go.
        page.get_by_test_id("key-ctrl").tap()
        assert page.get_by_test_id("key-ctrl").get_attribute("aria-pressed") == "true"
        page.keyboard.type("c")
        expected += b"\x03"
        wait_file(out, lambda d: d == expected)
        assert page.get_by_test_id("key-ctrl").get_attribute("aria-pressed") == "false"
        page.get_by_test_id("key-alt").tap()
        page.keyboard.type("x")
        expected += b"\x1bx"
        wait_file(out, lambda d: d == expected)
        page.get_by_test_id("key-ctrl").tap()
        page.get_by_test_id("key-up").tap()
        expected += b"\x1b[1;5A"
        wait_file(out, lambda d: d == expected)
        page.keyboard.type("q")  # the focus stayed in the terminal through every tap
        expected += b"q"
        wait_file(out, lambda d: d == expected)

        page.evaluate("() => navigator.clipboard.writeText('from the phone')")
        page.get_by_test_id("key-paste").tap()
        expected += b"from the phone"
        wait_file(out, lambda d: d == expected)


def test_no_key_bar_with_a_mouse(clean_app):
    _, s = clean_app.request("POST", "/api/sessions", {"agent": "bash"})
    with browser() as b:
        page = b.new_page(viewport={"width": 1200, "height": 800})
        page.goto(f"{clean_app.url}/?session={s['id']}")
        wait_live(page)
        assert not page.get_by_test_id("terminal-keys").is_visible()
