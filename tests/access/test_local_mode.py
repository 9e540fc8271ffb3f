"""Local mode: loopback by default, a loud warning otherwise, no identity needed."""

from __future__ import annotations

import socket
import time

from tests.appserver import start_app


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":  # LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


def test_binds_loopback_by_default_and_needs_no_identity(tmp_path):
    app = start_app(tmp_path / "home")
    try:
        assert _listening_addresses(app.port) == {"127.0.0.1"}
        assert app.request("GET", "/api/sessions")[0] == 200
        assert (app.home / "projects").is_dir()
        assert "anyone who can reach this port" not in app.log()
    finally:
        app.stop()


def test_warns_when_told_to_listen_elsewhere(tmp_path):
    app = start_app(tmp_path / "home", {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"})
    try:
        assert _listening_addresses(app.port) == {"0.0.0.0"}
        deadline = time.monotonic() + 10
        while "anyone who can reach this port gets a shell" not in app.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "anyone who can reach this port gets a shell" in app.log()
    finally:
        app.stop()
