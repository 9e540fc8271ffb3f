"""Reconnect benchmark: time to a restored screen with a full 4 MiB scrollback (issue 9).

    .venv/bin/python bench/bench_reconnect.py [--quick]

The real app, a session whose scrollback ring is full (4 MiB), and the real
component in chromium. For each kind of history it times, from the new
WebSocket to the first frame painted after the replay was parsed:

- resume: a network drop; the page asks for what it missed (nothing here);
- replay: a page without the screen (reload, session switch): the planned
  replay (``Scrollback.replay``: starts where the terminal's 10,000 lines
  begin, with the state before as a prefix);
- baseline: the same page replaying the whole 4 MiB ring, as before issue 9
  (measured in the same run; ``?replay=all``);
- reload: a whole page reload (Streamlit's page, the component, the replay),
  for scale.

Histories: "shell" (colourful command output, ~90-byte lines) and "tui" (an
inline TUI redrawing in place all along: no late start is possible, so the
planned replay is the whole ring too). Prints p50/p95 per case and the bytes
replayed; the target is p50 < 300 ms for "replay" on the shell history.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.appserver import start_app  # noqa: E402
from tests.browser import browser  # noqa: E402
from tests.fidelity import wait_live  # noqa: E402
from tests.termclient import TermClient  # noqa: E402

MB = 1024 * 1024
RING = 4 * MB

# Programs that fill the ring, then print a marker.
HISTORIES = {
    "shell": (
        "python3 -c \"import sys\n"
        "for i in range(75000):\n"
        "    sys.stdout.write(f'\\\\x1b[01;34mdir{i}\\\\x1b[0m  -rw-r--r-- 1 coda coda {i*37%99999:6d} Dec  1 "
        "22:33 \\\\x1b[32mfile-{i}.txt\\\\x1b[0m build step {i} ok\\\\n')\n"
        "print('history-'+'done')\""
    ),
    "tui": (
        "python3 -c \"import sys\n"
        "sys.stdout.write('\\\\n' * 8)\n"
        "for i in range(60000):\n"
        "    sys.stdout.write('\\\\x1b[6A\\\\x1b[J' + ''.join(f'\\\\x1b[36m spinner {i} \\\\x1b[0m row {j}\\\\n' "
        "for j in range(6)))\n"
        "print('history-'+'done')\""
    ),
}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def fill(app, kind: str) -> str:
    _, s = app.request("POST", "/api/sessions", {"agent": "bash"})
    t = TermClient(app.ws_url, s["id"])
    t.send(HISTORIES[kind] + "\r")
    t.read_until(r"history-done", timeout=180)
    t.close()
    return s["id"]


def measure(page, *, full: bool, whole: bool = False) -> dict:
    before = page.evaluate("() => window.__codaTermViewer.timings.length")
    page.evaluate("([full, whole]) => window.__codaTermViewer.drop(full, whole)", [full, whole])
    page.wait_for_function(f"() => window.__codaTermViewer.timings.length > {before}", timeout=60000)
    wait_live(page)
    t = page.evaluate("() => window.__codaTermViewer.timings.at(-1)")
    return {"ms": t["painted"] - t["created"], "kind": t["kind"], "bytes": t["bytes"],
            "parse_ms": t["parsed"] - t.get("received", t["replay"]), "server_ms": t["replay"] - t["opened"]}


def run(samples: int) -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other processes slow every number)")
    home = Path(tempfile.mkdtemp(prefix="bench-reconnect-")) / "home"
    app = start_app(home, {"CODA_SCROLLBACK_BYTES": str(RING)})
    try:
        with browser() as b:
            for kind in HISTORIES:
                sid = fill(app, kind)
                page = b.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"{app.url}/?session={sid}")
                wait_live(page, 60000)
                rows = {}
                for case, kwargs in (("resume", {"full": False}), ("replay", {"full": True}),
                                     ("baseline", {"full": True, "whole": True})):
                    results = [measure(page, **kwargs) for _ in range(samples)]
                    rows[case] = results
                reloads = []
                for _ in range(max(3, samples // 3)):
                    page.reload()
                    wait_live(page, 60000)
                    t = page.evaluate("() => window.__codaTermViewer.timings.at(-1)")
                    reloads.append({"ms": t["painted"], "kind": t["kind"], "bytes": t["bytes"], "parse_ms": 0})
                rows["reload"] = reloads
                print(f"\n{kind} history, ring {RING // MB} MiB, {samples} samples each:")
                for case, results in rows.items():
                    ms = [r["ms"] for r in results]
                    parse = [r["parse_ms"] for r in results]
                    what = {"resume": "network drop, resume", "replay": "replay (planned)",
                            "baseline": "replay whole ring (before)", "reload": "page reload (navigation->paint)"}
                    server = [r.get("server_ms", 0) for r in results]
                    extra = (f"  (open->replay {statistics.median(server):4.0f} ms, last byte->parsed "
                             f"{statistics.median(parse):4.0f} ms)" if case != "reload" else "")
                    print(f"  {what[case]:33s} p50 {pct(ms, .5):6.0f} ms  p95 {pct(ms, .95):6.0f} ms"
                          f"  bytes {results[-1]['bytes']:>9,d}{extra}")
                page.close()
                app.request("DELETE", f"/api/sessions/{sid}")
    finally:
        app.stop()


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    started = time.monotonic()
    run(5 if quick else 15)
    print(f"\n(took {time.monotonic() - started:.0f} s; target: planned replay of the shell history p50 < 300 ms)")
