"""Image and file paste and drop (issue 9, point 5), in chromium.

A pasted image or dropped files go to ``POST /api/uploads`` (``~/uploads``)
and their shell-quoted paths are typed at the cursor, as a paste (bracketed
when the program asked, which is how agents recognise an image path). The
recorder in the session shows what was typed.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from tests.appserver import start_app
from tests.browser import browser, wait_for_terminal_text
from tests.fidelity import recorder_command, wait_file, wait_live

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5f6f2d40000000049454e44ae426082"
)

# Build files in the page and hand them over as a paste or a drop, as the browser does.
DISPATCH = """async ({kind, files}) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = f.b64 !== null ? Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0)) : new Uint8Array(f.size);
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const t = window.__codaTerm;
  if (kind === "paste") {
    t.textarea.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true,
                                                         composed: true }));
  } else {
    const init = { dataTransfer: dt, bubbles: true, cancelable: true, composed: true };
    t.element.dispatchEvent(new DragEvent("dragover", init));
    t.element.dispatchEvent(new DragEvent("drop", init));
  }
}"""

NOTICES = """() => { window.__notices = [];
  const host = [...document.querySelectorAll('*')].map((e) => e.shadowRoot).filter(Boolean)
    .map((r) => r.querySelector('[data-testid=terminal-notice]')).find(Boolean);
  new MutationObserver(() => { if (!host.hidden) window.__notices.push(host.textContent); })
    .observe(host, { childList: true, characterData: true, subtree: true, attributes: true }); }"""


def _file(name: str, data: bytes | None = None, size: int = 0, kind: str = "application/octet-stream") -> dict:
    import base64

    return {"name": name, "type": kind, "b64": None if data is None else base64.b64encode(data).decode(),
            "size": size}


def _open(b, app, tmp_path: Path):
    status, body = app.request("POST", "/api/sessions", {"agent": "bash"})
    assert status == 201, body
    page = b.new_context(viewport={"width": 1200, "height": 800}).new_page()
    page.goto(f"{app.url}/?session={body['id']}")
    wait_live(page)
    out = tmp_path / f"typed-{body['id']}.bin"
    page.keyboard.type(recorder_command(out, bracketed=True) + "\n")
    wait_for_terminal_text(page, "REC-READY")
    page.evaluate(NOTICES)
    return page, out


def _typed_paths(data: bytes) -> list[str]:
    assert data.startswith(b"\x1b[200~") and data.endswith(b"\x1b[201~"), data
    return shlex.split(data[6:-6].decode())


def test_pasting_an_image_uploads_it_and_types_its_path(clean_app, tmp_path):
    with browser() as b:
        page, out = _open(b, clean_app, tmp_path)
        page.evaluate(DISPATCH, {"kind": "paste", "files": [_file("image.png", PNG, kind="image/png")]})
        [path] = _typed_paths(wait_file(out, lambda d: d.endswith(b"\x1b[201~")))
        assert Path(path).parent == clean_app.home / "uploads"
        assert Path(path).read_bytes() == PNG
        notices = page.evaluate("() => window.__notices")
        assert any("Uploading image.png" in n for n in notices), notices


def test_dropping_files_types_every_path_quoted(clean_app, tmp_path):
    names = ["notes one.txt", "スクリーンショット 😀.png", "it's.log"]
    with browser() as b:
        page, out = _open(b, clean_app, tmp_path)
        files = [_file(n, f"content {i}".encode()) for i, n in enumerate(names)]
        page.evaluate(DISPATCH, {"kind": "drop", "files": files})
        paths = _typed_paths(wait_file(out, lambda d: d.endswith(b"\x1b[201~")))
        assert len(paths) == 3
        for i, path in enumerate(paths):
            assert Path(path).read_bytes() == f"content {i}".encode()
        assert "スクリーンショット" in paths[1]


def test_long_multibyte_names_upload(clean_app, tmp_path):
    name = "長" * 100 + "😀" * 20 + ".png"  # 380 bytes of UTF-8: longer than a file system allows
    with browser() as b:
        page, out = _open(b, clean_app, tmp_path)
        page.evaluate(DISPATCH, {"kind": "paste", "files": [_file(name, PNG, kind="image/png")]})
        [path] = _typed_paths(wait_file(out, lambda d: d.endswith(b"\x1b[201~")))
        assert Path(path).read_bytes() == PNG and path.endswith(".png") and "長長長" in path


def test_large_upload_shows_progress(clean_app, tmp_path):
    with browser() as b:
        page, out = _open(b, clean_app, tmp_path)
        page.evaluate(DISPATCH, {"kind": "drop", "files": [_file("big.bin", None, size=40 * 1024 * 1024)]})
        [path] = _typed_paths(wait_file(out, lambda d: d.endswith(b"\x1b[201~"), 60))
        assert Path(path).stat().st_size == 40 * 1024 * 1024
        notices = page.evaluate("() => window.__notices")
        assert any("Uploading big.bin" in n and "% of 40 MiB" in n for n in notices), notices[:5]


@pytest.fixture(scope="module")
def small_cap_app(tmp_path_factory):
    server = start_app(tmp_path_factory.mktemp("cap") / "home", {"CODA_MAX_UPLOAD_BYTES": "4096"})
    yield server
    server.stop()


def test_over_the_cap_is_refused_with_a_clear_message(small_cap_app, tmp_path):
    with browser() as b:
        page, out = _open(b, small_cap_app, tmp_path)
        page.evaluate(DISPATCH, {"kind": "drop", "files": [_file("huge.iso", b"x" * 10000), _file("ok.txt", b"fine")]})
        [path] = _typed_paths(wait_file(out, lambda d: d.endswith(b"\x1b[201~")))
        assert Path(path).name == "ok.txt"  # the small one still goes
        notices = page.evaluate("() => window.__notices")
        assert any("huge.iso is 10 KiB: larger than the 4 KiB upload limit" in n for n in notices), notices
        assert not (small_cap_app.home / "uploads" / "huge.iso").exists()
        # The server refuses too, whatever the page checked.
        import httpx

        r = httpx.post(small_cap_app.url + "/api/uploads", files={"file": ("huge.iso", b"x" * 10000)})
        assert r.status_code == 413 and "upload limit" in r.json()["error"]
    time.sleep(0.1)
