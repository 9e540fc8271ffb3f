"""Needs attention in a real browser: badge, title count, favicon dot, desktop notification, click to open.

The page shows session A; sessions B and C run a program (an agent, as far
as the shell can tell) and their hooks report a permission question: the
real hook script, run with each session's own key and app address. Within
a second or two the page's title reads "(2) ...", the favicon has a dot,
B's and C's tabs carry a "needs input" badge (first), and one desktop
notification per session appears (Playwright grants the permission;
``window.Notification`` is wrapped to record what the page shows).
Clicking B's notification opens session B. Without a granted permission
the page never asks on load, only when "Allow notifications" is clicked.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib.attention import install
from lib.terminal import keys
from tests.appserver import AppServer, start_app
from tests.browser import browser
from tests.termclient import TermClient

RECORD_NOTIFICATIONS = """(() => {
  const Real = window.Notification;
  window.__shown = [];
  window.__asked = 0;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__shown.push({ title, body: options && options.body, tag: options && options.tag, n: this });
    }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => { window.__asked += 1; return Real.requestPermission(...args); };
  window.Notification = Recorded;
})();"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    home = tmp_path_factory.mktemp("attention-browser") / "home"
    (home / ".coda").mkdir(parents=True)
    (home / ".coda" / "settings.json").write_text(json.dumps({"notify_desktop": True, "notify_sound": True}))
    server = start_app(home)
    server.wait_setup(60)
    yield server
    server.stop()


def _hook_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode()
    env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
    return {"PATH": os.environ["PATH"], keys.KEY_ENV: env[keys.KEY_ENV], keys.APP_URL_ENV: env[keys.APP_URL_ENV]}


def _ask(served: AppServer, session: dict, command: str) -> None:
    """What Claude's PermissionRequest hook does inside that session."""
    payload = {"hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": {"command": command}}
    subprocess.run(["bash", str(install.script_path(served.home)), "claude", "PermissionRequest"],
                   input=json.dumps(payload).encode(), env=_hook_env(session["pid"]), check=True, timeout=10)


def test_badge_title_and_a_notification_that_opens_the_session(served: AppServer, tmp_path: Path) -> None:
    sessions = [served.request("POST", "/api/sessions", {"agent": "bash", "label": f"work-{n}"})[1] for n in "abc"]
    a, b, c = sessions
    busy = [TermClient(served.ws_url, s["id"]) for s in (b, c)]
    try:
        for term in busy:
            term.send("sleep 600\r")  # a program in front, as an agent started from the shell would be
        with browser() as chromium:
            context = chromium.new_context(viewport={"width": 1300, "height": 900}, permissions=["notifications"])
            context.add_init_script(RECORD_NOTIFICATIONS)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{served.url}/?session={a['id']}")
            page.wait_for_function("() => !!window.__codaTerm && !!window.__codaAttention"
                                   " && window.__codaAttention.seeded", timeout=30000)
            assert page.evaluate("Notification.permission") == "granted"
            assert page.evaluate("window.__asked") == 0
            assert not page.title().startswith("(")
            time.sleep(1.5)  # B and C now have "sleep" in front

            started = time.monotonic()
            _ask(served, b, "rm -rf build")
            page.wait_for_function("() => document.title.startsWith('(1) ')", timeout=5000)
            first = time.monotonic() - started
            _ask(served, c, "git push")
            page.wait_for_function("() => document.title.startsWith('(2) ')", timeout=5000)
            assert first < 2.0, f"the title changed {first:.2f} s after the hook ran"

            icon = page.evaluate("() => Array.from(document.querySelectorAll('link[rel~=icon]')).map(l => l.href)")
            assert icon and all(h.startswith("data:image/png") for h in icon), icon

            # The tabs are drawn again (a rerun the push triggered): B and C first, with badge and wait time.
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('button')).filter(b => /needs input/.test(b.innerText))"
                ".length >= 2", timeout=10000)
            tabs = page.evaluate("() => Array.from(document.querySelectorAll('button'))"
                                 ".map(b => b.innerText.replace(/\\s+/g, ' ').trim())"
                                 ".filter(t => /work-[abc]/.test(t))")
            assert [t.split("work-")[1][0] for t in tabs] == ["b", "c", "a"], tabs
            assert all("needs input" in t for t in tabs[:2]) and "needs input" not in tabs[2], tabs

            page.wait_for_function("() => window.__shown.length >= 2", timeout=5000)
            shown = page.evaluate("() => window.__shown.map(s => ({title: s.title, body: s.body, tag: s.tag}))")
            assert shown == [
                {"title": "work-b needs input", "body": "permission: Bash: rm -rf build", "tag": f"coda-{b['id']}"},
                {"title": "work-c needs input", "body": "permission: Bash: git push", "tag": f"coda-{c['id']}"},
            ], shown
            page.screenshot(path=str(tmp_path / "attention.png"))

            page.evaluate("() => window.__shown[0].n.onclick()")  # the user clicks B's notification
            page.wait_for_url(f"**session={b['id']}**", timeout=15000)
            page.wait_for_function("() => !!window.__codaTerm", timeout=30000)
            page.wait_for_function("() => document.title.startsWith('(2) ')", timeout=10000)
            page.wait_for_function("() => window.__codaAttention && window.__codaAttention.seeded", timeout=30000)
            # The session now open is not notified about again; nothing was shown twice.
            time.sleep(1.0)
            assert page.evaluate("() => window.__shown.length") == 0  # a new page: its own list
            assert not errors, errors
    finally:
        for term in busy:
            term.close()
        for s in sessions:
            served.request("DELETE", f"/api/sessions/{s['id']}")


def test_permission_is_asked_only_on_a_click(served: AppServer) -> None:
    session = served.request("POST", "/api/sessions", {"agent": "bash"})[1]
    try:
        with browser() as chromium:
            context = chromium.new_context(viewport={"width": 1300, "height": 900})
            context.add_init_script(RECORD_NOTIFICATIONS)
            page = context.new_page()
            page.goto(f"{served.url}/?session={session['id']}")
            page.wait_for_function("() => !!window.__codaTerm", timeout=30000)
            permission = page.evaluate("Notification.permission")
            if permission != "default":
                pytest.skip(f"this browser starts with notification permission '{permission}'")
            allow = page.locator("[data-testid=attention-allow]")
            allow.wait_for(timeout=10000)
            time.sleep(1.0)
            assert page.evaluate("window.__asked") == 0  # never on load
            allow.click()
            page.wait_for_function("() => window.__asked === 1", timeout=5000)
    finally:
        served.request("DELETE", f"/api/sessions/{session['id']}")
