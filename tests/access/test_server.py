"""Server hardening (issue 12, item 10): a tight Content-Security-Policy that the pages
live with (no CSP report in chromium), and connections that never finish a request
head are closed instead of held forever.
"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from lib.access.middleware import content_security_policy
from lib.access.timeouts import HEADER_TIMEOUT_S
from tests.appserver import AppServer, start_app
from tests.browser import browser, wait_for_terminal_text


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> AppServer:
    server = start_app(tmp_path_factory.mktemp("server") / "home")
    yield server
    server.stop()


def _csp(app: AppServer, path: str = "/") -> str:
    with urllib.request.urlopen(app.url + path) as resp:
        return resp.headers["Content-Security-Policy"]


def test_csp_has_no_eval_and_websockets_only_to_this_host(app: AppServer) -> None:
    csp = _csp(app)
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert "'unsafe-eval'" not in csp
    assert directives["connect-src"] == ["'self'", f"ws://127.0.0.1:{app.port}", f"wss://127.0.0.1:{app.port}"]
    assert "ws:" not in directives["connect-src"] and "wss:" not in directives["connect-src"]
    assert directives["frame-ancestors"] == ["'self'"] and directives["object-src"] == ["'none'"]
    # Built per request for the name the browser used (once that name passed the host check).
    req = urllib.request.Request(app.url + "/", headers={"Host": f"localhost:{app.port}"})
    with urllib.request.urlopen(req) as resp:
        assert f"ws://localhost:{app.port} wss://localhost:{app.port}" in resp.headers["Content-Security-Policy"]
    assert content_security_policy(None).count("connect-src 'self';") == 1


def test_pages_and_terminal_work_under_the_csp_in_chromium(app: AppServer) -> None:
    """Every page and a live terminal, with no CSP violation reported by the browser."""
    with browser() as b:
        page = b.new_page(viewport={"width": 1300, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        page.goto(app.url)
        page.get_by_role("button", name="New shell").click()
        page.wait_for_function("() => !!window.__codaTerm", timeout=30000)
        page.keyboard.type("echo csp-$((2+3))-ok\n")
        wait_for_terminal_text(page, "csp-5-ok", 20000)
        violations = page.evaluate("window.__csp")
        for path in ("/launch", "/sync", "/setup"):
            page.goto(app.url + path)
            page.wait_for_timeout(2500)
            violations += page.evaluate("window.__csp")
        assert not problems, problems
        assert not violations, violations


def _half_open(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode())  # never finished
    return s


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False  # still open, nothing to read
    except OSError:
        return True  # reset


def test_half_open_connections_are_closed_and_do_not_hang_the_server(app: AppServer) -> None:
    sockets = [_half_open(app.port) for _ in range(400)]
    try:
        start = time.monotonic()
        assert app.request("GET", "/health")[0] == 200  # served while 400 heads hang
        assert time.monotonic() - start < 5
        deadline = start + HEADER_TIMEOUT_S + 10
        open_ = sockets
        while open_ and time.monotonic() < deadline:
            time.sleep(0.5)
            open_ = [s for s in open_ if not _closed_by_server(s)]
        assert not open_, f"{len(open_)} of 400 half-open connections still held after {HEADER_TIMEOUT_S + 10:.0f} s"
        assert app.request("GET", "/health")[0] == 200
    finally:
        for s in sockets:
            s.close()


def test_a_slow_but_complete_request_and_a_websocket_are_not_cut(app: AppServer) -> None:
    """The clock stops once the head is in: an open terminal outlives the header timeout."""
    from tests.termclient import TermClient

    status, body = app.request("POST", "/api/sessions", {"agent": "bash"})
    assert status == 201
    try:
        t = TermClient(app.ws_url, body["id"])
        time.sleep(HEADER_TIMEOUT_S + 2)
        t.send("echo still-$((6*7))\r")
        t.read_until("still-42")
        t.close()
    finally:
        app.request("DELETE", f"/api/sessions/{body['id']}")
