"""Per-session keys: only a session's own processes hold its key, and a key maps to one session."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from starlette.types import Scope

from lib.access.loopback import is_local_path, is_local_request
from lib.settings import load_settings
from lib.terminal.keys import APP_URL_ENV, KEY_ENV, SessionKeys
from lib.terminal.pump import LoopPump
from lib.terminal.registry import SessionRegistry


def test_a_key_maps_to_exactly_its_session() -> None:
    keys = SessionKeys()
    a, b = keys.issue("aaaaaaaaaaaa"), keys.issue("bbbbbbbbbbbb")
    assert a != b
    assert keys.session_for(a) == "aaaaaaaaaaaa"
    assert keys.session_for(b) == "bbbbbbbbbbbb"
    for wrong in (None, "", a[:-1], a + "x", b.upper(), "x" * 10_000):
        assert keys.session_for(wrong) is None
    keys.revoke("aaaaaaaaaaaa")
    assert keys.session_for(a) is None
    assert keys.session_for(b) == "bbbbbbbbbbbb"
    again = keys.issue("bbbbbbbbbbbb")  # a re-issued key replaces the old one
    assert keys.session_for(b) is None and keys.session_for(again) == "bbbbbbbbbbbb"


def _scope(peer: str, headers: dict[str, str]) -> Scope:
    return {"type": "http", "client": (peer, 40000),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


@pytest.mark.parametrize(
    ("peer", "headers", "local"),
    [
        ("127.0.0.1", {}, True),
        ("::1", {}, True),
        ("127.0.0.1", {"X-Forwarded-Email": "owner@example.com"}, False),
        ("127.0.0.1", {"X-Forwarded-For": "10.0.0.1"}, False),
        ("127.0.0.1", {"Forwarded": "for=10.0.0.1"}, False),
        ("10.1.2.3", {}, False),
        ("not-an-ip", {}, False),
    ],
)
def test_only_unproxied_loopback_requests_are_local(peer: str, headers: dict[str, str], local: bool) -> None:
    assert is_local_request(_scope(peer, headers)) is local


def test_local_paths_honour_the_base_path() -> None:
    assert is_local_path("/_coda/local/report")
    assert is_local_path("/coda/_coda/local/report", "/coda/")
    assert not is_local_path("/api/sessions")


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_each_session_environment_holds_its_own_key(tmp_path: Path, loop) -> None:
    settings = load_settings({"HOME": str(tmp_path)})
    registry = SessionRegistry(lambda: settings, pump=LoopPump(loop))
    registry.app_url = "http://127.0.0.1:9"
    first, second = registry.create("bash"), registry.create("bash")
    try:
        envs = []
        for session in (first, second):
            deadline = time.monotonic() + 5
            environ = b""
            while KEY_ENV.encode() not in environ and time.monotonic() < deadline:
                environ = Path(f"/proc/{session.pid}/environ").read_bytes()
                time.sleep(0.05)
            envs.append(dict(item.split("=", 1) for item in environ.decode().split("\0") if "=" in item))
        for session, env in zip((first, second), envs, strict=True):
            assert registry.keys.session_for(env[KEY_ENV]) == session.id
            assert env[APP_URL_ENV] == "http://127.0.0.1:9"
        assert envs[0][KEY_ENV] != envs[1][KEY_ENV]
        old_key = envs[0][KEY_ENV]
        registry.close(first.id)
        assert registry.keys.session_for(old_key) is None  # a closed session's processes can no longer report
    finally:
        registry.close_all()
