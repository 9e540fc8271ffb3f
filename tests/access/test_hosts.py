"""DNS rebinding (issue 12, item 1): the app answers only to its own names.

A page on ``rebind.evil.example`` whose name the attacker points at 127.0.0.1
talks to the app as same-origin with ``Host: rebind.evil.example:PORT`` and a
matching ``Origin``. Before the fix that got a session (201), its terminal
(101) and a shell. Every route and WebSocket now refuses a ``Host`` (or
``X-Forwarded-Host``) that is not one of the app's names, before anything runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.access.loopback import LOCAL_PREFIX
from lib.access.owner import OwnerState
from tests.appserver import AppServer, start_app
from tests.appsim import OWNER, start_on_apps, wait_owner
from tests.fakeworkspace import FakeWorkspace
from tests.rawhttp import raw_request, ws_handshake
from tests.termclient import TermClient

EVIL = "rebind.evil.example"


@pytest.fixture(scope="module")
def local_app(tmp_path_factory) -> AppServer:
    server = start_app(tmp_path_factory.mktemp("hosts") / "home", {"CODA_ALLOWED_HOSTS": "coda.example.test"})
    yield server
    server.stop()


def _sessions(app: AppServer) -> list[str]:
    return [s["id"] for s in app.request("GET", "/api/sessions")[1]]


def test_rebinding_page_gets_no_session_no_terminal_no_page(local_app: AppServer) -> None:
    port = local_app.port
    evil = [("Host", f"{EVIL}:{port}"), ("Origin", f"http://{EVIL}:{port}")]
    before = _sessions(local_app)
    status, body = raw_request(port, "POST", "/api/sessions", [*evil, ("Content-Type", "application/json")],
                               b'{"agent": "bash"}')
    assert status == 400 and b"does not answer to the name" in body
    assert _sessions(local_app) == before, "no session was started"

    _, made = local_app.request("POST", "/api/sessions", {"agent": "bash"})
    try:
        assert ws_handshake(port, f"/terminal/ws/{made['id']}", evil) == 400
        for path in ("/", "/api/sessions", "/health", "/_stcore/health", "/launch"):
            assert raw_request(port, "GET", path, evil)[0] == 400, path
        assert ws_handshake(port, "/_stcore/stream", evil) == 400
        # A forwarded host cannot vouch for a foreign Host, nor the other way round.
        assert raw_request(port, "GET", "/api/sessions",
                           [("Host", f"{EVIL}:{port}"), ("X-Forwarded-Host", f"127.0.0.1:{port}")])[0] == 400
        assert raw_request(port, "GET", "/api/sessions",
                           [("Host", f"127.0.0.1:{port}"), ("X-Forwarded-Host", f"{EVIL}:{port}")])[0] == 400
        # No Host at all is no name either.
        assert raw_request(port, "GET", "/api/sessions", [], http10=True)[0] == 400
        # The same session over the app's own names works.
        t = TermClient(local_app.ws_url, made["id"])
        t.send("echo own-name-$((40+2))\r")
        t.read_until("own-name-42")
        t.close()
    finally:
        local_app.request("DELETE", f"/api/sessions/{made['id']}")
    assert f"Refused a http to /api/sessions for the host '{EVIL}:{port}'" in local_app.log()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LocalHost", "coda.example.test"])
def test_the_app_answers_to_its_own_names(local_app: AppServer, host: str) -> None:
    port = local_app.port
    headers = [("Host", f"{host}:{port}"), ("Origin", f"http://{host}:{port}"), ("Content-Type", "application/json")]
    assert raw_request(port, "GET", "/api/sessions", headers)[0] == 200
    status, body = raw_request(port, "POST", "/api/sessions", headers, b'{"agent": "bash"}')
    assert status == 201, body
    import json

    sid = json.loads(body)["id"]
    try:
        assert ws_handshake(port, f"/terminal/ws/{sid}", headers[:2]) == 101
    finally:
        local_app.request("DELETE", f"/api/sessions/{sid}")


def test_the_apps_own_terminals_still_reach_it_over_loopback(local_app: AppServer) -> None:
    """Agent hooks and model calls use CODA_APP_URL (http://127.0.0.1:PORT) from inside a session."""
    _, made = local_app.request("POST", "/api/sessions", {"agent": "bash"})
    try:
        t = TermClient(local_app.ws_url, made["id"])
        t.send(f"curl -s -o /dev/null -w 'code=%{{http_code}}\\n' -X POST \"$CODA_APP_URL{LOCAL_PREFIX}gateway/anthropic/v1/messages\"\r")
        out = t.read_until(r"code=\d{3}").decode(errors="replace")
        t.close()
    finally:
        local_app.request("DELETE", f"/api/sessions/{made['id']}")
    code = int(out.rsplit("code=", 1)[1][:3])
    assert code != 400, "the loopback route was refused by the host check"
    assert code in (401, 403), out[-300:]  # the route itself ran: it wants the session's key


# --- Databricks Apps ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def apps_app(tmp_path_factory):
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    server = start_on_apps(tmp_path_factory.mktemp("hosts-apps") / "home", fw)
    wait_owner(server, OWNER)
    yield server, fw
    server.stop()
    fw.stop()


def test_on_apps_only_the_apps_own_host_is_accepted(apps_app) -> None:
    server, fw = apps_app
    app_host = f"{fw.app_name}-{fw.workspace_id}.aws.databricksapps.com"
    owner = [("Host", f"127.0.0.1:{server.port}"), ("X-Forwarded-Email", OWNER)]
    assert raw_request(server.port, "GET", "/api/sessions", [*owner, ("X-Forwarded-Host", app_host)])[0] == 200
    for other in (f"other-app-{fw.workspace_id}.aws.databricksapps.com", EVIL, "bad host!"):
        status, body = raw_request(server.port, "GET", "/api/sessions", [*owner, ("X-Forwarded-Host", other)])
        assert status == 400, other
        assert raw_request(server.port, "GET", "/", [*owner, ("X-Forwarded-Host", other)])[0] == 400
        assert ws_handshake(server.port, "/_stcore/stream", [*owner, ("X-Forwarded-Host", other)]) == 400
    # Two forwarded hosts: refused; the platform's probe of /health is answered whatever the name.
    assert raw_request(server.port, "GET", "/api/sessions",
                       [*owner, ("X-Forwarded-Host", app_host), ("X-Forwarded-Host", app_host)])[0] == 400
    assert raw_request(server.port, "GET", "/health", [("Host", "10.1.2.3:8000"), ("X-Forwarded-Host", EVIL)])[0] == 200
    # The owner's terminal through the proxy's name.
    _, made = server.request("POST", "/api/sessions", {"agent": "bash"}, headers={"X-Forwarded-Email": OWNER})
    try:
        t = TermClient(server.ws_url, made["id"], headers={"X-Forwarded-Email": OWNER, "X-Forwarded-Host": app_host},
                       origin=f"https://{app_host}")
        t.send("echo via-proxy\r")
        t.read_until("via-proxy")
        t.close()
    finally:
        server.request("DELETE", f"/api/sessions/{made['id']}", headers={"X-Forwarded-Email": OWNER})


# --- the rule itself ----------------------------------------------------------------------

def _check(owner: OwnerState, **headers: str) -> int:
    from lib.access.decision import allowed_host_names, check_host

    allowed = allowed_host_names("127.0.0.1", ["coda.example.test"])
    return check_host(owner, {k.replace("_", "-"): v for k, v in headers.items()}, allowed).status


def test_check_host_locally() -> None:
    from lib.access.decision import allowed_host_names

    local = OwnerState(on_apps=False)
    assert _check(local, host="127.0.0.1:8000") == 200
    assert _check(local, host="localhost") == 200
    assert _check(local, host="[::1]:8000") == 200
    assert _check(local, host="coda.example.test:443") == 200
    assert _check(local, host=f"{EVIL}:8000") == 400
    assert _check(local, host="127.0.0.1.evil.example") == 400
    assert _check(local, host="127.0.0.1:8000", x_forwarded_host=EVIL) == 400
    assert _check(local, host="127.0.0.1:8000 ") == 200
    assert _check(local, host="127.0.0.1:80x") == 400
    assert _check(local) == 400
    assert allowed_host_names("0.0.0.0") >= {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
    assert "192.168.1.5" in allowed_host_names("192.168.1.5") and "::" in allowed_host_names("::")


def test_check_host_on_apps() -> None:
    known = OwnerState(on_apps=True, owner=OWNER, app_url="https://coda-app-1.aws.databricksapps.com")
    assert _check(known, host="10.0.0.5:8000", x_forwarded_host="coda-app-1.aws.databricksapps.com") == 200
    assert _check(known, host="10.0.0.5:8000", x_forwarded_host="Coda-App-1.aws.databricksapps.com:443") == 200
    assert _check(known, host="10.0.0.5:8000", x_forwarded_host="coda-app-2.aws.databricksapps.com") == 400
    assert _check(known, host="127.0.0.1:8000") == 200  # the app's own terminals, no proxy
    assert _check(known, host="10.0.0.5:8000") == 400  # no proxy header: the Host must be a name of ours
    assert _check(known, host="coda-app-1.aws.databricksapps.com") == 200
    # The app's URL not known (owner from the token): the proxy's X-Forwarded-Host is taken as sent.
    unknown = OwnerState(on_apps=True, owner=OWNER)
    assert _check(unknown, host="10.0.0.5:8000", x_forwarded_host="whatever.databricksapps.com") == 200
    assert _check(unknown, host="10.0.0.5:8000", x_forwarded_host="not a name") == 400


def test_allowed_hosts_setting(tmp_path: Path) -> None:
    from lib.settings import SettingsError, load_settings, validate

    env = {"HOME": str(tmp_path), "CODA_ALLOWED_HOSTS": "Coda.Example.com, 192.168.1.5:8000 [fe80::1]"}
    assert load_settings(env).allowed_hosts == ("coda.example.com", "192.168.1.5", "fe80::1")
    with pytest.raises(SettingsError):
        validate("allowed_hosts", "good.example, bad/name")
    assert load_settings({"HOME": str(tmp_path)}).allowed_hosts == ()
