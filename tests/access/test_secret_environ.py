"""The server's own /proc environ holds no secret (security round 2, item 4).

A terminal runs as the same user as the server, and /proc/<pid>/environ
keeps the environment each process was started with. The launcher moves the
secrets out of it at start; this walks every ancestor of a terminal's shell.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.appserver import free_port, start_app
from tests.appsim import OWNER, wait_owner
from tests.fakeworkspace import FakeWorkspace

OWNER_H = {"X-Forwarded-Email": OWNER}


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return chain


def test_no_ancestor_of_a_terminal_holds_a_secret_in_its_environ(tmp_path: Path) -> None:
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    token = fw.create_token(user=OWNER)
    port = free_port()
    env = {**fw.app_env(), "DATABRICKS_APP_PORT": str(port), "STREAMLIT_SERVER_ADDRESS": "0.0.0.0",
           "STREAMLIT_SERVER_PORT": str(port), "STREAMLIT_SERVER_HEADLESS": "true",
           "DATABRICKS_TOKEN": token, "MY_SERVICE_API_KEY": "sk-other-secret-123"}
    # What the platform runs without a command, and what app.yaml runs.
    server = start_app(tmp_path / "home", env, port=port, command=[sys.executable, "app.py"])
    try:
        wait_owner(server, OWNER)  # the service principal's secret still works inside the app
        status, session = server.request("POST", "/api/sessions", {"agent": "bash"}, headers=OWNER_H)
        assert status == 201, session
        server.wait_setup(30)
        chain = _ancestors(session["pid"])[1:]  # the shell itself gets the user's own variables
        assert server.proc.pid in chain, "the terminal runs under the server"
        secrets = (token.encode(), fw.client_secret.encode(), b"sk-other-secret-123")
        for pid in chain:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            for secret in secrets:
                assert secret not in environ, f"process {pid} ({Path(f'/proc/{pid}/comm').read_text().strip()})"
        assert server.request("GET", "/api/sessions", headers=OWNER_H)[0] == 200
        # The token the app was given still works for the agents: it reached their config files.
        assert token in (server.home / ".databrickscfg").read_text()
    finally:
        server.stop()
        fw.stop()
