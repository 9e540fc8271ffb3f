"""Only a definite answer decides who owns the app (security round 2, item 2)."""

from __future__ import annotations

import time

from tests.appserver import AppServer
from tests.appsim import OWNER, start_on_apps, wait_owner
from tests.fakeworkspace import FakeWorkspace

TOKEN_USER = "token.holder@example.com"


def _status(server: AppServer, email: str) -> int:
    return server.request("GET", "/api/sessions", headers={"X-Forwarded-Email": email})[0]


def test_a_transient_app_lookup_error_never_hands_the_app_to_the_token_user(tmp_path) -> None:
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    token = fw.create_token(user=TOKEN_USER)
    # The app lookup fails with 500s for a while; the token's user lookup works all along.
    fw.set_fault("5xx", paths=["/api/2.0/apps/"], status=500)
    server = start_on_apps(tmp_path / "home", fw, DATABRICKS_TOKEN=token)
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:  # owner unknown: everyone waits, nobody is let in
            assert _status(server, TOKEN_USER) == 503
            assert _status(server, OWNER) == 503
            time.sleep(0.5)
        fw.clear_faults()
        wait_owner(server, OWNER)
        assert _status(server, TOKEN_USER) == 403
        assert '"source": "app creator"' in (server.home / ".coda" / "identity.json").read_text()
        log = server.log()
        assert f"The DATABRICKS_TOKEN belongs to {TOKEN_USER}, but this app belongs to {OWNER}" in log
        assert token not in log
        # And it never flips afterwards.
        time.sleep(2)
        assert _status(server, OWNER) == 200 and _status(server, TOKEN_USER) == 403
    finally:
        server.stop()
        fw.stop()
