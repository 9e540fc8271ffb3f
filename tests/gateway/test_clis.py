"""The four real CLIs answer through the app's model gateway, with every kind of workspace credential.

The real app runs (``streamlit run app.py``) with HOME holding the pinned
CLIs in ``~/.local``; the boot setup writes the agents' configs, which point
at the gateway on 127.0.0.1 and hold no workspace token. Each CLI runs
non-interactively inside a real terminal session (a shell started through
``POST /api/sessions``, the command typed over the WebSocket), so it sees
exactly the environment a session gives it: its session key, no
``DATABRICKS_*``. The fake workspace must see the right bearer on every model
call, and the session's ``usage`` in ``GET /api/sessions`` must equal what
the fake reported, summed.

Modes: a personal access token (serving endpoints, and the AI Gateway host);
only the app's service principal, whose OAuth tokens live seconds and are
also expired behind the SDK's back before each CLI runs; a Databricks CLI
profile in ``~/.databrickscfg`` chosen with ``DATABRICKS_CONFIG_PROFILE``.
And on Databricks Apps with no token at all (the service principal): the
security middleware lets loopback requests to ``/_coda/local/`` through.

The permission mode is "run everything": the pinned Codex refuses the
"ask" mode's ``approval_policy = "untrusted"`` (another change fixes that);
it has nothing to do with model calls.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from lib.agents import get_agent
from lib.agents.base import CODING_AGENT_HEADER
from lib.settings import Settings, load_settings
from tests.agentterm import kill_leftovers
from tests.appserver import AppServer, start_app
from tests.appsim import start_on_apps
from tests.clis import COMMANDS
from tests.fakeworkspace import FakeWorkspace
from tests.termclient import TermClient

REPLY = "PONG through the app 4417"
AGENTS = ("claude", "codex", "gemini", "opencode")
SERVING = {"claude": "/serving-endpoints/anthropic/v1/messages", "codex": "/serving-endpoints/responses",
           "gemini": "/serving-endpoints/google/v1beta/models/", "opencode": "/serving-endpoints/chat/completions"}
AI_GATEWAY = {"claude": "/anthropic/v1/messages", "codex": "/openai/v1/responses", "gemini": "/gemini/v1beta/models/",
              "opencode": "/serving-endpoints/chat/completions"}
AGENT_FILES = (".claude/settings.json", ".claude.json", ".codex/config.toml", ".gemini/.env",
               ".gemini/settings.json", ".config/opencode/opencode.json")
OAUTH_LIFETIME_S = 6


@dataclass
class Deployed:
    server: AppServer
    home: Path
    bearer_ok: Callable[[str], bool]
    prefixes: dict[str, str]
    secrets: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


Deployments = Callable[[str], Deployed]  # mode -> the app started for it


@pytest.fixture(scope="module")
def fw() -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as workspace:
        workspace.model_reply = REPLY
        yield workspace


def _home(root: Path, clis: Path) -> Path:  # noqa: F811
    home = root / "home"
    home.mkdir(parents=True)
    (home / ".local").symlink_to(clis)  # what the boot setup's npm installs leave
    project = home / "projects" / "demo"
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    return home




def _is_sp_oauth(fw: FakeWorkspace) -> Callable[[str], bool]:
    def check(bearer: str) -> bool:
        record = fw.state.lookup_token(bearer)
        return record is not None and record.kind == "oauth" and record.identity == fw.state.service_principal
    return check


def _deploy(mode: str, root: Path, clis: Path, fw: FakeWorkspace) -> Deployed:  # noqa: F811
    home = _home(root, clis)
    common = {"CODA_PERMISSION_MODE": "all"}
    if mode in ("pat", "pat-ai-gateway"):
        token = fw.create_token()
        env = {**common, "DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": token}
        if mode == "pat-ai-gateway":
            env["DATABRICKS_GATEWAY_HOST"] = fw.url
        server = start_app(home, env)
        deployed = Deployed(server, home, lambda b: b == token, AI_GATEWAY if mode == "pat-ai-gateway" else SERVING,
                            [token])
    elif mode == "service-principal":
        env = {**common, "DATABRICKS_HOST": fw.url, "DATABRICKS_CLIENT_ID": fw.client_id,
               "DATABRICKS_CLIENT_SECRET": fw.client_secret}
        server = start_app(home, env)
        deployed = Deployed(server, home, _is_sp_oauth(fw), SERVING, [fw.client_secret])
    elif mode == "profile":
        work, decoy = fw.create_token(), fw.create_token()
        fw.revoke_token(decoy)
        (home / ".databrickscfg").write_text(
            f"[DEFAULT]\nhost = {fw.url}\ntoken = {decoy}\n\n[work]\nhost = {fw.url}\ntoken = {work}\n")
        server = start_app(home, {**common, "DATABRICKS_CONFIG_PROFILE": "work"})
        deployed = Deployed(server, home, lambda b: b == work, SERVING, [work, decoy])
    else:
        raise ValueError(mode)
    server.wait_setup(90)
    return deployed


@pytest.fixture(scope="module")
def deployments(clis: Path, fw: FakeWorkspace,  # noqa: F811
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployments]:
    started: dict[str, Deployed] = {}

    def get(mode: str) -> Deployed:
        if mode not in started:
            for other in list(started):  # one app at a time
                started.pop(other).server.stop()
            started[mode] = _deploy(mode, tmp_path_factory.mktemp(mode), clis, fw)
        return started[mode]

    yield get
    for deployed in started.values():
        deployed.server.stop()
        kill_leftovers(deployed.home)


def run_in_terminal(deployed: Deployed, argv: list[str], timeout: float = 180) -> tuple[int, str, str]:
    """Type ``argv`` into a new shell session in ~/projects/demo; (exit code, output, session id)."""
    server, home = deployed.server, deployed.home
    status, session = server.request("POST", "/api/sessions", {"agent": "bash", "cwd": "demo"},
                                     headers=deployed.headers)
    assert status == 201, session
    out, rc = home.parent / f"out-{session['id']}.txt", home.parent / f"rc-{session['id']}.txt"
    # IS_SANDBOX: Claude refuses "run everything" as root otherwise (a Claude session gets it from the app).
    line = (f"IS_SANDBOX=1 NO_COLOR=1 CI=1 {shlex.join(argv)} </dev/null >{out} 2>&1; "
            f"echo $? >{rc}.tmp && mv {rc}.tmp {rc}\r")
    term = TermClient(server.ws_url, session["id"], headers=deployed.headers)
    try:
        term.send(line)
        deadline = time.monotonic() + timeout
        while not rc.exists():
            assert time.monotonic() < deadline, f"{argv[0]} did not finish:\n{out.read_text() if out.exists() else ''}"
            time.sleep(0.2)
    finally:
        term.close()
    return int(rc.read_text().strip()), out.read_text(errors="replace"), session["id"]


def _usage_of(deployed: Deployed, session_id: str) -> dict:
    _, sessions = deployed.server.request("GET", "/api/sessions", headers=deployed.headers)
    return next(s for s in sessions if s["id"] == session_id)["usage"]


def _check_run(deployed: Deployed, fw: FakeWorkspace, agent_id: str) -> None:
    """Run one CLI through the gateway and check bearer, headers, paths, usage and the files on disk."""
    fw.clear_requests()
    code, output, session_id = run_in_terminal(deployed, COMMANDS[agent_id])
    try:
        assert code == 0, f"{agent_id} exited {code}:\n{output[-3000:]}\n{deployed.server.log()[-2000:]}"
        assert REPLY in output, f"{agent_id} did not print the reply:\n{output[-3000:]}"
        calls = fw.model_requests
        assert calls, f"{agent_id} made no model call"
        model = get_agent(agent_id).model(_settings(deployed))
        for call in calls:
            bearer = call.headers.get("authorization", "").removeprefix("Bearer ")
            assert deployed.bearer_ok(bearer), (agent_id, call.path, bearer[:12])
            assert call.headers.get(CODING_AGENT_HEADER) == "true", (agent_id, call.path)
            assert call.path.startswith(deployed.prefixes[agent_id]), call.path
            assert call.model == model
        assert not [r.path for r in fw.requests if r.path.startswith("/api/")], "the CLI called workspace APIs"
        reported = fw.model_usage
        assert reported, f"{agent_id}: the fake reported no usage"
        usage = _usage_of(deployed, session_id)
        assert usage["input_tokens"] == sum(u.input_tokens for u in reported), (usage, reported)
        assert usage["output_tokens"] == sum(u.output_tokens for u in reported), (usage, reported)
        assert usage["calls"] == len(reported)
    finally:
        deployed.server.request("DELETE", f"/api/sessions/{session_id}", headers=deployed.headers)
    _check_files(deployed, fw)


def _settings(deployed: Deployed) -> Settings:
    return load_settings({"HOME": str(deployed.home)})


def _check_files(deployed: Deployed, fw: FakeWorkspace) -> None:
    """The agents' files point at the gateway and hold no workspace secret (nor a session key)."""
    oauth = [t.value for t in fw.tokens if t.kind == "oauth"]
    texts = {rel: (deployed.home / rel).read_text() for rel in AGENT_FILES if (deployed.home / rel).exists()}
    assert set(texts) == set(AGENT_FILES), sorted(texts)
    for rel, text in texts.items():
        for secret in [*deployed.secrets, *oauth]:
            assert secret not in text, f"{rel} holds a workspace secret"
    gateway = f"http://127.0.0.1:{deployed.server.port}/_coda/local/gateway/"
    for rel in (".claude/settings.json", ".codex/config.toml", ".gemini/.env", ".config/opencode/opencode.json"):
        assert gateway in texts[rel], rel
    assert not re.search(r"^GEMINI_API_KEY=", texts[".gemini/.env"], re.M)  # from the session's environment


@pytest.mark.parametrize("agent_id", AGENTS)
@pytest.mark.parametrize("mode", ["pat", "pat-ai-gateway"])
def test_with_a_personal_access_token(mode: str, agent_id: str, deployments: Deployments, fw: FakeWorkspace) -> None:
    _check_run(deployments(mode), fw, agent_id)


# OAuth token lifetime while each CLI runs: Claude's first call fetches an hour-long token, which is
# expired behind the SDK's back before Codex runs (so the gateway must notice the 403 and renew);
# from then on tokens live seconds and run out on their own while the CLIs work.
LIFETIMES = {"claude": 3600, "codex": OAUTH_LIFETIME_S, "gemini": OAUTH_LIFETIME_S, "opencode": OAUTH_LIFETIME_S}


@pytest.mark.parametrize("agent_id", AGENTS)
def test_with_only_the_service_principal(agent_id: str, deployments: Deployments, fw: FakeWorkspace) -> None:
    """No token anywhere: the app's service principal answers, its tokens renewed mid-session."""
    fw.oauth_token_lifetime_s = LIFETIMES[agent_id]
    try:
        deployed = deployments("service-principal")
        issued = [t.value for t in fw.tokens if t.kind == "oauth" and t.usable()]
        for token in issued:  # the token the gateway holds stops working before the SDK expects it
            fw.expire_token(token)
        _check_run(deployed, fw, agent_id)
        if agent_id == "codex":
            presented = [r.headers.get("authorization", "").removeprefix("Bearer ") for r in fw.requests
                         if r.path.startswith("/serving-endpoints/")]
            assert presented[0] in issued, "the expired token was not the first one presented"
            assert deployed.bearer_ok(presented[-1]) and presented[-1] not in issued
        if agent_id == AGENTS[-1]:
            # The hour-long token, its early replacement, and short-lived ones the SDK renewed by itself.
            assert len([t for t in fw.tokens if t.kind == "oauth"]) >= 3
    finally:
        fw.oauth_token_lifetime_s = 3600


@pytest.mark.parametrize("agent_id", AGENTS)
def test_with_a_databricks_cli_profile(agent_id: str, deployments: Deployments, fw: FakeWorkspace) -> None:
    _check_run(deployments("profile"), fw, agent_id)


def test_on_databricks_apps_with_no_token(clis: Path, fw: FakeWorkspace, tmp_path: Path) -> None:  # noqa: F811
    """Deployed exactly as the platform starts it, with no DATABRICKS_TOKEN: the service principal answers."""
    home = _home(tmp_path, clis)
    owner = {"X-Forwarded-Email": fw.owner_email}
    server = start_on_apps(home, fw, CODA_PERMISSION_MODE="all")
    try:
        deadline = time.monotonic() + 60
        while server.request("GET", "/api/sessions", headers=owner)[0] != 200:
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.3)
        server.wait_setup(90)
        deployed = Deployed(server, home, _is_sp_oauth(fw), SERVING, [fw.client_secret], owner)
        status, session = server.request("POST", "/api/sessions", {"agent": "bash"}, headers=owner)
        assert status == 201
        environ = Path(f"/proc/{session['pid']}/environ").read_bytes().decode().split("\0")
        key = next(v.split("=", 1)[1] for v in environ if v.startswith("CODA_SESSION_KEY="))
        probe = httpx.post(f"{server.url}/_coda/local/gateway/anthropic/v1/messages", timeout=30,
                           json={"model": "x", "messages": []}, headers={"authorization": f"Bearer {key}"})
        server.request("DELETE", f"/api/sessions/{session['id']}", headers=owner)
        # A loopback request with the session key gets past the owner check (no forwarded user on it).
        assert "No signed-in user" not in probe.text, probe.text
        for agent_id in AGENTS:
            _check_run(deployed, fw, agent_id)
    finally:
        server.stop()
        kill_leftovers(home)
