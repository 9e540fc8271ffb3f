"""Memory admission (lib.capacity): cgroup v2/v1 and /proc/meminfo readings, the refusal, end to end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lib import capacity
from lib.capacity import Memory, MiB, NotEnoughMemory, admit, read_memory
from lib.settings import SettingsError, load_settings, validate
from tests.appserver import start_app

GiB = 1024 * MiB


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A fake /proc: a 64 GiB host with 60 GiB available, this process in cgroup v2 ``/app.slice``."""
    root = tmp_path / "proc"
    write(root / "meminfo", f"MemTotal: {64 * GiB // 1024} kB\nMemFree: 1000 kB\nMemAvailable: {60 * GiB // 1024} kB\n")
    write(root / "self" / "cgroup", "0::/app.slice\n")
    return root


def test_cgroup_v2_limit_wins_over_the_hosts_free_memory(tmp_path: Path, proc: Path) -> None:
    cg = tmp_path / "cgroup" / "app.slice"
    write(cg / "memory.max", f"{6 * GiB}\n")
    write(cg / "memory.current", f"{5 * GiB}\n")
    write(cg / "memory.stat", f"anon {4 * GiB}\nfile {GiB}\ninactive_file {512 * MiB}\nactive_file 1\n")
    memory = read_memory(tmp_path / "cgroup", proc)
    assert memory == Memory(limit=6 * GiB, used=5 * GiB - 512 * MiB, source="cgroup v2")
    assert memory.available == GiB + 512 * MiB  # droppable page cache is not "used"


def test_cgroup_v2_at_the_root_and_without_a_limit(tmp_path: Path, proc: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "memory.max", "max\n")  # no limit: the host's memory is the limit
    write(root / "memory.current", f"{GiB}\n")
    assert read_memory(root, proc) == Memory(limit=64 * GiB, used=4 * GiB, source="/proc/meminfo")
    write(root / "memory.max", f"{2 * GiB}\n")  # /proc/self/cgroup's folder is absent: the root serves
    assert read_memory(root, proc) == Memory(limit=2 * GiB, used=GiB, source="cgroup v2")


def test_cgroup_v1_and_its_unlimited_marker(tmp_path: Path, proc: Path) -> None:
    v1 = tmp_path / "cgroup" / "memory"
    write(v1 / "memory.limit_in_bytes", "9223372036854771712\n")
    write(v1 / "memory.usage_in_bytes", f"{3 * GiB}\n")
    write(v1 / "memory.stat", f"cache {GiB}\ntotal_inactive_file {GiB}\n")
    assert read_memory(tmp_path / "cgroup", proc).source == "/proc/meminfo"
    write(v1 / "memory.limit_in_bytes", f"{4 * GiB}\n")
    assert read_memory(tmp_path / "cgroup", proc) == Memory(limit=4 * GiB, used=2 * GiB, source="cgroup v1")


def test_nothing_readable_means_no_check(tmp_path: Path) -> None:
    assert read_memory(tmp_path / "none", tmp_path / "none") is None


def test_refusal_names_what_uses_memory_and_what_to_do() -> None:
    low = Memory(limit=6 * GiB, used=6 * GiB - 100 * MiB, source="cgroup v2")
    me = os.getpid()  # a session leader whose session has a measurable RSS: this test process's own session
    with pytest.raises(NotEnoughMemory) as err:
        admit(512, [("Claude · demo · 1", os.getsid(me))], memory=low)
    message = str(err.value)
    assert err.value.status == 507
    assert "100 MiB of 6.0 GiB is free (cgroup v2)" in message
    assert "at least 512 MiB" in message
    assert "“Claude · demo · 1”" in message and "this app's server" in message
    assert "Close a session" in message
    assert admit(64, [], memory=low) is low  # above a lower floor: admitted
    assert admit(0, [], memory=Memory(limit=GiB, used=GiB, source="x")) is not None  # 0 turns it off


def test_session_rss_counts_every_process_of_the_session() -> None:
    sid = os.getsid(os.getpid())
    assert capacity.session_rss(sid) >= capacity.rss_bytes(os.getpid()) > 0


def test_floor_setting_is_validated() -> None:
    assert validate("memory_floor_mb", "0") == 0
    with pytest.raises(SettingsError, match="between"):
        validate("memory_floor_mb", "-1")
    env = {"HOME": "/nonexistent-home", "CODA_MEMORY_FLOOR_MB": "2048"}
    assert load_settings(env).memory_floor_mb == 2048
    assert load_settings({"HOME": "/nonexistent-home", "CODA_MEMORY_FLOOR_MB": "lots"}).memory_floor_mb == 512


def test_the_app_refuses_a_session_below_the_floor(tmp_path: Path) -> None:
    """An absurdly high floor: every POST /api/sessions is refused with the reason; nothing starts."""
    app = start_app(tmp_path / "home", {"CODA_MEMORY_FLOOR_MB": str(16 * 1024 * 1024)})
    try:
        status, body = app.request("POST", "/api/sessions", {"agent": "bash"})
        assert status == 507, body
        assert "not enough memory to start another session" in body["error"]
        assert "Close a session" in body["error"]
        assert app.request("GET", "/api/sessions")[1] == []
    finally:
        app.stop()
