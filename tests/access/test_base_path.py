"""The app under ``--server.baseUrlPath coda``: routes, access checks and the terminal all live under /coda.

Streamlit serves its own routes under the base path but mounts ``st.App(routes=...)``
as given, and answers any other path under the base with its index page (200,
HTML): so each check below looks at what answered, not only at the status.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.appserver import free_port, start_app
from tests.appsim import OWNER, start_on_apps
from tests.browser import browser, wait_for_terminal_text
from tests.fakeworkspace import FakeWorkspace
from tests.termclient import TermClient

BASE = "/coda"
OWNER_H = {"X-Forwarded-Email": OWNER}
STRANGER_H = {"X-Forwarded-Email": "someone.else@example.com"}


@pytest.fixture(scope="module")
def based_app(tmp_path_factory):
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.baseUrlPath", "coda"]
    server = start_app(tmp_path_factory.mktemp("base") / "home", command=command, wait_path=f"{BASE}/health", port=port)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def based_apps_app(tmp_path_factory):
    """The same on a simulated Databricks App (owner-only access)."""
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    server = start_on_apps(tmp_path_factory.mktemp("base-apps") / "home", fw, STREAMLIT_SERVER_BASE_URL_PATH="coda")
    try:
        _wait_owner_under_base(server)
        yield server
    finally:
        server.stop()
        fw.stop()


def _wait_owner_under_base(server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, _ = server.request("GET", f"{BASE}/api/sessions", headers=OWNER_H)
        if status == 200:
            return
        time.sleep(0.3)
    raise TimeoutError(f"owner never got in under {BASE}; log:\n{server.log()[-3000:]}")


def test_health_and_api_under_base(based_app):
    status, body = based_app.request("GET", f"{BASE}/health")
    assert status == 200 and isinstance(body, dict), f"{BASE}/health answered {status}: {str(body)[:200]}"
    assert body["status"] == "ok"
    status, created = based_app.request("POST", f"{BASE}/api/sessions", {"agent": "bash"})
    assert status == 201, created
    status, listed = based_app.request("GET", f"{BASE}/api/sessions")
    assert status == 200 and created["id"] in [s["id"] for s in listed]
    t = TermClient(based_app.ws_url + BASE, created["id"])
    t.send("echo based-$((40+2))\r")
    t.read_until("based-42")
    t.close()
    assert based_app.request("DELETE", f"{BASE}/api/sessions/{created['id']}")[0] == 204
    # Streamlit's own routes are under the base too.
    assert based_app.request("GET", f"{BASE}/_stcore/health")[0] == 200


def test_sessions_page_under_base_has_a_working_terminal(based_app):
    status, created = based_app.request("POST", f"{BASE}/api/sessions", {"agent": "bash"})
    assert status == 201, created
    try:
        with browser() as b:
            page = b.new_page(viewport={"width": 1300, "height": 900})
            errors: list[str] = []
            sockets: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.goto(f"{based_app.url}{BASE}/?session={created['id']}")
            page.wait_for_function("() => !!window.__codaTerm", timeout=30000)
            page.wait_for_selector("[data-testid=terminal-status]", state="hidden", timeout=15000)
            wait_for_terminal_text(page, "projects", 15000)
            page.keyboard.type("echo hi-$((1+1))\n")
            wait_for_terminal_text(page, "hi-2", 15000)
            url = f"{based_app.ws_url}{BASE}/terminal/ws/{created['id']}"
            assert any(s == url or s.startswith(url + "?") for s in sockets), sockets
            assert not errors, errors
    finally:
        based_app.request("DELETE", f"{BASE}/api/sessions/{created['id']}")


def test_access_checks_under_base_on_apps(based_apps_app):
    app = based_apps_app
    # /health stays open under the base path, to anyone
    status, body = app.request("GET", f"{BASE}/health")
    assert status == 200 and isinstance(body, dict) and body["status"] == "ok", (status, str(body)[:200])
    # strangers are refused everywhere else, API refusals in JSON
    status, body = app.request("GET", f"{BASE}/api/sessions", headers=STRANGER_H)
    assert status == 403 and isinstance(body, dict) and "someone.else@example.com" in body["error"]
    status, page = app.request("GET", f"{BASE}/", headers=STRANGER_H)
    assert status == 403 and "This app belongs to" in page
    status, created = app.request("POST", f"{BASE}/api/sessions", {"agent": "bash"}, headers=OWNER_H)
    assert status == 201, created
    with pytest.raises(Exception) as err:
        TermClient(app.ws_url + BASE, created["id"], headers=STRANGER_H)
    assert "403" in str(err.value)
    # the owner's terminal works under the base
    t = TermClient(app.ws_url + BASE, created["id"], headers=OWNER_H)
    t.send("echo owner-based-$((1+2))\r")
    t.read_until("owner-based-3")
    t.close()
    assert app.request("DELETE", f"{BASE}/api/sessions/{created['id']}", headers=OWNER_H)[0] == 204
    # only the health check under the base is open: the bare path is refused like any other
    assert app.request("GET", "/health")[0] == 403
