"""Clipboard like a desktop terminal (issue 9, point 4), in chromium.

The bytes that reach the program are recorded by ``tests/termrecorder.py``
(raw mode: ^C is a byte, nothing is echoed), the clipboard is read back
through the page.
"""

from __future__ import annotations

import base64
import json
import time

from tests.browser import browser, wait_for_terminal_text
from tests.fidelity import buffer_lines, recorder_command, run_in_session, wait_file, wait_live

VIEW = {"width": 1200, "height": 800}


def _session(app) -> str:
    status, body = app.request("POST", "/api/sessions", {"agent": "bash"})
    assert status == 201, body
    return body["id"]


def _page(b, app, sid: str):
    ctx = b.new_context(viewport=VIEW)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.url)
    page = ctx.new_page()
    page.goto(f"{app.url}/?session={sid}")
    wait_live(page)
    return page


def _clipboard(page) -> str:
    return page.evaluate("() => navigator.clipboard.readText()")


def _set_clipboard(page, text: str) -> None:
    page.evaluate("(t) => navigator.clipboard.writeText(t)", text)


def _select(page, needle: str) -> None:
    """Select ``needle`` where it is on the screen, as a mouse would."""
    page.evaluate(
        """(needle) => { const t = window.__codaTerm; const b = t.buffer.active;
            for (let y = 0; y < b.length; y++) { const x = b.getLine(y).translateToString(true).indexOf(needle);
              if (x >= 0) { t.select(x, y, needle.length); return; } }
            throw new Error("not on screen: " + needle); }""",
        needle,
    )


def _record(page, out, **kw) -> None:
    page.keyboard.type("echo select-me-please; " + recorder_command(out, **kw) + "\n")
    wait_for_terminal_text(page, "REC-READY")


def test_ctrl_c_copies_a_selection_else_interrupts(clean_app, tmp_path):
    sid, out = _session(clean_app), tmp_path / "in.bin"
    with browser() as b:
        page = _page(b, clean_app, sid)
        _record(page, out)
        _select(page, "select-me-please")
        page.keyboard.press("Control+c")
        page.wait_for_function("() => !window.__codaTerm.hasSelection()")  # copied, then cleared
        assert _clipboard(page) == "select-me-please"
        page.keyboard.press("Control+c")  # nothing selected: ^C
        assert wait_file(out, lambda d: d == b"\x03")
        _select(page, "select-me")
        page.keyboard.press("Control+Shift+C")  # copies, keeps the selection
        assert _clipboard(page) == "select-me"
        time.sleep(0.3)
        assert out.read_bytes() == b"\x03"


def test_ctrl_v_and_ctrl_shift_v_paste_bracketed_when_asked(clean_app, tmp_path):
    sid, out = _session(clean_app), tmp_path / "in.bin"
    with browser() as b:
        page = _page(b, clean_app, sid)
        _record(page, out, bracketed=True)
        _set_clipboard(page, "first paste")
        page.keyboard.press("Control+v")
        wait_file(out, lambda d: d == b"\x1b[200~first paste\x1b[201~")
        _set_clipboard(page, "second\npaste")
        page.keyboard.press("Control+Shift+V")
        wait_file(out, lambda d: d.endswith(b"\x1b[200~second\rpaste\x1b[201~"))
        assert b"\x16" not in out.read_bytes()  # never ^V


def test_right_click_pastes_or_copies(clean_app, tmp_path):
    sid, out = _session(clean_app), tmp_path / "in.bin"
    with browser() as b:
        page = _page(b, clean_app, sid)
        _record(page, out)
        box = page.get_by_test_id("terminal").bounding_box()
        _set_clipboard(page, "from the menu")
        page.mouse.click(box["x"] + 200, box["y"] + 200, button="right")
        wait_file(out, lambda d: d == b"from the menu")
        _select(page, "select-me-please")
        page.mouse.click(box["x"] + 200, box["y"] + 200, button="right")
        page.wait_for_function("() => !window.__codaTerm.hasSelection()")
        assert _clipboard(page) == "select-me-please"
        assert out.read_bytes() == b"from the menu"


def test_copy_on_select_setting(clean_app, tmp_path):
    sid = _session(clean_app)
    settings = clean_app.home / ".coda" / "settings.json"
    saved = settings.read_text() if settings.exists() else None
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({**(json.loads(saved) if saved else {}), "copy_on_select": True}))
    try:
        with browser() as b:
            page = _page(b, clean_app, sid)
            page.keyboard.type("echo copied-by-selecting\n")
            wait_for_terminal_text(page, "copied-by-selecting")
            _set_clipboard(page, "before")
            _select(page, "copied-by-selecting")
            page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'copied-by-selecting'",
                                   timeout=5000)
    finally:
        if saved is None:
            settings.unlink()
        else:
            settings.write_text(saved)


def test_osc52_from_a_program_reaches_the_clipboard_but_not_from_a_replay(clean_app):
    sid = _session(clean_app)
    with browser() as b:
        page = _page(b, clean_app, sid)
        _set_clipboard(page, "untouched")
        payload = base64.b64encode(b"set by osc 52").decode()
        page.keyboard.type(f"printf '\\e]52;c;{payload}\\a'; echo osc-sent\n")
        wait_for_terminal_text(page, "osc-sent")
        page.wait_for_function("async () => (await navigator.clipboard.readText()) === 'set by osc 52'", timeout=5000)
        _set_clipboard(page, "copied since")
        page.reload()
        wait_live(page)
        time.sleep(1)
        assert _clipboard(page) == "copied since"  # the replayed OSC 52 set nothing
        # A program asking to read the clipboard gets nothing.
        run_in_session(clean_app, sid, "printf '\\e]52;c;?\\a'")
        time.sleep(0.5)
        assert "copied since" not in "\n".join(buffer_lines(page))


def test_a_one_megabyte_paste_arrives_whole_without_freezing(clean_app, tmp_path):
    sid, out = _session(clean_app), tmp_path / "in.bin"
    text = "".join(f"{i:07d} the quick brown fox jumps over the lazy dog 0123456789\n" for i in range(17000))
    assert len(text) > 1_000_000
    with browser() as b:
        page = _page(b, clean_app, sid)
        _record(page, out)
        _set_clipboard(page, text)
        page.evaluate("""() => { window.__gaps = []; let last = performance.now();
            const tick = (now) => { window.__gaps.push(now - last); last = now;
              if (window.__gaps.length < 100000) requestAnimationFrame(tick); };
            requestAnimationFrame(tick); }""")
        started = time.monotonic()
        page.keyboard.press("Control+v")
        expected = text.replace("\n", "\r").encode()  # a terminal paste ends lines with CR
        got = wait_file(out, lambda d: len(d) >= len(expected), 60)
        took = time.monotonic() - started
        assert got == expected
        worst = page.evaluate("() => Math.max(...window.__gaps)")
    assert took < 30, took
    assert worst < 2000, f"the page froze for {worst:.0f} ms"
