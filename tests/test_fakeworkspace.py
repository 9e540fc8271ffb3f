"""The fake workspace, driven by the REAL databricks-sdk (and httpx for models).

If these pass, other teams' tests can trust that what works against the fake
is what the SDK really sends: auth discovery, workspace uploads, retries.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import httpx
import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` without `python -m` does not put the repo root on sys.path
    sys.path.insert(0, str(ROOT))

from databricks.sdk import WorkspaceClient  # noqa: E402
from databricks.sdk.core import Config  # noqa: E402
from databricks.sdk.errors import (  # noqa: E402
    DatabricksError,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    TemporarilyUnavailable,
)
from databricks.sdk.service.workspace import ImportFormat, ObjectType  # noqa: E402

from tests.fakeworkspace import FakeWorkspace  # noqa: E402

pytest_plugins = ["tests.fakeworkspace.fixtures"]  # the `fake_workspace` fixture

OWNER = "Owner.Person@example.com"


@pytest.fixture(scope="module")
def http() -> Any:
    """One httpx client for the module: building one per call costs ~0.1 s (CA bundle)."""
    with httpx.Client(timeout=5) as client:
        yield client


def pat_client(fw: FakeWorkspace, token: str, **cfg: Any) -> WorkspaceClient:
    cfg.setdefault("retry_timeout_seconds", 5)
    return WorkspaceClient(config=Config(host=fw.url, token=token, auth_type="pat", **cfg))


def m2m_client(fw: FakeWorkspace, secret: str = "sp-secret", **cfg: Any) -> WorkspaceClient:
    cfg.setdefault("retry_timeout_seconds", 5)
    return WorkspaceClient(
        config=Config(host=fw.url, client_id="sp-client-id", client_secret=secret, auth_type="oauth-m2m", **cfg)
    )


# --- lifecycle -----------------------------------------------------------------


def test_url_and_context_manager_and_restart_on_same_port() -> None:
    fw = FakeWorkspace()
    with fw:
        assert fw.url == f"http://{fw.host_without_scheme}"
        assert fw.host_without_scheme.startswith("127.0.0.1:")
        assert httpx.get(f"{fw.url}/.well-known/databricks-config").status_code == 200
        port = fw.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/.well-known/databricks-config")
    with fw:
        assert fw.port == port
        assert httpx.get(f"{fw.url}/.well-known/databricks-config").status_code == 200


# --- identity ------------------------------------------------------------------


def test_pat_auth_scim_me(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    me = pat_client(fw, fw.create_token(user=OWNER)).current_user.me()
    assert me.user_name == OWNER
    assert me.display_name == "Owner Person"
    assert me.emails and me.emails[0].value == OWNER and me.emails[0].primary
    req = [r for r in fw.requests if r.path == "/api/2.0/preview/scim/v2/Me"][-1]
    method, path, headers, body = req
    assert (method, body) == ("GET", b"")
    assert headers["authorization"].startswith("Bearer dapi")
    assert "databricks-sdk-py/0.162.0" in headers["user-agent"]


def test_oauth_m2m_apps_get_creator(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = m2m_client(fw)
    app = w.apps.get("coda-app")
    assert app.creator == OWNER
    assert app.name == "coda-app"
    assert app.service_principal_client_id == "sp-client-id"
    assert app.url and app.url.startswith("https://coda-app-")
    me = w.current_user.me()
    assert me.user_name == "sp-client-id" and not me.emails
    # what the SDK sent to get its token
    token_req = next(r for r in fw.requests if r.path == "/oidc/v1/token")
    assert token_req.query_params == {}
    assert dict(p.split("=") for p in token_req.body.decode().split("&")) == {
        "grant_type": "client_credentials",
        "scope": "all-apis",
    }
    assert token_req.headers["authorization"] == "Basic " + base64.b64encode(b"sp-client-id:sp-secret").decode()
    api_req = next(r for r in fw.requests if r.path == "/api/2.0/apps/coda-app")
    assert api_req.headers["authorization"].startswith("Bearer ey")
    assert api_req.headers["x-databricks-workspace-id"] == fw.workspace_id
    with pytest.raises(NotFound):
        w.apps.get("other-app")


def test_oauth_m2m_wrong_secret_fails(fake_workspace: FakeWorkspace) -> None:
    with pytest.raises(ValueError, match="invalid_client"):
        m2m_client(fake_workspace, secret="wrong").current_user.me()


def test_app_creator_can_be_changed_or_hidden(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = m2m_client(fw)
    fw.app_creator = "someone.else@example.com"
    assert w.apps.get("coda-app").creator == "someone.else@example.com"
    fw.app_creator = None
    with pytest.raises(NotFound):
        w.apps.get("coda-app")


def test_token_api_create_list_delete(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    created = w.tokens.create(comment="agent", lifetime_seconds=3600)
    assert created.token_value and created.token_value.startswith("dapi")
    w2 = pat_client(fw, created.token_value)
    assert w2.current_user.me().user_name == OWNER
    info = created.token_info
    assert info is not None and info.token_id
    listed = {t.token_id: t for t in w.tokens.list()}
    assert info.token_id in listed and listed[info.token_id].comment == "agent"
    w.tokens.delete(info.token_id)
    with pytest.raises(PermissionDenied):
        w2.current_user.me()
    with pytest.raises(NotFound):
        w.tokens.delete("no-such-id")


def test_revoked_and_expired_tokens_rejected(fake_workspace: FakeWorkspace, http: httpx.Client) -> None:
    fw = fake_workspace
    revoked, expired, short = fw.create_token(), fw.create_token(), fw.create_token(lifetime_s=0.3)
    pat_client(fw, revoked).current_user.me()
    fw.revoke_token(revoked)
    fw.expire_token(expired)
    for tok in (revoked, expired):
        with pytest.raises(PermissionDenied, match="Invalid access token"):
            pat_client(fw, tok).current_user.me()
    time.sleep(0.35)
    with pytest.raises(PermissionDenied):
        pat_client(fw, short).current_user.me()
    # raw shapes
    r = http.get(f"{fw.url}/api/2.0/preview/scim/v2/Me")
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    r = http.get(f"{fw.url}/api/2.0/preview/scim/v2/Me", headers={"Authorization": f"Bearer {revoked}"})
    assert r.status_code == 403
    assert r.json() == {"error_code": "PERMISSION_DENIED", "message": "Invalid access token."}


def test_revoked_oauth_token_makes_sdk_fail(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = m2m_client(fw)
    w.current_user.me()
    fw.revoke_oauth_tokens()
    with pytest.raises(PermissionDenied):
        w.current_user.me()


# --- workspace files -----------------------------------------------------------


def test_workspace_round_trip_binary_and_unicode(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    root = f"/Workspace/Users/{OWNER}/projects/démo ✓"
    w.workspace.mkdirs(root)
    binary = bytes(range(256)) * 40 + b"\r\n\x00\xff"
    name = f"{root}/naïve 日本語 — ✓.bin"
    w.workspace.upload(name, binary, format=ImportFormat.AUTO, overwrite=True)
    plain_py = b"print('not a notebook')\n"
    w.workspace.upload(f"{root}/tool.py", plain_py, format=ImportFormat.AUTO, overwrite=True)
    notebook = b"# Databricks notebook source\nprint(1)\n"
    w.workspace.upload(f"{root}/nb.py", notebook, format=ImportFormat.AUTO, overwrite=True)
    w.workspace.mkdirs(f"{root}/sub")

    status = w.workspace.get_status(name)
    assert status.object_type == ObjectType.FILE and status.size == len(binary) and status.path == name
    assert w.workspace.download(name).read() == binary
    assert w.workspace.download(f"{root}/tool.py").read() == plain_py
    assert w.workspace.get_status(f"{root}/tool.py").object_type == ObjectType.FILE
    assert w.workspace.get_status(f"{root}/nb").object_type == ObjectType.NOTEBOOK  # AUTO strips .py
    listed = {o.path: o.object_type for o in w.workspace.list(root)}
    assert listed == {
        name: ObjectType.FILE,
        f"{root}/tool.py": ObjectType.FILE,
        f"{root}/nb": ObjectType.NOTEBOOK,
        f"{root}/sub": ObjectType.DIRECTORY,
    }
    # the test-side view uses canonical paths (no /Workspace) and exact bytes
    canon_root = root[len("/Workspace") :]
    assert fw.read_file(name) == binary == fw.files[f"{canon_root}/naïve 日本語 — ✓.bin"]
    assert fw.list_dir(root) == sorted(["naïve 日本語 — ✓.bin", "tool.py", "nb", "sub"])
    assert f"{canon_root}/sub" in fw.directories

    # overwrite replaces; without overwrite it is refused
    w.workspace.upload(name, b"v2", format=ImportFormat.AUTO, overwrite=True)
    assert w.workspace.download(name).read() == b"v2"
    with pytest.raises(ResourceAlreadyExists):
        w.workspace.upload(name, b"v3", format=ImportFormat.AUTO)
    # parent folder must exist
    with pytest.raises(NotFound, match="parent folder"):
        w.workspace.upload(f"{root}/missing/x.txt", b"x", format=ImportFormat.AUTO, overwrite=True)

    # delete: non-recursive on a non-empty folder fails, recursive works
    with pytest.raises(DatabricksError) as err:
        w.workspace.delete(root)
    assert err.value.error_code == "DIRECTORY_NOT_EMPTY"
    w.workspace.delete(name)
    with pytest.raises(NotFound):
        w.workspace.get_status(name)
    w.workspace.delete(root, recursive=True)
    with pytest.raises(NotFound):
        w.workspace.get_status(root)
    with pytest.raises(NotFound):
        w.workspace.delete(root)
    assert not fw.exists(root)


def test_upload_is_multipart_and_import_json_works(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    path = f"/Users/{OWNER}/data.bin"
    w.workspace.upload(path, b"\x00\x01abc", format=ImportFormat.AUTO, overwrite=True)
    up = [r for r in fw.requests if r.path == "/api/2.0/workspace/import"][-1]
    assert up.headers["content-type"].startswith("multipart/form-data")
    # import_ sends JSON with base64 content; export without direct_download gives base64 back
    content = base64.b64encode(b"\xfe\xed json").decode()
    w.workspace.import_(f"/Users/{OWNER}/j.bin", content=content, format=ImportFormat.RAW, overwrite=True)
    exported = w.workspace.export(f"/Users/{OWNER}/j.bin")
    assert base64.b64decode(exported.content or "") == b"\xfe\xed json"
    assert fw.read_file(f"/Workspace/Users/{OWNER}/j.bin") == b"\xfe\xed json"
    # a bare upload without format falls back to SOURCE and needs a language, like the real API
    with pytest.raises(DatabricksError, match="ImportFormat.AUTO"):
        w.workspace.upload(f"/Users/{OWNER}/x.bin", b"x")


def test_serving_endpoints_list(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    names = [e.name for e in w.serving_endpoints.list()]
    assert names == [
        "databricks-claude-opus-4-6",
        "databricks-gpt-5-2",
        "databricks-gemini-3-1-pro",
        "databricks-claude-sonnet-4-5",
    ]
    fw.serving_endpoints.append("my-endpoint")
    assert [e.name for e in w.serving_endpoints.list()][-1] == "my-endpoint"
    assert all(e.state and e.state.ready and e.state.ready.value == "READY" for e in w.serving_endpoints.list())


# --- faults --------------------------------------------------------------------


def test_fault_down_gives_connection_error_quickly(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token(), retry_timeout_seconds=1)
    fw.set_fault("down")
    start = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        w.current_user.me()
    assert time.monotonic() - start < 4
    assert isinstance(err.value.__cause__, requests.ConnectionError)
    assert fw.fault_hits and all(h.mode == "down" for h in fw.fault_hits)
    fw.clear_faults()
    assert w.current_user.me().user_name == OWNER


def test_fault_down_count_then_sdk_retry_recovers(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    fw.set_fault("down", count=1, paths=["/api/2.0/preview/scim"])
    assert w.current_user.me().user_name == OWNER
    assert [h.path for h in fw.fault_hits] == ["/api/2.0/preview/scim/v2/Me"]


def test_fault_429_then_recovery(fake_workspace: FakeWorkspace, http: httpx.Client) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    fw.set_fault("429", count=2, retry_after=0)
    assert w.current_user.me().user_name == OWNER
    me_calls = [r for r in fw.requests if r.path.endswith("/Me")]
    assert len(me_calls) == 3 and len(fw.fault_hits) == 2
    raw = http.get(f"{fw.url}/api/2.0/preview/scim/v2/Me")  # 429 answers before auth, like a gateway
    assert raw.status_code == 401
    fw.set_fault("429", retry_after=1)
    raw = http.get(f"{fw.url}/api/2.0/preview/scim/v2/Me")
    assert raw.status_code == 429 and raw.headers["retry-after"] == "1"
    assert raw.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_fault_5xx_count_1_then_sdk_retry_succeeds(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    fw.set_fault("5xx", count=1, retry_after=0)
    assert w.current_user.me().user_name == OWNER
    assert len(fw.fault_hits) == 1


def test_fault_5xx_persistent_fails_after_retry_timeout(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token(), retry_timeout_seconds=1)
    fw.set_fault("5xx", retry_after=0)
    with pytest.raises(TimeoutError) as err:
        w.current_user.me()
    assert isinstance(err.value.__cause__, TemporarilyUnavailable)


def test_fault_paths_only_hit_matching_requests(fake_workspace: FakeWorkspace) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token())
    fw.set_fault("5xx", paths=["/api/2.0/workspace/"], status=500)  # 500 is not retried by the SDK
    assert w.current_user.me().user_name == OWNER
    with pytest.raises(DatabricksError) as err:
        w.workspace.mkdirs(f"/Users/{OWNER}/x")
    assert err.value.error_code == "INTERNAL_ERROR"
    assert {h.path for h in fw.fault_hits} == {"/api/2.0/workspace/mkdirs"}


def test_fault_slow_times_out_then_recovers(fake_workspace: FakeWorkspace, http: httpx.Client) -> None:
    fw = fake_workspace
    w = pat_client(fw, fw.create_token(), http_timeout_seconds=0.3)
    fw.set_fault("slow", delay_s=1.0, count=1)
    start = time.monotonic()
    assert w.current_user.me().user_name == OWNER  # first try times out, SDK retries
    assert time.monotonic() - start >= 0.3
    fw.set_fault("slow", delay_s=0.2)
    start = time.monotonic()
    http.get(f"{fw.url}/.well-known/databricks-config")
    assert time.monotonic() - start >= 0.2


def test_invalid_fault_mode_rejected(fake_workspace: FakeWorkspace) -> None:
    with pytest.raises(ValueError):
        fake_workspace.set_fault("explode")


# --- model endpoints -----------------------------------------------------------


def sse_events(resp: httpx.Response) -> List[Tuple[str, str]]:
    """(event, data) pairs of an SSE body, read as a stream."""
    out: List[Tuple[str, str]] = []
    event, data = "", []
    for line in resp.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            out.append((event, "\n".join(data)))
            event, data = "", []
    if data:
        out.append((event, "\n".join(data)))
    return out


def stream_post(
    http: httpx.Client, fw: FakeWorkspace, path: str, body: Dict[str, Any], token: str
) -> List[Tuple[str, str]]:
    headers = {"Authorization": f"Bearer {token}", "x-databricks-use-coding-agent-mode": "true"}
    with http.stream("POST", f"{fw.url}{path}", json=body, headers=headers) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        return sse_events(resp)


@pytest.mark.parametrize("base", ["/serving-endpoints/anthropic", "/anthropic"])
def test_anthropic_messages(fake_workspace: FakeWorkspace, http: httpx.Client, base: str) -> None:
    fw = fake_workspace
    fw.model_reply = "Hi there, ünïcode ✓ reply"
    tok = fw.create_token()
    body = {
        "model": "databricks-claude-opus-4-6",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "hello"}],
    }
    events = stream_post(http, fw, f"{base}/v1/messages?beta=true", body, tok)
    names = [e for e, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.index("content_block_start") < names.index("content_block_delta") < names.index("content_block_stop")
    datas = [json.loads(d) for _, d in events]
    assert all(d["type"] == e for (e, _), d in zip(events, datas, strict=True))
    text = "".join(d["delta"]["text"] for d in datas if d["type"] == "content_block_delta")
    assert text == fw.model_reply
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"
    req = fw.model_requests[-1]
    path, headers, sent = req
    assert req.api == "anthropic" and req.stream and req.query == "beta=true"
    assert path == f"{base}/v1/messages" and sent == body
    assert headers["x-databricks-use-coding-agent-mode"] == "true"

    body["stream"] = False
    r = http.post(f"{fw.url}{base}/v1/messages", json=body, headers={"Authorization": f"Bearer {tok}"})
    assert r.json()["content"] == [{"type": "text", "text": fw.model_reply}]
    r = http.post(
        f"{fw.url}{base}/v1/messages/count_tokens?beta=true", json=body, headers={"Authorization": f"Bearer {tok}"}
    )
    assert r.status_code == 200 and r.json()["input_tokens"] > 0


@pytest.mark.parametrize("path", ["/serving-endpoints/responses", "/openai/v1/responses"])
def test_openai_responses_stream(fake_workspace: FakeWorkspace, http: httpx.Client, path: str) -> None:
    fw = fake_workspace
    body = {"model": "databricks-gpt-5-2", "input": [{"role": "user", "content": "hi"}], "stream": True}
    events = stream_post(http, fw, path, body, fw.create_token())
    names = [e for e, _ in events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * names.count("response.output_text.delta"),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    datas = [json.loads(d) for _, d in events]
    assert [d["sequence_number"] for d in datas] == list(range(len(datas)))
    assert "".join(d["delta"] for d in datas if d["type"] == "response.output_text.delta") == fw.model_reply
    done = datas[-2]["item"]
    assert done["type"] == "message" and done["content"][0] == {
        "type": "output_text",
        "text": fw.model_reply,
        "annotations": [],
    }
    completed = datas[-1]["response"]
    assert completed["id"].startswith("resp_") and completed["status"] == "completed"
    assert set(completed["usage"]) >= {"input_tokens", "output_tokens", "total_tokens", "input_tokens_details"}
    assert fw.model_requests[-1].api == "responses"


@pytest.mark.parametrize("path", ["/serving-endpoints/chat/completions", "/openai/v1/chat/completions"])
def test_chat_completions(fake_workspace: FakeWorkspace, http: httpx.Client, path: str) -> None:
    fw = fake_workspace
    tok = fw.create_token()
    body = {
        "model": "databricks-claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = stream_post(http, fw, path, body, tok)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(d) for _, d in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == fw.model_reply
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    body["stream"] = False
    r = http.post(f"{fw.url}{path}", json=body, headers={"Authorization": f"Bearer {tok}"})
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": fw.model_reply}


@pytest.mark.parametrize("base", ["/serving-endpoints/google", "/gemini"])
def test_gemini(fake_workspace: FakeWorkspace, http: httpx.Client, base: str) -> None:
    fw = fake_workspace
    tok = fw.create_token()
    model = "databricks-gemini-3-1-pro"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    events = stream_post(http, fw, f"{base}/v1beta/models/{model}:streamGenerateContent?alt=sse", body, tok)
    datas = [json.loads(d) for _, d in events]
    text = "".join(p["text"] for d in datas for p in d["candidates"][0]["content"]["parts"])
    assert text == fw.model_reply
    assert datas[-1]["candidates"][0]["finishReason"] == "STOP"
    assert datas[-1]["usageMetadata"]["totalTokenCount"] > 0
    req = fw.model_requests[-1]
    assert req.model == model and req.api == "gemini" and req.query == "alt=sse"
    auth = {"Authorization": f"Bearer {tok}"}
    r = http.post(f"{fw.url}{base}/v1beta/models/{model}:generateContent", json=body, headers=auth)
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == fw.model_reply
    r = http.post(f"{fw.url}{base}/v1beta/models/{model}:streamGenerateContent", json=body, headers=auth)
    assert isinstance(r.json(), list)
    r = http.post(f"{fw.url}{base}/v1beta/models/{model}:countTokens", json=body, headers=auth)
    assert r.json()["totalTokens"] > 0
    # JSON-mode side calls get a value that fits the requested schema
    schema = {
        "type": "object",
        "properties": {"reasoning": {"type": "string"}, "next_speaker": {"type": "string", "enum": ["user", "model"]}},
    }
    json_body = {**body, "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema}}
    r = http.post(f"{fw.url}{base}/v1beta/models/{model}:generateContent", json=json_body, headers=auth)
    assert json.loads(r.json()["candidates"][0]["content"]["parts"][0]["text"])["next_speaker"] == "user"


def test_model_endpoints_require_valid_token(fake_workspace: FakeWorkspace, http: httpx.Client) -> None:
    fw = fake_workspace
    body = {"model": "databricks-claude-opus-4-6", "messages": [], "stream": True}
    r = http.post(f"{fw.url}/anthropic/v1/messages", json=body)
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    tok = fw.create_token()
    fw.revoke_token(tok)
    r = http.post(f"{fw.url}/openai/v1/responses", json=body, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403
    oauth = fw.create_oauth_token()
    r = http.post(
        f"{fw.url}/anthropic/v1/messages", json={**body, "stream": False}, headers={"Authorization": f"Bearer {oauth}"}
    )
    assert r.status_code == 200
    assert len(fw.model_requests) == 1  # rejected calls are not model requests


def test_strict_models_and_unknown_routes(fake_workspace: FakeWorkspace, http: httpx.Client) -> None:
    fw = fake_workspace
    auth = {"Authorization": f"Bearer {fw.create_token()}"}
    fw.strict_models = True
    r = http.post(f"{fw.url}/serving-endpoints/chat/completions", json={"model": "nope", "messages": []}, headers=auth)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = http.get(f"{fw.url}/api/2.0/clusters/list", headers=auth)
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
