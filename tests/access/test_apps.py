"""Owner-only access, with the app started exactly as Databricks Apps starts it."""

from __future__ import annotations

import time

import pytest
from websockets.exceptions import InvalidStatus

from tests.appsim import OWNER, start_on_apps, wait_owner
from tests.fakeworkspace import FakeWorkspace
from tests.termclient import TermClient


@pytest.fixture(scope="module")
def workspace():
    with FakeWorkspace(owner_email=OWNER, app_name="coda-app") as fw:
        yield fw


@pytest.fixture(scope="module")
def apps_app(workspace, tmp_path_factory):
    server = start_on_apps(tmp_path_factory.mktemp("apps") / "home", workspace)
    wait_owner(server, "owner.person@EXAMPLE.com")
    yield server
    server.stop()


OWNER_H = {"X-Forwarded-Email": "owner.person@EXAMPLE.com"}
STRANGER_H = {"X-Forwarded-Email": "someone.else@example.com"}


def test_owner_gets_pages_api_and_terminal(apps_app):
    status, page = apps_app.request("GET", "/", headers=OWNER_H)
    assert status == 200 and "<html" in page.lower()
    status, body = apps_app.request("POST", "/api/sessions", {"agent": "bash"}, headers=OWNER_H)
    assert status == 201, body
    t = TermClient(apps_app.ws_url, body["id"], headers=OWNER_H)
    t.send("echo owner-$((20+1))\r")
    t.read_until("owner-21")
    t.close()
    assert apps_app.request("DELETE", f"/api/sessions/{body['id']}", headers=OWNER_H)[0] == 204


@pytest.mark.parametrize("headers", [STRANGER_H, {}], ids=["stranger", "no-identity"])
def test_everyone_else_gets_403_everywhere(apps_app, headers):
    status, body = apps_app.request("POST", "/api/sessions", {"agent": "bash"}, headers=OWNER_H)
    sid = body["id"]
    status, page = apps_app.request("GET", "/", headers=headers)
    assert status == 403
    if headers:
        assert f"This app belongs to {OWNER}. You are signed in as someone.else@example.com." in page
    for method, path, payload in [
        ("GET", "/api/sessions", None),
        ("POST", "/api/sessions", {"agent": "bash"}),
        ("DELETE", f"/api/sessions/{sid}", None),
        ("PATCH", f"/api/sessions/{sid}", {"label": "x"}),
        ("POST", "/api/uploads", {}),
        ("GET", "/_stcore/health", None),
        ("GET", "/component/components.terminal.vendor/xterm.mjs", None),
    ]:
        assert apps_app.request(method, path, payload, headers=headers)[0] == 403, (method, path)
    with pytest.raises(Exception) as err:
        TermClient(apps_app.ws_url, sid, headers=headers)
    assert "403" in str(err.value)
    with pytest.raises(Exception) as err:
        TermClient(apps_app.ws_url.replace("/terminal", ""), "x", headers=headers)
    # the session is untouched
    _, listed = apps_app.request("GET", "/api/sessions", headers=OWNER_H)
    assert sid in [s["id"] for s in listed]
    apps_app.request("DELETE", f"/api/sessions/{sid}", headers=OWNER_H)


def test_streamlit_stream_refused_to_stranger(apps_app):
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus, match="403"):
        connect(f"{apps_app.ws_url}/_stcore/stream", additional_headers=STRANGER_H, open_timeout=5)


def test_cross_site_origin_refused_for_owner(apps_app, workspace):
    evil = {**OWNER_H, "Origin": "https://evil.example"}
    assert apps_app.request("POST", "/api/sessions", {"agent": "bash"}, headers=evil)[0] == 403
    status, body = apps_app.request("POST", "/api/sessions", {"agent": "bash"}, headers=OWNER_H)
    with pytest.raises(InvalidStatus, match="403"):
        TermClient(apps_app.ws_url, body["id"], headers=OWNER_H, origin="https://evil.example")
    # the proxy's host (the app's own URL, as apps.get tells it) counts as our own origin
    app_host = f"{workspace.app_name}-{workspace.workspace_id}.aws.databricksapps.com"
    fwd = {**OWNER_H, "X-Forwarded-Host": app_host}
    t = TermClient(apps_app.ws_url, body["id"], headers=fwd, origin=f"https://{app_host}")
    t.send("echo proxied-ok\r")
    t.read_until("proxied-ok")
    apps_app.request("DELETE", f"/api/sessions/{body['id']}", headers=OWNER_H)


def test_health_is_open_and_reveals_nothing(apps_app, workspace):
    status, body = apps_app.request("GET", "/health")
    assert status == 200 and body["status"] == "ok"
    text = str(body).lower()
    assert "owner" not in text and "@" not in text and str(apps_app.home) not in str(body)


def test_security_headers(apps_app):
    import urllib.request

    req = urllib.request.Request(apps_app.url + "/", headers=OWNER_H)
    with urllib.request.urlopen(req) as resp:
        h = resp.headers
    assert "frame-ancestors" in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"]


def test_owner_state_file_is_private(apps_app):
    path = apps_app.home / ".coda" / "identity.json"
    assert path.exists()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert OWNER in path.read_text()


def test_workspace_down_at_start_fails_closed_then_recovers(tmp_path):
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    fw.set_fault("down")
    server = start_on_apps(tmp_path / "home", fw)
    try:
        deadline = time.monotonic() + 40
        while True:
            status, page = server.request("GET", "/", headers=OWNER_H)
            assert status == 503 and "Owner not resolved yet" in page
            if "did not answer" in page or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "did not answer" in page
        assert server.request("GET", "/api/sessions", headers=OWNER_H)[0] == 503
        assert server.request("GET", "/health")[0] == 200
        fw.clear_faults()
        wait_owner(server, OWNER, timeout=90)
        assert server.request("GET", "/", headers=OWNER_H)[0] == 200
    finally:
        server.stop()
        fw.stop()


def test_owner_from_token_when_app_lookup_fails(tmp_path):
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    fw.app_creator = None  # apps.get answers 404
    token = fw.create_token(user=OWNER)
    server = start_on_apps(tmp_path / "home", fw, DATABRICKS_TOKEN=f"  {token}\n")
    try:
        wait_owner(server, OWNER.upper())
        assert server.request("GET", "/api/sessions", headers=STRANGER_H)[0] == 403
        assert '"source": "token user"' in (server.home / ".coda" / "identity.json").read_text()
        assert token not in server.log()
    finally:
        server.stop()
        fw.stop()
