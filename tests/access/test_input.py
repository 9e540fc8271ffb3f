"""Bad input gets a 4xx that says why, never a 500 (issue 12, item 7).

Before: ``[`` x 100000 to ``POST /api/sessions`` answered 500 with a traceback in
the log, a 20 MB JSON body was read whole, an upload named with 86+ CJK or
emoji characters answered 500 (``ENAMETOOLONG``), and an 80 MB WebSocket frame
was refused with "still busy with 0 bytes".
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from pathlib import Path

import pytest

from lib.terminal import uploads
from lib.terminal.uploads import UploadError, safe_name, save_upload
from tests.appserver import AppServer, start_app
from tests.rawhttp import raw_request
from tests.termclient import TermClient

MAX_JSON_BYTES = 64 * 1024  # lib.terminal.routes.MAX_JSON_BYTES
NAME_MAX = 255  # bytes in a file name, on every common file system


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> AppServer:
    server = start_app(tmp_path_factory.mktemp("input") / "home")
    yield server
    server.stop()


def _post(app: AppServer, path: str, body: bytes, method: str = "POST") -> tuple[int, object]:
    status, raw = raw_request(app.port, method, path, [("Host", f"127.0.0.1:{app.port}"),
                                                       ("Content-Type", "application/json")], body)
    return status, json.loads(raw) if raw else None


def test_deep_json_is_a_400_without_a_traceback(app: AppServer) -> None:
    _, made = app.request("POST", "/api/sessions", {"agent": "bash"})
    try:
        for path, method in (("/api/sessions", "POST"), (f"/api/sessions/{made['id']}", "PATCH")):
            status, body = _post(app, path, b"[" * 60_000, method)
            assert status == 400 and "nested too deeply" in body["error"], (path, body)
            status, body = _post(app, path, b"[" * 100_000, method)  # the red team's body: over the cap
            assert status == 413 and "64 KiB" in body["error"]
            for junk in (b"{", b"\xff\xfe", b"", b'{"agent": "bash"', b"1e999999"):
                status, body = _post(app, path, junk, method)
                assert status == 400 and "error" in body, (junk, status, body)
    finally:
        app.request("DELETE", f"/api/sessions/{made['id']}")
    assert "Traceback" not in app.log()


def test_json_bodies_are_capped_without_reading_them(app: AppServer) -> None:
    # Declared too big: refused before the body is read.
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    conn.putrequest("POST", "/api/sessions")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(20 * 1024 * 1024))
    conn.endheaders()
    conn.send(b'{"agent": "bash", "label": "')  # and then nothing more
    start = time.monotonic()
    resp = conn.getresponse()
    assert resp.status == 413 and time.monotonic() - start < 5
    conn.close()
    # Not declared (chunked): read up to the cap, then refused.
    big = b'{"agent": "bash", "label": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    try:
        conn.request("POST", "/api/sessions", body=iter([big[i:i + 65536] for i in range(0, len(big), 65536)]),
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                     encode_chunked=True)
        assert conn.getresponse().status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused mid-body: the server stopped reading
    conn.close()
    # Just under the cap is still read.
    label = "y" * (MAX_JSON_BYTES - 100)
    status, body = _post(app, "/api/sessions", json.dumps({"agent": "nope", "label": label}).encode())
    assert status == 400 and "unknown agent" in body["error"]


def _upload(app: AppServer, filename: str, data: bytes = b"hello\n") -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    status, raw = raw_request(app.port, "POST", "/api/uploads",
                              [("Host", f"127.0.0.1:{app.port}"),
                               ("Content-Type", f"multipart/form-data; boundary={boundary}")], body)
    return status, json.loads(raw)


@pytest.mark.parametrize("name", ["漢" * 86 + ".txt", "字" * 300, "😀" * 90 + ".png", "é" * 200 + ".md",
                                  "a" * 400 + ".tar.gz"])
def test_long_upload_names_are_shortened_by_bytes(app: AppServer, name: str) -> None:
    status, body = _upload(app, name)
    assert status == 201, body
    saved = Path(body["path"])
    assert saved.parent == app.home / "uploads" and saved.read_bytes() == b"hello\n"
    assert len(saved.name.encode()) <= 255
    if "." in name and not name.startswith("😀"):
        assert saved.suffix == Path(name).suffix


def test_upload_names_fit_any_file_system() -> None:
    for name in ["漢" * 86, "😀a" * 200, "ü" * 500 + ".json", "x" * 10_000]:
        cut = safe_name(name)
        assert 0 < len(cut.encode()) <= NAME_MAX - 10  # room for unique_path's "-N"
        cut.encode().decode()  # never split inside a character
    assert safe_name("漢" * 100 + ".txt").endswith(".txt")


def test_a_file_system_refusal_is_a_400_not_a_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(uploads, "safe_name", lambda name: "n" * 300)  # past NAME_MAX (255 bytes)
    with pytest.raises(UploadError) as err:
        save_upload(tmp_path, "x", io.BytesIO(b"data"))
    assert err.value.status == 400 and "too long" in str(err.value)


def test_an_oversize_paste_says_what_the_limit_is(app: AppServer) -> None:
    _, made = app.request("POST", "/api/sessions", {"agent": "bash"})
    try:
        t = TermClient(app.ws_url, made["id"])
        t.send(b"x" * (80 * 1024 * 1024))
        error = t.wait_control("error", timeout=60)["message"]
        assert "64 MiB" in error and "80 MiB" in error and "still busy" not in error, error
        t.send("echo alive-$((3*3))\r")  # the session carries on
        t.read_until("alive-9", timeout=20)
        t.close()
    finally:
        app.request("DELETE", f"/api/sessions/{made['id']}")
