"""Load and measurement helpers for ``bench_terminal.py``: noisy neighbours, CPU, memory.

The noisy readers run in their own processes (spawned, not forked: the bench
holds WebSocket client threads), so the bench process measuring a quiet
session's echo never competes with them for its own GIL: only the machine
and the server under test are shared, as with real browser tabs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOISE_COMMAND = "stty -echo; exec yes"  # as fast as a program can write, forever (until DELETE)


# --- noisy neighbours -------------------------------------------------------------
def background() -> None:
    """In a raw producer's child: the priority the app gives a session nobody types in (lib.terminal.pump)."""
    from lib.terminal.pump import SESSION_NICE, lower_priority, set_group_nice

    lower_priority()
    set_group_nice(os.getpid(), SESSION_NICE)


def _raw_reader(nice: bool, counter: Any, ready: Any, stop: Any) -> None:
    """A program streaming into a PTY we read directly: the same load, outside the app."""
    from ptyprocess import PtyProcess

    os.setsid()  # its own scheduling group (autogroup), like a reader on another machine
    proc = PtyProcess.spawn(["yes"], preexec_fn=background if nice else None)
    ready.set()
    try:
        while not stop.is_set():
            try:
                counter.value += len(os.read(proc.fd, 65536))
            except OSError:
                break
    finally:
        proc.terminate(force=True)


def _ws_reader(ws_url: str, session_id: str, command: str, counter: Any, ready: Any, stop: Any) -> None:
    """One viewer of a streaming session, reading as fast as it can (a browser tab)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.termclient import TermClient

    os.setsid()  # its own scheduling group (autogroup), like a browser on another machine
    t = TermClient(ws_url, session_id)
    t.send(command + "\r")
    ready.set()
    try:
        while not stop.is_set():
            try:
                msg = t.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - closed: the session was deleted
                break
            if isinstance(msg, bytes):
                counter.value += len(msg)
    finally:
        try:
            t.close()
        except Exception:  # noqa: BLE001 - already closed
            pass


@dataclass
class Noise:
    """N streaming producers, each with its own reading process; bytes counted per reader."""

    procs: list[Any] = field(default_factory=list)
    counters: list[Any] = field(default_factory=list)
    stop: Any = None
    session_ids: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(c.value for c in self.counters)

    def end(self, app: Any = None) -> None:
        self.stop.set()
        for sid in self.session_ids:
            app.request("DELETE", f"/api/sessions/{sid}")
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


def start_noise(count: int, app: Any = None, command: str = NOISE_COMMAND, nice: bool = False) -> Noise:
    """``count`` streams: raw PTYs when ``app`` is None, else app sessions with a WebSocket reader each.

    ``nice``: the raw producers run at the priority the app gives sessions nobody types in.
    """
    ctx = mp.get_context("spawn")
    noise = Noise(stop=ctx.Event())
    readies = []
    for _ in range(count):
        counter, ready = ctx.Value("q", 0, lock=False), ctx.Event()
        if app is None:
            proc = ctx.Process(target=_raw_reader, args=(nice, counter, ready, noise.stop), daemon=True)
        else:
            _, s = app.request("POST", "/api/sessions", {"agent": "bash"})
            noise.session_ids.append(s["id"])
            args = (app.ws_url, s["id"], command, counter, ready, noise.stop)
            proc = ctx.Process(target=_ws_reader, args=args, daemon=True)
        proc.start()
        noise.procs.append(proc)
        noise.counters.append(counter)
        readies.append(ready)
    for ready in readies:
        ready.wait(30)
    time.sleep(1.0)  # let the streams reach their steady state
    return noise


# --- CPU ----------------------------------------------------------------------------
def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU, summed over the process's threads (schedstat: finer than clock ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # a thread that ended meanwhile
    return total


def cpu_percents(pids: list[int], seconds: float) -> list[float]:
    """% of one core each process used over the same ``seconds``."""
    c0, t0 = [cpu_ns(p) for p in pids], time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return [100.0 * (cpu_ns(p) - c) / 1e9 / wall for p, c in zip(pids, c0, strict=True)]


def wakeups_per_s(pid: int, seconds: float) -> float:
    """Context switches per second of the whole process: how often something wakes it."""

    def switches() -> int:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                for line in (task / "status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    s0 = switches()
    time.sleep(seconds)
    return (switches() - s0) / seconds


# --- memory -------------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


IMPORT_STEPS = [
    ("python itself", ""),
    ("streamlit", "import streamlit"),
    ("its server (starlette, uvicorn, websockets)", "import streamlit.web.server.starlette.starlette_app"),
    ("databricks-sdk", "import databricks.sdk"),
    ("the app's lib/ (runtime, routes)", "import lib.runtime, lib.terminal.routes, lib.lifespan"),
    ("app.py (st.App built)", "import app"),
]

_BREAKDOWN = """
import sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
for label, stmt in STEPS:
    exec(stmt)
    print(rss(), label, sep='\\t', flush=True)
"""


def import_breakdown(root: Path, env: dict[str, str]) -> list[tuple[str, int]]:
    """RSS added by each import step, in the order the server loads them (a fresh process)."""
    code = f"STEPS = {IMPORT_STEPS!r}\n" + _BREAKDOWN
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    rows, last = [], 0
    for line in out.splitlines():
        rss, label = line.split("\t", 1)
        rows.append((label, int(rss) - last))
        last = int(rss)
    return rows
