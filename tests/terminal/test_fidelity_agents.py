"""The four agent TUIs at their prompts survive a reload exactly and get nothing typed (issue 9, point 1).

Each real CLI (Claude Code, Codex, Gemini CLI, OpenCode, pinned, from
``~/.cache/coda-test-clis``) runs in the app as on Databricks Apps, against
the fake workspace's model endpoints (``tests/appsim.py``). Two pages
watch it; one reloads (a full replay of everything the TUI drew, queries
included), the other stays connected: their screens must be equal cell for
cell. Then the reloaded page comes back at another window size while the
other was resized live. Finally a line typed into the prompt shows that
the prompt holds exactly what was typed, no answer to a replayed query.
"""

from __future__ import annotations

import time

import pytest

from tests.agentterm import READY
from tests.appsim import AGENTS, OWNER_H, close_all
from tests.browser import SCREEN_HAS, browser
from tests.fidelity import assert_same_screens, settled_screen, wait_live

# Shown for as long as the prompt waits (READY["claude"], a footer hint, goes away after a while).
STABLE = {**READY, "claude": "ClaudeCode"}

BIG = {"width": 1200, "height": 820}
SMALL = {"width": 900, "height": 640}
TYPED = "fidelity probe 42"


def _open(b, url: str, size: dict):
    page = b.new_context(extra_http_headers=OWNER_H, viewport=size).new_page()
    page.goto(url)
    wait_live(page, 60000)
    return page


def _same(a, b, what: str) -> None:
    settled_screen(a)
    assert_same_screens(a, b, what)


@pytest.mark.parametrize("agent_id", AGENTS)
def test_agent_prompt_survives_reload(deployed, agent_id: str) -> None:  # noqa: F811
    status, body = deployed.request("POST", "/api/sessions", {"agent": agent_id, "cwd": "demo"}, headers=OWNER_H)
    assert status == 201, body
    url = f"{deployed.url}/?session={body['id']}"
    try:
        with browser() as b:
            a, live = _open(b, url, BIG), _open(b, url, BIG)
            a.wait_for_function(SCREEN_HAS, arg=STABLE[agent_id], timeout=90000)
            live.wait_for_function(SCREEN_HAS, arg=STABLE[agent_id], timeout=30000)
            time.sleep(2)  # first-run redraws settle
            _same(a, live, "both connected")
            for _ in range(2):
                a.reload()
                wait_live(a, 60000)
                a.wait_for_function(SCREEN_HAS, arg=STABLE[agent_id], timeout=30000)
                _same(a, live, "after a reload")
            assert a.evaluate("() => window.__codaTermViewer.swallowed") >= 0
            a.context.close()
            live.set_viewport_size(SMALL)
            time.sleep(2)
            back = _open(b, url, SMALL)
            back.wait_for_function(SCREEN_HAS, arg=STABLE[agent_id], timeout=30000)
            _same(back, live, "back at another size")
            # The prompt holds exactly what is typed now: no answer was typed into it.
            back.keyboard.type(TYPED)
            back.wait_for_function(SCREEN_HAS, arg=TYPED.replace(" ", ""), timeout=20000)
            text = back.evaluate("""() => { const b = window.__codaTerm.buffer.active; let t = "";
                for (let i = 0; i < b.length; i++) t += b.getLine(i).translateToString(true) + "\\n"; return t; }""")
            line = next(ln for ln in text.splitlines() if TYPED in ln)
            for junk in ("rgb:", "$y", "[?", "0;276;0c", ";1R", "2R"):
                assert junk not in line, line
    finally:
        close_all(deployed)
