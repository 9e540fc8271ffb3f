"""The model gateway on its own: a real uvicorn on 127.0.0.1 serving ``lib.gateway``'s route, the
real databricks-sdk for credentials, and the fake workspace upstream.

What is pinned here: only local requests with a valid session key get in;
the four wire APIs pass through, streamed chunk by chunk; usage is counted
per session exactly as the fake reported it; credentials are fresh per call
(a revoked token is noticed at once and the next source takes over, an OAuth
token the workspace no longer accepts is renewed); OpenCode's empty text
blocks are fixed; a missing CAN_QUERY grant reads as a sentence.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from lib.agents.base import SESSION_KEY_ENV
from lib.agents.config import session_key_env
from lib.gateway.proxy import Gateway, presented_key
from lib.gateway.routes import build_routes, gateway_url
from lib.gateway.usage import Budget, Usage, UsageTap
from lib.gateway.wire import CHAT, fix_chat_messages
from lib.settings import load_settings
from lib.terminal import keys as terminal_keys
from lib.terminal.keys import SessionKeys
from lib.workspace import credentials as creds
from lib.workspace.tokens import TokenStore, check_token
from tests.appserver import AppServer, free_port, start_app
from tests.fakeworkspace import FakeWorkspace

CLAUDE = "databricks-claude-opus-4-6"
GPT = "databricks-gpt-5-2"
GEMINI = "databricks-gemini-3-1-pro"


class GatewayServer:
    """``lib.gateway`` behind a real uvicorn on 127.0.0.1, with its own session keys."""

    def __init__(self, home: Path, env: dict[str, str], *, budget: Budget | None = None) -> None:
        self.env = {"HOME": str(home), **env}
        self.keys = SessionKeys()
        self.tokens = TokenStore(check=lambda host, token: check_token(host, token, timeout_s=3))
        settings = lambda: load_settings(self.env)  # noqa: E731
        self.tokens.load_initial(settings(), self.env)
        self.credentials = creds.Credentials(self.tokens, settings, self.env, retry_timeout_s=5)
        self.gateway = Gateway(self.credentials, settings, self.keys.session_for, budget=lambda: budget)
        app = Starlette(routes=build_routes(self.gateway, base=""))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "gateway server did not start"
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return gateway_url(f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


Pat = tuple["GatewayServer", str]  # the gateway with a personal access token, and the token


@pytest.fixture(scope="module")
def fw() -> Iterator[FakeWorkspace]:
    with FakeWorkspace() as workspace:
        workspace.model_reply = "PONG through the gateway"
        yield workspace


@pytest.fixture
def pat_gateway(fw: FakeWorkspace, tmp_path: Path) -> Iterator[tuple[GatewayServer, str]]:
    token = fw.create_token()
    server = GatewayServer(tmp_path, {"DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": token})
    fw.clear_requests()
    fw.model_reject_empty_text = False
    fw.model_denied_endpoints = []
    yield server, token
    server.stop()


def _anthropic(stream: bool) -> dict:
    return {"model": CLAUDE, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


CALLS = {
    # api, rest, body
    "anthropic": ("anthropic", "v1/messages?beta=true", _anthropic),
    "responses": ("openai", "responses", lambda s: {"model": GPT, "stream": s, "input": "hi"}),
    "chat": ("chat", "chat/completions",
             lambda s: {"model": CLAUDE, "stream": s, "messages": [{"role": "user", "content": "hi"}]}),
    "gemini": ("gemini", None, lambda s: {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}


def _call(server: GatewayServer, kind: str, key: str, stream: bool, **headers: str) -> httpx.Response:
    api, rest, body = CALLS[kind]
    if rest is None:
        rest = f"v1beta/models/{GEMINI}:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
    return httpx.post(f"{server.url}/{api}/{rest}", json=body(stream), timeout=30,
                      headers={"authorization": f"Bearer {key}", **headers})


# ---------------------------------------------------------------- who gets in


def test_only_local_requests_with_a_live_session_key(pat_gateway: Pat, fw: FakeWorkspace) -> None:
    server, token = pat_gateway
    key = server.keys.issue("session-a")
    assert _call(server, "anthropic", key, False).status_code == 200
    for forged in ("nope", key[:-1] + ("A" if key[-1] != "A" else "B"), token):
        r = _call(server, "anthropic", forged, False)
        assert r.status_code == 401, forged
        assert "session key" in r.json()["error"]["message"]
    # Through a proxy (the Apps proxy always adds X-Forwarded-*): refused even with the right key.
    for header in ("x-forwarded-for", "x-forwarded-email", "forwarded", "x-real-ip"):
        r = _call(server, "anthropic", key, False, **{header: "1.2.3.4"})
        assert r.status_code == 403, header
        assert "loopback" in r.json()["error"]["message"]
    # A closed session's key dies with it.
    server.keys.revoke("session-a")
    assert _call(server, "anthropic", key, False).status_code == 401
    # No way out of the API's base path.
    good = server.keys.issue("session-b")
    r = httpx.post(f"{server.url}/anthropic/v1/%2E%2E/%2E%2E/api/2.0/token/list",
                   headers={"authorization": f"Bearer {good}"})
    assert r.status_code in (400, 404)
    assert not [q for q in fw.requests if q.path.startswith("/api/")]
    # Every call that got through carried the workspace token, never the session key.
    assert fw.model_requests and all(m.headers["authorization"] == f"Bearer {token}" for m in fw.model_requests)


def test_the_cli_key_is_read_where_each_cli_puts_it() -> None:
    assert presented_key({"authorization": "Bearer k1"}) == "k1"  # Codex, OpenCode, Gemini (bearer), Claude
    assert presented_key({"x-api-key": "k2"}) == "k2"  # Claude's apiKeyHelper also sends this
    assert presented_key({"x-goog-api-key": "k3"}) == "k3"  # Gemini's default mechanism
    assert presented_key({}) is None
    assert SESSION_KEY_ENV == terminal_keys.KEY_ENV
    assert session_key_env() == ("CODA_SESSION_KEY", "GEMINI_API_KEY")


# ---------------------------------------------------------------- the four APIs, usage


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", sorted(CALLS))
def test_each_api_passes_through_and_usage_is_counted(pat_gateway: Pat, fw: FakeWorkspace, kind: str,
                                                      stream: bool) -> None:
    server, token = pat_gateway
    key = server.keys.issue("s1")
    r = _call(server, kind, key, stream)
    assert r.status_code == 200, r.text
    assert "PONG" in r.text
    if stream:
        assert r.headers["content-type"].startswith("text/event-stream")
    (call,) = fw.model_requests
    assert call.headers["authorization"] == f"Bearer {token}"
    assert call.headers["x-databricks-use-coding-agent-mode"] == "true"  # added when the client did not send it
    assert call.headers["accept-encoding"] == "identity"
    (reported,) = fw.model_usage
    got = server.gateway.usage.session("s1")
    assert (got.input_tokens, got.output_tokens, got.calls) == (reported.input_tokens, reported.output_tokens, 1)
    assert server.gateway.session_usage("s1")["today_tokens"] == got.total_tokens


def test_usage_is_per_session_and_summed(pat_gateway: Pat, fw: FakeWorkspace) -> None:
    server, _ = pat_gateway
    a, b = server.keys.issue("a"), server.keys.issue("b")
    for kind in sorted(CALLS):
        assert _call(server, kind, a, True).status_code == 200
    assert _call(server, "anthropic", b, False).status_code == 200
    reported = fw.model_usage
    want_a = sum(u.input_tokens + u.output_tokens for u in reported[:4])
    assert server.gateway.usage.session("a").total_tokens == want_a
    assert server.gateway.usage.session("a").calls == 4
    assert server.gateway.usage.session("b").total_tokens == reported[4].input_tokens + reported[4].output_tokens
    assert server.gateway.usage.today_total().total_tokens == sum(u.input_tokens + u.output_tokens for u in reported)


def test_usage_tap_reads_every_form() -> None:
    def tap(fmt: str, ctype: str, chunks: list[bytes]) -> Usage | None:
        t = UsageTap(fmt, ctype)
        for c in chunks:
            t.feed(c)
        return t.finish()

    sse = (b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":10,'
           b'"cache_read_input_tokens":90,"cache_creation_input_tokens":5,"output_tokens":1}}}\n\n'
           b'data: {"type":"content_block_delta","delta":{"text":"say \\"usage\\": 9"}}\n\n'
           b'data: {"type":"message_delta","usage":{"output_tokens":42}}\n\n')
    # Split at every byte: lines cut anywhere still parse.
    assert tap("anthropic", "text/event-stream", [sse[i:i + 1] for i in range(len(sse))]) == Usage(105, 42, 90, 1)
    assert tap("gemini", "application/json", [b'[{"usageMetadata":{"promptTokenCount":3}},',
                                              b'{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,'
                                              b'"thoughtsTokenCount":2,"cachedContentTokenCount":1}}]']) \
        == Usage(3, 6, 1, 1)
    assert tap("chat", "text/event-stream", [b'data: {"choices":[]}\n\ndata: [DONE]\n\n']) is None
    assert tap("responses", "application/json", [b'{"usage":{"input_tokens":7,"output_tokens":2,'
                                                 b'"input_tokens_details":{"cached_tokens":5}}}']) == Usage(7, 2, 5, 1)


def test_streamed_chunks_are_not_held_back(pat_gateway: Pat, fw: FakeWorkspace) -> None:
    server, _ = pat_gateway
    key = server.keys.issue("s")
    fw.model_chunk_delay_s = 0.25
    try:
        arrivals: list[float] = []
        with httpx.stream("POST", f"{server.url}/anthropic/v1/messages", json=_anthropic(True),
                          headers={"x-api-key": key}, timeout=30) as r:
            start = time.monotonic()
            for _ in r.iter_raw():
                arrivals.append(time.monotonic() - start)
    finally:
        fw.model_chunk_delay_s = 0
    # The fake sends ~9 events 0.25 s apart: they must arrive spread out, not at the end together.
    assert len(arrivals) >= 6, arrivals
    assert arrivals[0] < 0.2 and arrivals[-1] > 1.5, arrivals


# ---------------------------------------------------------------- fixes and errors


def test_opencode_empty_text_blocks_are_fixed_in_one_place(pat_gateway: Pat, fw: FakeWorkspace) -> None:
    server, token = pat_gateway
    key = server.keys.issue("oc")
    fw.model_reject_empty_text = True
    body = {"model": CLAUDE, "stream": True, "messages": [
        {"role": "system", "content": "You are OpenCode."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": [{"type": "text", "text": " "}],
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "go on"},
    ]}
    direct = httpx.post(f"{fw.url}/serving-endpoints/chat/completions", json=body,
                        headers={"authorization": f"Bearer {token}"})
    assert direct.status_code == 400 and "non-empty" in direct.text  # what Databricks does to OpenCode
    r = httpx.post(f"{server.url}/chat/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    sent = fw.model_requests[-1].json
    assert sent["stream_options"] == {"include_usage": True}  # so the answer reports its tokens
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "hi"}]
    assert sent["messages"][2]["content"] is None and sent["messages"][2]["tool_calls"]
    assert server.gateway.usage.session("oc").calls == 1


def test_fix_leaves_good_requests_alone() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]},
                         {"role": "tool", "tool_call_id": "x", "content": ""}]}
    before = json.dumps(body)
    assert fix_chat_messages(body) is False and json.dumps(body) == before
    assert CHAT == "chat"


def test_missing_grant_names_the_endpoint_and_the_permission(pat_gateway: Pat, fw: FakeWorkspace) -> None:
    server, _ = pat_gateway
    key = server.keys.issue("s")
    fw.model_denied_endpoints = [GPT]
    try:
        r = _call(server, "responses", key, True)
    finally:
        fw.model_denied_endpoints = []
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert f"'{GPT}'" in message and "CAN_QUERY" in message and "app's resources" in message
    assert "Traceback" not in message
    # The credential itself is fine: it is not dropped.
    assert server.credentials.status().state != creds.REFUSED


def test_no_credentials_says_the_one_thing_to_do(tmp_path: Path) -> None:
    server = GatewayServer(tmp_path, {})
    try:
        key = server.keys.issue("s")
        r = _call(server, "anthropic", key, False)
        assert r.status_code == 403
        message = r.json()["error"]["message"]
        assert "databricks auth login --host" in message
        assert server.credentials.status().state == creds.NONE
    finally:
        server.stop()


def test_budget_refuses_once_spent(fw: FakeWorkspace, tmp_path: Path) -> None:
    server = GatewayServer(tmp_path, {"DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": fw.create_token()},
                           budget=Budget(daily_tokens=10, refuse=True))
    try:
        key = server.keys.issue("s")
        assert _call(server, "anthropic", key, False).status_code == 200  # ~12 tokens: now over
        assert server.gateway.session_usage("s")["budget"]["state"] == "over"
        r = _call(server, "gemini", key, True)
        assert r.status_code == 403 and "daily budget" in r.json()["error"]["message"]
        other = server.keys.issue("other")
        assert _call(server, "anthropic", other, False).status_code == 200  # per session
    finally:
        server.stop()


# ---------------------------------------------------------------- credentials


def test_revoked_token_is_noticed_on_the_next_call_and_the_sp_takes_over(fw: FakeWorkspace, tmp_path: Path) -> None:
    token = fw.create_token()
    server = GatewayServer(tmp_path, {"DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": token,
                                      "DATABRICKS_CLIENT_ID": fw.client_id,
                                      "DATABRICKS_CLIENT_SECRET": fw.client_secret})
    try:
        key = server.keys.issue("s")
        fw.clear_requests()
        assert _call(server, "anthropic", key, False).status_code == 200
        assert server.credentials.status().kind == creds.TOKEN
        fw.revoke_token(token)
        began = time.monotonic()
        r = _call(server, "anthropic", key, False)
        assert r.status_code == 200, r.text  # retried at once with the service principal
        # The sidebar reads these: the token is marked refused right away.
        assert server.tokens.status().state == "rejected"
        assert time.monotonic() - began < 1.0
        assert server.credentials.status().kind == creds.SERVICE_PRINCIPAL
        # Every request that reached the workspace, refused ones included:
        bearers = [q.headers["authorization"].removeprefix("Bearer ") for q in fw.requests
                   if q.path.startswith("/serving-endpoints/")]
        assert bearers[:2] == [token, token] and len(bearers) == 3
        assert fw.state.lookup_token(bearers[2]).identity == fw.state.service_principal
    finally:
        server.stop()


def test_sp_token_refused_early_is_renewed(fw: FakeWorkspace, tmp_path: Path) -> None:
    server = GatewayServer(tmp_path, {"DATABRICKS_HOST": fw.url, "DATABRICKS_CLIENT_ID": fw.client_id,
                                      "DATABRICKS_CLIENT_SECRET": fw.client_secret})
    try:
        key = server.keys.issue("s")
        fw.clear_requests()
        assert _call(server, "gemini", key, True).status_code == 200
        first = fw.model_requests[-1].headers["authorization"].removeprefix("Bearer ")
        fw.expire_token(first)  # the workspace stops taking it before the SDK expected
        assert _call(server, "gemini", key, True).status_code == 200
        second = fw.model_requests[-1].headers["authorization"].removeprefix("Bearer ")
        assert second != first and fw.state.lookup_token(second).usable()
        assert server.credentials.status().state == creds.WORKS
    finally:
        server.stop()


def test_profile_is_chosen_like_the_databricks_cli(fw: FakeWorkspace, tmp_path: Path) -> None:
    work, default = fw.create_token(), fw.create_token()
    (tmp_path / ".databrickscfg").write_text(
        f"[DEFAULT]\nhost = {fw.url}\ntoken = {default}\n\n[work]\nhost = {fw.url}\ntoken = {work}\n")
    for env, want in (({}, default), ({"DATABRICKS_CONFIG_PROFILE": "work"}, work)):
        server = GatewayServer(tmp_path, env)
        try:
            status = server.credentials.status()
            assert status.kind == creds.PROFILE and status.state == creds.UNUSED
            key = server.keys.issue("s")
            fw.clear_requests()
            assert _call(server, "anthropic", key, True).status_code == 200
            assert fw.model_requests[-1].headers["authorization"] == f"Bearer {want}"
            assert "~/.databrickscfg" in server.credentials.status().label
        finally:
            server.stop()


def test_databricks_auth_login_profile_uses_the_cli(fw: FakeWorkspace, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A U2M profile (``auth_type = databricks-cli``): the SDK asks the ``databricks`` CLI for a token."""
    token = fw.create_token(lifetime_s=3600)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "databricks"
    expiry = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3600))
    calls = tmp_path / "cli-calls.txt"
    cli.write_text("#!/bin/sh\n"
                   f'echo "$@" >> {calls}\n'
                   'if [ "$1" = "version" ]; then echo \'{"Major": 0, "Minor": 296, "Patch": 0}\'; exit 0; fi\n'
                   f'echo \'{{"access_token": "{token}", "token_type": "Bearer", "expiry": "{expiry}"}}\'\n')
    cli.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    (tmp_path / ".databrickscfg").write_text(f"[laptop]\nhost = {fw.url}\nauth_type = databricks-cli\n")
    server = GatewayServer(tmp_path, {"DATABRICKS_CONFIG_PROFILE": "laptop"})
    try:
        key = server.keys.issue("s")
        fw.clear_requests()
        r = _call(server, "responses", key, True)
        assert r.status_code == 200, r.text
        assert fw.model_requests[-1].headers["authorization"] == f"Bearer {token}"
        assert "databricks-cli" in server.credentials.status().label
        assert "auth token --profile laptop" in calls.read_text()
    finally:
        server.stop()


# ---------------------------------------------------------------- in the real app


def _session_key(server: AppServer, base: str = "") -> tuple[str, str]:
    """(key, CODA_APP_URL) of a new shell session, read from its environment like its programs do."""
    status, session = server.request("POST", f"{base}/api/sessions", {"agent": "bash"})
    assert status == 201, session
    environ = dict(v.split("=", 1) for v in Path(f"/proc/{session['pid']}/environ").read_bytes().decode()
                   .split("\0") if "=" in v)
    return environ["CODA_SESSION_KEY"], environ["CODA_APP_URL"]


@pytest.mark.parametrize("base", ["", "/coda"])
def test_the_app_serves_the_gateway_at_its_loopback_url(fw: FakeWorkspace, tmp_path: Path, base: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    if base:
        command += ["--server.baseUrlPath", base.strip("/")]
    server = start_app(tmp_path / "home", {"DATABRICKS_HOST": fw.url, "DATABRICKS_TOKEN": fw.create_token()},
                       port=port, command=command, wait_path=f"{base}/health")
    try:
        key, app_url = _session_key(server, base)
        assert app_url == f"http://127.0.0.1:{port}{base}"
        deadline = time.monotonic() + 30
        settings = tmp_path / "home" / ".claude" / "settings.json"
        while not settings.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert json.loads(settings.read_text())["env"]["ANTHROPIC_BASE_URL"] == f"{gateway_url(app_url)}/anthropic"
        r = httpx.post(f"{gateway_url(app_url)}/anthropic/v1/messages", json=_anthropic(False), timeout=30,
                       headers={"x-api-key": key})
        assert r.status_code == 200, r.text
        _, sessions = server.request("GET", f"{base}/api/sessions")
        assert sessions[0]["usage"]["calls"] == 1
    finally:
        server.stop()
