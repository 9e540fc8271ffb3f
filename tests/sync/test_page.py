"""The sync page in a real browser: it shows each project's last sync, updates by
itself when a new sync is recorded, and its "Sync now" button works and
explains failures in words.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from lib.sync.engine import sync_project
from tests.fakeworkspace import FakeWorkspace
from tests.gitrepos import (
    OWNER,
    commit_all,
    make_repo,
    records,
    wait_for,
    wait_record,
    write_credentials,
    write_files,
)

ROOT = Path(__file__).resolve().parents[2]
from tests.browser import CHROMIUM, CHROMIUM_ARGS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def page_server(home: Path, tmp_path: Path) -> Iterator[str]:
    """``streamlit run`` of a throwaway script that navigates to views/sync.py, HOME = the test home."""
    launcher = tmp_path / "launch_sync_page.py"
    launcher.write_text(
        "import streamlit as st\n"
        f"st.navigation([st.Page({str(ROOT / 'views' / 'sync.py')!r})]).run()\n"
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "STREAMLIT_"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", str(launcher),
            "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        ],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return proc.poll() is not None and (_ for _ in ()).throw(AssertionError("streamlit exited"))

    try:
        wait_for(healthy, 60, "streamlit to start")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)
        log.close()


def test_sync_page_updates_live_and_sync_now_works(home: Path, fw: FakeWorkspace, page_server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    token = fw.create_token(user=OWNER)
    write_credentials(home, fw, token)
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a\n"})
    first = commit_all(repo, home, "first commit shown")
    assert sync_project(home, repo).result == "ok"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(page_server)
            expect(page.get_by_text("Workspace sync").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text(first[:8]).first).to_be_visible(timeout=30_000)
            link = page.get_by_role("link", name=f"/Workspace/Users/{OWNER}/projects/demo")
            expect(link).to_have_attribute("href", f"{fw.url}/#workspace/Workspace/Users/{OWNER}/projects/demo")
            page.evaluate("window.__notReloaded = true")

            # A sync that happens elsewhere (the hook) shows up without a reload.
            write_files(repo, {"b.txt": b"b\n"})
            second = commit_all(repo, home, "second commit appears live")
            assert sync_project(home, repo).result == "ok"
            expect(page.get_by_text("second commit appears live").first).to_be_visible(timeout=20_000)
            expect(page.get_by_text(second[:8]).first).to_be_visible()
            assert page.evaluate("window.__notReloaded") is True

            # "Sync now" runs in the app; a refused token is explained in words.
            fw.revoke_token(token)
            write_files(repo, {"c.txt": b"c\n"})
            page.get_by_role("button", name="Sync now").click()
            wait_record(home, lambda r: r.get("trigger") == "manual", 60, "the Sync now record")
            refused = page.get_by_text("The workspace refused the token: set a new token in the sidebar")
            expect(refused.first).to_be_visible(timeout=20_000)
            assert page.evaluate("window.__notReloaded") is True
        finally:
            browser.close()
    manual = [r for r in records(home) if r.get("trigger") == "manual"]
    assert manual and manual[-1]["result"] == "error"


def test_log_watcher_counts_writes_not_reads(home: Path) -> None:
    """The page reads the logs on every rerun; only writes may trigger the next one."""
    from lib.sync.records import log_line, read_records, tail_text_log
    from lib.sync.watch import LogWatcher

    watcher = LogWatcher(home).start()
    try:
        log_line(home, "first line")
        version = wait_for(lambda: watcher.version, 10, "a change to be seen")
        time.sleep(0.3)  # let trailing events of that write arrive
        version = watcher.version
        for _ in range(5):
            tail_text_log(home)
            read_records(home)
        (home / "unrelated.txt").write_text("not a log")
        time.sleep(0.5)  # nothing may happen: there is no event to wait for
        assert watcher.version == version
        log_line(home, "second line")
        wait_for(lambda: watcher.version > version, 10, "the second write to be seen")
    finally:
        watcher.stop()


def test_sync_page_shows_the_retry_countdown_and_retry_now(home: Path, fw: FakeWorkspace, page_server: str) -> None:
    """A transient failure shows "waiting to retry, next attempt in N s", counting down; "Retry now" runs it."""
    from playwright.sync_api import expect, sync_playwright

    from tests.gitrepos import write_options

    write_credentials(home, fw, fw.create_token(user=OWNER))
    write_options(home, retry_first_s=120.0, retry_max_s=300.0)
    repo = make_repo(home)
    write_files(repo, {"a.txt": b"a\n"})
    commit_all(repo, home, "waits for the workspace")
    fw.set_fault("5xx")
    assert sync_project(home, repo).result == "error"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(page_server)
            waiting = page.get_by_text("Waiting to retry, next attempt in")
            expect(waiting.first).to_be_visible(timeout=60_000)
            first = waiting.first.inner_text()
            expect(waiting.first).not_to_have_text(first, timeout=10_000)  # it counts down by itself
            assert "1 attempt failed" in first and "server error" in first

            fw.clear_faults()
            page.get_by_role("button", name="Retry now").click()
            wait_record(home, lambda r: r.get("result") == "ok", 60, "the retried sync")
            expect(waiting).to_have_count(0, timeout=20_000)
        finally:
            browser.close()
    assert [r["trigger"] for r in records(home) if r.get("result") == "ok"] == ["manual"]
