"""Terminal core benchmark: numbers next to a baseline measured in the same run.

    python bench/bench_terminal.py

- echo round trip over the WebSocket vs. echo read straight from a PTY;
- throughput of ~50 MB of text to a WebSocket client vs. reading the PTY directly;
- server CPU with 5 idle attached sessions over 20 s;
- server memory per session with a full scrollback.
Prints numbers; it is not a pass/fail test.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ptyprocess import PtyProcess  # noqa: E402

from tests.appserver import start_app  # noqa: E402
from tests.termclient import TermClient  # noqa: E402

ECHO_SAMPLES = 400
MB = 1024 * 1024


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def raw_echo() -> list[float]:
    proc = PtyProcess.spawn(["cat"])
    try:
        times = []
        for _ in range(ECHO_SAMPLES):
            t0 = time.perf_counter()
            os.write(proc.fd, b"a")
            got = b""
            while b"a" not in got:
                got += os.read(proc.fd, 1024)
            times.append(time.perf_counter() - t0)
        return times
    finally:
        proc.terminate(force=True)


def quiet_session(app, setup: str) -> tuple[dict, TermClient]:
    """A new shell that ran ``setup`` and has nothing left to say."""
    _, s = app.request("POST", "/api/sessions", {"agent": "bash"})
    t = TermClient(app.ws_url, s["id"])
    t.send(setup)
    time.sleep(0.5)
    while True:
        try:
            t.ws.recv(timeout=0.3)
        except TimeoutError:
            return s, t


def ws_echo(app) -> list[float]:
    s, t = quiet_session(app, "exec cat\r")
    times = []
    for _ in range(ECHO_SAMPLES):
        t0 = time.perf_counter()
        t.ws.send(b"a")
        got = b""
        while b"a" not in got:
            got += t.ws.recv(timeout=5)
        times.append(time.perf_counter() - t0)
    t.close()
    app.request("DELETE", f"/api/sessions/{s['id']}")
    return times


def make_text_file(size: int) -> Path:
    path = Path(tempfile.mkstemp(suffix=".txt")[1])
    line = b"".join(b"%06d the quick brown fox jumps over the lazy dog 0123456789 \xc3\xa9\xe4\xb8\xad\n" % i for i in range(1000))
    with open(path, "wb") as f:
        written = 0
        while written < size:
            f.write(line)
            written += len(line)
    return path


def raw_throughput(path: Path) -> tuple[int, float]:
    proc = PtyProcess.spawn(["cat", str(path)])
    total = 0
    t0 = time.perf_counter()
    try:
        while True:
            try:
                chunk = os.read(proc.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            total += len(chunk)
    finally:
        elapsed = time.perf_counter() - t0
        proc.wait()
    return total, elapsed


def ws_throughput(app, path: Path) -> tuple[int, float]:
    s, t = quiet_session(app, "stty -echo; PS1=''\r")
    marker = b"END-OF-BENCH"
    t.send(f"cat {path}; echo END-OF-BEN''CH\r")
    total = 0
    tail = b""
    t0 = time.perf_counter()
    while marker not in tail:
        msg = t.ws.recv(timeout=30)
        if isinstance(msg, bytes):
            total += len(msg)
            tail = (tail + msg)[-64:]
    elapsed = time.perf_counter() - t0
    t.close()
    app.request("DELETE", f"/api/sessions/{s['id']}")
    return total, elapsed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_percent(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def idle_cpu(app, seconds: float = 20.0) -> float:
    clients = []
    for _ in range(5):
        _, s = app.request("POST", "/api/sessions", {"agent": "bash"})
        clients.append((s, TermClient(app.ws_url, s["id"])))
    time.sleep(2)
    busy = cpu_percent(app.proc.pid, seconds)
    for s, t in clients:
        t.close()
        app.request("DELETE", f"/api/sessions/{s['id']}")
    return busy


def memory_per_session(app, count: int = 5) -> tuple[float, int]:
    time.sleep(1)
    before = rss_bytes(app.proc.pid)
    ids = []
    for _ in range(count):
        _, s = app.request("POST", "/api/sessions", {"agent": "bash"})
        ids.append(s["id"])
        t = TermClient(app.ws_url, s["id"])
        # fill the scrollback past its cap
        t.send("head -c 6000000 /dev/zero | tr '\\0' 'x'; echo; echo FILLED-$((1))\r")
        t.read_until(r"FILLED-1", timeout=60)
        t.close()
    time.sleep(1)
    after = rss_bytes(app.proc.pid)
    for sid in ids:
        app.request("DELETE", f"/api/sessions/{sid}")
    return (after - before) / count, app.request("GET", "/health")[0]


def main() -> None:
    home = Path(tempfile.mkdtemp()) / "home"
    app = start_app(home, {"CODA_MAX_SESSIONS": "10"})
    try:
        raw = raw_echo()
        ws = ws_echo(app)
        print(f"echo round trip  raw PTY  p50 {pct(raw, .5) * 1e3:.3f} ms  p95 {pct(raw, .95) * 1e3:.3f} ms")
        print(f"echo round trip  WebSocket p50 {pct(ws, .5) * 1e3:.3f} ms  p95 {pct(ws, .95) * 1e3:.3f} ms")
        print(f"echo overhead    p50 +{(pct(ws, .5) - pct(raw, .5)) * 1e3:.3f} ms (target < 0.4 ms)")

        path = make_text_file(50 * MB)
        try:
            rb, rt = raw_throughput(path)
            wb, wt = ws_throughput(app, path)
        finally:
            path.unlink()
        raw_rate, ws_rate = rb / rt / MB, wb / wt / MB
        print(f"throughput       raw PTY {raw_rate:.1f} MiB/s ({rb / MB:.1f} MiB in {rt:.2f} s)")
        print(f"throughput       WebSocket {ws_rate:.1f} MiB/s ({wb / MB:.1f} MiB in {wt:.2f} s)")
        print(f"throughput ratio {100 * ws_rate / raw_rate:.0f} % of raw (target >= 60 %)")

        baseline = cpu_percent(app.proc.pid, 20.0)
        cpu = idle_cpu(app)
        print(f"idle CPU         {baseline:.3f} % of a core: the server with no session (Streamlit's own pollers)")
        print(f"idle CPU         {cpu:.3f} % of a core with 5 idle attached sessions over 20 s"
              f" (+{cpu - baseline:.3f} % for the sessions; target < 0.3 %)")

        per, _ = memory_per_session(app)
        cap = 4 * MB
        print(f"memory/session   {per / MB:.2f} MiB with a full scrollback (cap {cap / MB:.0f} MiB; target < cap + 5 MiB)")
    finally:
        app.stop()


if __name__ == "__main__":
    main()
