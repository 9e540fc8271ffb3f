"""Attention hook benchmark: what one hook call costs the agent, next to baselines measured in the same run.

    .venv/bin/python bench/bench_attention.py [--quick]

1. the hook script (``~/.coda/hooks/attention.sh``, bash + /dev/tcp) reporting
   to the running app, with a small payload (a permission request) and a big
   one (a tool's 200 KB output after PostToolUse), and run the way Codex runs
   hooks (``$SHELL -lc``);
2. the same script when it cannot report: the app down (connection
   refused), the app stuck (accepts, never answers: the 0.5 s cap), outside
   a Coda terminal (no key): what a hook costs when something is wrong;
3. the same report made by the other small clients we could have used:
   ``python3 -S -I`` with a raw socket, ``python3 -S`` with urllib, a node
   script, ``sh`` + curl (when curl is installed);
4. baselines: starting ``/bin/true``, ``bash -c :``, ``python3 -S -I -c 0``,
   ``node -e 0``;
5. end to end: the hook runs in session B; time until the ``attention``
   push reaches a viewer of session A over its WebSocket.

Prints numbers; it is not a pass/fail test. Target (issue 11): a hook never
slows or breaks the agent, under a second even when the app is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.attention import install  # noqa: E402
from lib.terminal import keys  # noqa: E402
from tests.appserver import start_app  # noqa: E402
from tests.termclient import TermClient  # noqa: E402

QUICK = "--quick" in sys.argv
RUNS = 10 if QUICK else 40
SMALL = json.dumps({"session_id": "b2f1", "hook_event_name": "PermissionRequest", "tool_name": "Bash",
                    "tool_input": {"command": "touch marker", "description": "Create the marker file"}}).encode()
BIG = json.dumps({"session_id": "b2f1", "hook_event_name": "PostToolUse", "tool_name": "Bash",
                  "tool_response": {"stdout": "x" * 200_000}}).encode()

PY_SOCKET = r"""
import os, socket, sys, time
url, key = os.environ.get("CODA_APP_URL", ""), os.environ.get("CODA_SESSION_KEY", "")
if url.startswith("http://") and key:
    body = sys.stdin.buffer.read(262144)
    hostport, _, base = url[7:].partition("/")
    host, _, port = hostport.partition(":")
    head = (f"POST /{base + '/' if base else ''}_coda/local/attention?agent={sys.argv[1]}&event={sys.argv[2]}"
            f"&t={time.time()} HTTP/1.0\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
            f"X-Coda-Session-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n")
    try:
        with socket.create_connection((host, int(port or 80)), 0.5) as s:
            s.sendall(head.encode() + body)
            s.recv(64)
    except OSError:
        pass
"""
PY_URLLIB = r"""
import os, sys, time, urllib.request
url, key = os.environ.get("CODA_APP_URL", ""), os.environ.get("CODA_SESSION_KEY", "")
if url.startswith("http://") and key:
    req = urllib.request.Request(f"{url}/_coda/local/attention?agent={sys.argv[1]}&event={sys.argv[2]}",
                                 data=sys.stdin.buffer.read(262144), headers={"X-Coda-Session-Key": key})
    try:
        urllib.request.urlopen(req, timeout=0.5).read()
    except OSError:
        pass
"""
NODE_HTTP = r"""
const { request } = require("node:http");
const url = process.env.CODA_APP_URL || "", key = process.env.CODA_SESSION_KEY || "";
if (!url.startsWith("http://") || !key) process.exit(0);
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c)).on("end", () => {
  const body = Buffer.concat(chunks);
  const req = request(`${url}/_coda/local/attention?agent=${process.argv[2]}&event=${process.argv[3]}`,
    { method: "POST", timeout: 500, headers: { "x-coda-session-key": key, "content-length": body.length } },
    (res) => { res.resume(); res.on("end", () => process.exit(0)); });
  req.on("error", () => process.exit(0)).on("timeout", () => process.exit(0));
  req.end(body);
});
"""
SH_CURL = ('[ -n "$CODA_APP_URL" ] && [ -n "$CODA_SESSION_KEY" ] || exit 0; '
           'curl -s -m 0.5 -o /dev/null -H "X-Coda-Session-Key: $CODA_SESSION_KEY" --data-binary @- '
           '"$CODA_APP_URL/_coda/local/attention?agent=$1&event=$2" || true')


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def timed(argv: list[str], env: dict[str, str], stdin: bytes = b"", runs: int = RUNS) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        times.append(time.perf_counter() - start)
    return times


def row(name: str, times: list[float], note: str = "") -> None:
    print(f"  {name:<58} p50 {pct(times, .5) * 1e3:7.1f} ms   p95 {pct(times, .95) * 1e3:7.1f} ms"
          f"   max {max(times) * 1e3:7.1f} ms  {note}")


def stuck_port() -> tuple[socket.socket, int]:
    """A listener that accepts and never answers (an app frozen mid-request)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-attention-") as tmp:
        home = Path(tmp) / "home"
        server = start_app(home)
        try:
            server.wait_setup(60)
            run(server, home, Path(tmp))
        finally:
            server.stop()


def run(server, home: Path, tmp: Path) -> None:  # noqa: ANN001 - AppServer
    a = server.request("POST", "/api/sessions", {"agent": "bash"})[1]
    b = server.request("POST", "/api/sessions", {"agent": "bash"})[1]
    worker = TermClient(server.ws_url, b["id"])
    worker.send("sleep 3600\r")  # a program in front: the reports stand (as for an agent)
    raw = Path(f"/proc/{b['pid']}/environ").read_bytes().decode()
    session_env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "SHELL": shutil.which("bash") or "/bin/bash"}
    env = {**base, keys.KEY_ENV: session_env[keys.KEY_ENV], keys.APP_URL_ENV: session_env[keys.APP_URL_ENV]}
    script = str(install.script_path(home))
    python = sys.executable
    node = shutil.which("node")

    for name, text in (("py_socket.py", PY_SOCKET), ("py_urllib.py", PY_URLLIB), ("node_http.cjs", NODE_HTTP),
                       ("sh_curl.sh", SH_CURL)):
        (tmp / name).write_text(text)

    print(f"Hook cost per call, {RUNS} runs each (load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)\n")
    print("1. the hook script reporting to the app")
    row("bash attention.sh (permission request, 0.3 KB)", timed(["bash", script, "claude", "PermissionRequest"],
                                                               env, SMALL))
    row("bash attention.sh (PostToolUse with 200 KB of output)", timed(["bash", script, "claude", "PostToolUse"],
                                                                       env, BIG))
    row("as Codex runs it: $SHELL -lc 'bash \"$HOME/...\" codex Stop'",
        timed(["bash", "-lc", install.command("codex", "Stop")], env, SMALL))

    print("\n2. the hook script when it cannot report")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    row("the app down (connection refused)", timed(["bash", script, "claude", "Stop"],
                                                   {**env, keys.APP_URL_ENV: f"http://127.0.0.1:{closed}"}, SMALL))
    listener, port = stuck_port()
    row("the app stuck (accepts, never answers)", timed(["bash", script, "claude", "Stop"],
                                                        {**env, keys.APP_URL_ENV: f"http://127.0.0.1:{port}"}, SMALL,
                                                        runs=max(3, RUNS // 8)), "(capped at 0.5 s)")
    listener.close()
    row("outside a Coda terminal (no key, no app address)", timed(["bash", script, "claude", "Stop"], base, SMALL))

    print("\n3. the same report by other small clients")
    row(f"python3 -S -I, raw socket ({Path(python).name})", timed([python, "-S", "-I", str(tmp / "py_socket.py"),
                                                                   "claude", "Stop"], env, SMALL))
    row("python3 -S, urllib", timed([python, "-S", str(tmp / "py_urllib.py"), "claude", "Stop"], env, SMALL))
    if node:
        row("node, http", timed([node, str(tmp / "node_http.cjs"), "claude", "Stop"], env, SMALL))
    if shutil.which("curl"):
        row("sh + curl", timed(["sh", str(tmp / "sh_curl.sh"), "claude", "Stop"], env, SMALL))
    else:
        print("  sh + curl: curl is not installed here")

    print("\n4. baselines: starting a process")
    row("/bin/true", timed(["/bin/true"], base))
    row("bash -c :", timed(["bash", "-c", ":"], base))
    row("python3 -S -I -c 0", timed([python, "-S", "-I", "-c", "0"], base))
    if node:
        row("node -e 0", timed([node, "-e", "0"], base))

    print("\n5. end to end: hook in session B -> push to a viewer of session A")
    viewer = TermClient(server.ws_url, a["id"])
    viewer.wait_control("attention", 10)
    latencies = []
    for i in range(RUNS):
        event = ("PermissionRequest", "PostToolUse", "Stop", "UserPromptSubmit")[i % 4]
        viewer.controls.clear()
        start = time.perf_counter()
        subprocess.run(["bash", script, "claude", event], input=SMALL, env=env, timeout=10)
        while True:
            msg = viewer.wait_control("attention", 5)
            if next(s for s in msg["sessions"] if s["id"] == b["id"])["event"] == event:
                break
        latencies.append(time.perf_counter() - start)
    row("hook run + report + push (target: under 1 s)", latencies)
    viewer.close()
    worker.close()


if __name__ == "__main__":
    main()
