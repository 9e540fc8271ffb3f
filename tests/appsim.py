"""The app started exactly as Databricks Apps starts it: the ``app.yaml`` command, the platform's
environment, a fake workspace; and ``deployed``, that app with the four real CLIs installed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.agentterm import kill_leftovers
from tests.appserver import REPO, free_port, start_app
from tests.fakeworkspace import FakeWorkspace

OWNER = "Owner.Person@example.com"


def apps_command() -> list[str]:
    """The ``command`` of app.yaml, run with this test's Python."""
    manifest = yaml.safe_load((REPO / "app.yaml").read_text())
    command = list(manifest["command"])
    assert command[:2] == ["python", "app.py"]  # the launcher that keeps secrets out of /proc
    return [sys.executable, *command[1:]]


def start_on_apps(home: Path, fw: FakeWorkspace, **extra: str):
    """The app with the environment Databricks Apps gives it (plus ``extra``), on a free port."""
    port = free_port()
    env = {
        **fw.app_env(),
        "DATABRICKS_HOST": fw.url,
        "DATABRICKS_APP_PORT": str(port),
        "STREAMLIT_SERVER_ADDRESS": "0.0.0.0",
        "STREAMLIT_SERVER_PORT": str(port),
        "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false",
        "STREAMLIT_SERVER_ENABLE_CORS": "false",
        "STREAMLIT_SERVER_HEADLESS": "true",
        **extra,
    }
    return start_app(home, env, port=port, command=apps_command())


def wait_owner(server, email: str, timeout: float = 60) -> None:
    """Until the app has resolved its owner and lets ``email`` in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = server.request("GET", "/api/sessions", headers={"X-Forwarded-Email": email})
        if status == 200:
            return
        time.sleep(0.3)
    raise TimeoutError(f"owner never got in; log:\n{server.log()[-3000:]}")


AGENTS = ("claude", "codex", "gemini", "opencode")
NAMES = {"claude": "Claude Code", "codex": "Codex", "gemini": "Gemini CLI", "opencode": "OpenCode"}
OWNER_H = {"X-Forwarded-Email": OWNER}
SERVER_PATH = f"{Path(sys.executable).parent}:/usr/bin:/bin"

@pytest.fixture(scope="module")
def deployed(clis: Path, tmp_path_factory):
    """The app as Apps runs it, with the four pinned CLIs where the boot setup leaves them."""
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    token = fw.create_token(user=OWNER)
    home = tmp_path_factory.mktemp("launcher") / "home"
    home.mkdir()
    (home / ".local").symlink_to(clis)  # what the boot setup's npm installs leave
    project = home / "projects" / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    server = start_on_apps(home, fw, DATABRICKS_TOKEN=token, PATH=SERVER_PATH)
    wait_owner(server, OWNER)
    server.wait_setup(90, want=("ok",))
    yield server
    server.stop()
    fw.stop()
    kill_leftovers(home)


def close_all(server) -> None:
    """Close every session (module-scoped apps are shared between tests)."""
    _, sessions = server.request("GET", "/api/sessions", headers=OWNER_H)
    for s in sessions or []:
        server.request("DELETE", f"/api/sessions/{s['id']}", headers=OWNER_H)
