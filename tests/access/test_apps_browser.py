"""Owner and stranger in a real browser on a simulated Databricks App; no token leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.appsim import OWNER, start_on_apps, wait_owner
from tests.browser import browser, terminal_text, wait_for_terminal_text
from tests.fakeworkspace import FakeWorkspace


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    fw = FakeWorkspace(owner_email=OWNER, app_name="coda-app")
    fw.start()
    token = fw.create_token(user=OWNER)
    server = start_on_apps(tmp_path_factory.mktemp("apps-browser") / "home", fw, DATABRICKS_TOKEN=token + "\n")
    wait_owner(server, OWNER)
    yield server, fw, token
    server.stop()
    fw.stop()


def test_owner_in_browser_under_csp_and_no_token_anywhere(deployed, tmp_path):
    server, fw, token = deployed
    with browser() as b:
        ctx = b.new_context(extra_http_headers={"X-Forwarded-Email": OWNER.lower()}, viewport={"width": 1300, "height": 900})
        page = ctx.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on(
            "console",
            lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(server.url)
        page.get_by_role("button", name="New shell").click()
        page.wait_for_function("() => !!window.__codaTerm", timeout=20000)
        wait_for_terminal_text(page, "projects", 20000)
        page.keyboard.type("env | sort; echo env-$((1+1))-done\n")
        wait_for_terminal_text(page, "env-2-done", 15000)
        screen = terminal_text(page)
        assert "HOME=" in screen and token not in screen
        assert f"Owner: {OWNER}" in page.inner_text("body")
        pages_html = [page.content()]
        for path in ("/launch", "/sync", "/setup"):
            page.goto(server.url + path)
            page.wait_for_timeout(2500)
            pages_html.append(page.content() + page.inner_text("body"))
        page.screenshot(path=str(tmp_path / "owner.png"))
        assert not problems, problems

    _, sessions = server.request("GET", "/api/sessions", headers={"X-Forwarded-Email": OWNER})
    assert sessions
    for s in sessions:
        environ = Path(f"/proc/{s['pid']}/environ").read_bytes()
        assert token.encode() not in environ
        assert b"DATABRICKS_" not in environ
    for html in pages_html:
        assert token not in html
    assert token not in server.log()
    _, health = server.request("GET", "/health")
    assert token not in str(health)
    # files that do hold the token are private
    for path in server.home.rglob("*"):
        if path.is_file() and not path.is_symlink() and ".local" not in path.parts:
            try:
                holds = token.encode() in path.read_bytes()
            except OSError:
                continue
            if holds:
                assert path.stat().st_mode & 0o077 == 0, path


def test_stranger_in_browser_sees_only_403(deployed):
    server, fw, token = deployed
    with browser() as b:
        ctx = b.new_context(extra_http_headers={"X-Forwarded-Email": "mallory@example.com"})
        page = ctx.new_page()
        response = page.goto(server.url)
        assert response.status == 403
        body = page.inner_text("body")
        assert f"This app belongs to {OWNER}. You are signed in as mallory@example.com." in body
        assert "New shell" not in body and "Sessions" not in body
