"""What the app and the detached sync hook share: the files in HOME (``lib.homefiles``),
the record format (``SyncRecord``), environment scrubbing (``lib.environment``), and
the hook's promise to import nothing slow before it detaches.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lib import homefiles, timefmt
from lib.agents import config as agent_config
from lib.environment import DATABRICKS, GIT, scrubbed
from lib.settings import load_settings
from lib.sync.credentials import read_credentials
from lib.sync.records import SyncRecord, SyncResult, append_record, read_records
from lib.workspace.tokens import env_token, saved_token

ROOT = Path(__file__).resolve().parents[2]


def test_databrickscfg_written_by_the_app_is_read_alike_by_app_and_hook(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "DATABRICKS_HOST": "adb-1.example.com/"})
    agent_config.write_databrickscfg(tmp_path, settings, "dapi-abc")
    profile = homefiles.read_databrickscfg(tmp_path)
    assert profile.token == "dapi-abc"
    assert saved_token(tmp_path, "https://adb-1.example.com") == "dapi-abc"  # the app, after a restart
    homefiles.write_identity(tmp_path, owner=" me@example.com ", display_name="Me", source="test", resolved_at=1.0)
    creds = read_credentials(tmp_path)  # the hook
    assert (creds.host, creds.token, creds.owner) == ("https://adb-1.example.com", "dapi-abc", "me@example.com")


def test_databrickscfg_readers_clean_and_tolerate(tmp_path: Path) -> None:
    assert homefiles.read_databrickscfg(tmp_path) == homefiles.DatabricksProfile()  # missing
    homefiles.databrickscfg_path(tmp_path).write_text("[DEFAULT]\nhost = https://h\ntoken =  dapi-x \n\n")
    assert homefiles.read_databrickscfg(tmp_path).token == "dapi-x"
    assert saved_token(tmp_path, "https://other") is None  # a token for another workspace is not ours
    homefiles.databrickscfg_path(tmp_path).write_bytes(b"\xff\xfe not ini")
    assert homefiles.read_databrickscfg(tmp_path) == homefiles.DatabricksProfile()
    assert homefiles.read_owner(tmp_path) is None
    homefiles.identity_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    homefiles.identity_path(tmp_path).write_text("[1, 2]")
    assert homefiles.read_owner(tmp_path) is None


def test_one_token_cleaning() -> None:
    assert homefiles.clean_token(" dapi\n1\r\n") == "dapi1"
    assert env_token({"DATABRICKS_TOKEN": "  dapi-2\n"}) == "dapi-2"
    assert env_token({"DATABRICKS_TOKEN": " \n"}) is None and env_token({}) is None
    fingerprint = homefiles.token_fingerprint("dapi-2")
    assert fingerprint == homefiles.token_fingerprint("dapi-2") != homefiles.token_fingerprint("dapi-3")
    assert "dapi" not in fingerprint and len(fingerprint) == 16


def test_records_round_trip_as_plain_json(tmp_path: Path) -> None:
    record = SyncRecord(time="2024-05-01T12:00:00+00:00", project="demo", repo="/r", result=SyncResult.ERROR,
                        error="no", error_kind="token_rejected", token_hash="abc", uploaded=3,
                        failed_files=[{"path": "a", "error": "x"}])
    append_record(tmp_path, record)
    stored = json.loads(homefiles.sync_records_path(tmp_path).read_text())
    assert stored["result"] == "error" and type(stored["result"]) is str
    (back,) = read_records(tmp_path)
    assert back == record and back.result is SyncResult.ERROR


def test_from_dict_reads_older_and_newer_lines() -> None:
    old = SyncRecord.from_dict({"time": "t", "project": "p", "repo": "/r", "result": "ok", "uploaded": "4",
                                "someday": "a field this version does not know", "bytes": None})
    assert (old.result, old.uploaded, old.bytes, old.error_kind, old.token_hash) == (SyncResult.OK, 4, 0, None, None)
    for junk in ({"time": "t", "result": "maybe"}, {"result": "ok"}, {"time": "t"}):
        with pytest.raises(ValueError):
            SyncRecord.from_dict(junk)


def test_unreadable_lines_are_skipped(tmp_path: Path) -> None:
    path = homefiles.sync_records_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"time": "t", "repo": "/r"}\nnot json\n[1]\n{"time": "t", "repo": "/r", "result": "skipped"}\n')
    assert [r.result for r in read_records(tmp_path)] == [SyncResult.SKIPPED]


def test_scrubbed_environment() -> None:
    env = {"GIT_DIR": "x", "GIT_CONFIG_GLOBAL": "y", "DATABRICKS_TOKEN": "t", "PATH": "/bin", "CI": "1",
           "MY_GIT_THING": "kept"}
    assert scrubbed(env, GIT) == {"DATABRICKS_TOKEN": "t", "PATH": "/bin", "CI": "1", "MY_GIT_THING": "kept"}
    assert scrubbed(env, GIT + DATABRICKS, {"CI"}) == {"PATH": "/bin", "MY_GIT_THING": "kept"}
    assert env["GIT_DIR"] == "x"  # a copy, never in place


def test_ages() -> None:
    assert [timefmt.age(s) for s in (-5, 0, 59, 60, 3599, 3600, 86399, 86400 * 3)] == [
        "0s", "0s", "59s", "1m", "59m", "1h", "23h", "3d"]
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert timefmt.when_and_ago((now - timedelta(minutes=5)).isoformat(), now).endswith("(5m ago)")
    assert timefmt.when_and_ago(None) == "never" and timefmt.when_and_ago("yesterday") == "yesterday"


def test_the_hook_imports_nothing_slow_before_it_detaches() -> None:
    """``python -m lib.sync`` must reach the fork without databricks-sdk or streamlit."""
    code = (
        "import sys, lib.sync.__main__ as m\n"
        "from lib.sync.records import log_line\n"
        "heavy = sorted(n for n in sys.modules if n.split('.')[0] in ('databricks', 'streamlit', 'requests'))\n"
        "print(heavy)\n"
    )
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert out.strip() == "[]", out
    assert time.monotonic() - started < 10
