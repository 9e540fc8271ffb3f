"""The replay a reconnecting viewer gets rebuilds the terminal exactly (issue 9, point 1).

``Scrollback.replay`` may start the replay late (``plan_cut``) with a prefix
that restores the state earlier bytes left, and replays each part at the size
it was produced at. The property: xterm.js fed the planned replay ends in the
same state as xterm.js fed every byte from the start, with the resizes where
they happened: every line of the buffer (text and cell attributes), the
cursor, the active screen and the modes. Checked in chromium, with the
vendored xterm.js, on streams built to hit each rule of the planner, and on
random ones. Plain unit tests of the ring (offsets, resume, trimming, the
state of trimmed bytes) come first.
"""

from __future__ import annotations

import functools
import http.server
import json
import random
import threading
from pathlib import Path

import pytest

from lib.terminal.scrollback import Scrollback, Size, plan_cut
from lib.terminal.termstate import TermState
from tests.browser import browser

VENDOR = Path(__file__).resolve().parents[2] / "components" / "terminal" / "static" / "vendor"


# --- the ring, without a browser ----------------------------------------------------
def test_offsets_and_resume():
    sb = Scrollback(1000)
    sb.append(b"hello\r\n")
    sb.append(b"world\r\n")
    assert (sb.start, sb.end) == (0, 14)
    r = sb.replay(resume_from=7)
    assert r.resume and r.start == 7 and r.items == (b"world\r\n",)
    assert sb.replay(resume_from=14).items == ()
    full = sb.replay(resume_from=99)  # unknown offset: a full replay
    assert not full.resume and full.items == (b"hello\r\nworld\r\n",)


def test_trim_ends_at_a_line_and_resume_before_the_start_is_full():
    sb = Scrollback(100)
    for i in range(40):
        sb.append(b"line %02d\r\n" % i)  # 9 bytes each
    assert len(sb) <= 100 and sb.start > 0
    data = sb.snapshot()
    assert data.startswith(b"line ") and data.endswith(b"line 39\r\n")
    assert not sb.replay(resume_from=0).resume


def test_sizes_are_replayed_where_they_changed():
    sb = Scrollback(10_000, cols=80, rows=24)
    sb.append(b"a" * 10)
    sb.resized(100, 30)
    sb.resized(100, 30)  # no change: no mark
    sb.append(b"b" * 10)
    sb.resized(90, 20)
    sb.resized(70, 20)  # nothing produced at 90x20: that size is never replayed
    sb.append(b"c" * 10)
    r = sb.replay()
    assert (r.cols, r.rows) == (80, 24)
    assert r.items == (b"a" * 10, Size(100, 30), b"b" * 10, Size(70, 20), b"c" * 10)


def test_trimmed_bytes_leave_their_modes():
    sb = Scrollback(4096)
    sb.append(b"\x1b[?1049h\x1b[?1000;1006h\x1b[?2004h\x1b=\x1b]2;my title\x07\r\n")
    sb.append(b"x" * 80 + b"\r\n")
    for _ in range(200):
        sb.append(b"y" * 78 + b"\r\n")  # pushes the first bytes out of the ring
    r = sb.replay()
    assert r.trimmed and r.alt_from_before
    assert r.prefix.startswith(b"\x1b[?1049h")
    for seq in (b"\x1b[?1000h", b"\x1b[?1006h", b"\x1b[?2004h", b"\x1b=", b"\x1b]2;my title\x07"):
        assert seq in r.prefix


def test_state_scan():
    st = TermState()
    data = b"\x1b[?25l\x1b[4h\x1b[2;20r\x1b(0\x0e\x1b]0;t1\x07 \x1b]2;t2\x1b\\"
    st.feed(data, 0, len(data))
    assert st.modes == {25: False} and st.ansi_modes == {4: True} and st.region == b"2;20"
    assert st.charsets == {b"(": b"\x1b(0"} and st.shifted and st.title == b"t2"
    st.feed(b"\x1bc", 0, 2)
    assert st.modes == {} and st.region == b"" and st.title == b"t2"


def test_plan_cut_needs_enough_plain_lines():
    rows, keep = 24, 100
    plain = b"".join(b"plain %d\r\n" % i for i in range(400))
    data = b"\x1b[10;1Hstart\r\n" + plain
    cut = plan_cut(data, [(0, 80, rows)], keep)
    assert cut > 0 and data[cut - 2 : cut] == b"\r\n"
    assert data.count(b"\n", cut) >= keep + 2 * rows
    # A cursor move up in the last lines: the stretch before it still has enough.
    tui = data + b"\x1b[5A" + b"x\r\n" * 10
    assert 0 < plan_cut(tui, [(0, 80, rows)], keep) < len(data)
    # Redrawn in place all along: no cut.
    redraw = b"".join(b"\x1b[H" + b"frame %d\r\n" % i * 3 for i in range(2000))
    assert plan_cut(redraw, [(0, 80, rows)], keep) == 0


# --- exactness in xterm.js ----------------------------------------------------------
PAGE = """<!doctype html><html><body><script type="module">
import { Terminal } from "./xterm.mjs";
const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const writeAll = (t, steps) => new Promise((done) => {
  for (const [kind, a, b] of steps) {
    if (kind === "data") t.write(b64(a));
    else t.write("", () => t.resize(a, b));
  }
  t.write("", done);
});
const state = (t) => {
  const dump = (buf) => {
    const out = [];
    for (let i = 0; i < buf.length; i++) {
      const line = buf.getLine(i);
      let attrs = "";
      for (let x = 0; x < t.cols; x++) {
        const c = line.getCell(x);
        attrs += [c.getChars(), c.getWidth(), c.getFgColorMode(), c.getFgColor(), c.getBgColorMode(),
          c.getBgColor(), c.isBold(), c.isItalic(), c.isUnderline(), c.isInverse(), c.isDim()].join(",") + ";";
      }
      out.push([line.isWrapped, line.translateToString(false), attrs]);
    }
    return out;
  };
  const b = t.buffer.active;
  return {
    type: b.type, cursorX: b.cursorX, cursorY: b.cursorY, baseY: b.baseY, cols: t.cols, rows: t.rows,
    normal: dump(t.buffer.normal), alt: b.type === "alternate" ? dump(t.buffer.alternate) : null,
    modes: t.modes,
  };
};
window.compare = async (scrollback, cols, rows, reference, replay) => {
  const opts = { allowProposedApi: true, scrollback };
  const a = new Terminal({ ...opts, cols, rows });
  await writeAll(a, reference);
  const b = new Terminal({ ...opts, cols: replay.cols, rows: replay.rows });
  await writeAll(b, replay.steps);
  const sa = state(a), sb = state(b);
  a.dispose(); b.dispose();
  return { same: JSON.stringify(sa) === JSON.stringify(sb), a: sa, b: sb };
};
window.ready = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def xterm_page(tmp_path_factory):
    root = tmp_path_factory.mktemp("xterm")
    for f in ("xterm.mjs",):
        (root / f).write_bytes((VENDOR / f).read_bytes())
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with browser() as b:
        page = b.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        page.wait_for_function("() => window.ready === true")
        yield page
    server.shutdown()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def check(page, chunks: list, *, limit: int = 1 << 26, scrollback: int = 200, cols: int = 80, rows: int = 24):
    """Feed ``chunks`` (bytes, or (cols, rows) resizes) to a ring; compare the replay with the whole stream."""
    sb = Scrollback(limit, cols, rows)
    reference: list = []
    size = (cols, rows)
    for chunk in chunks:
        if isinstance(chunk, tuple):
            if chunk != size:
                reference.append(("size", *chunk))
                size = chunk
            sb.resized(*chunk)
        else:
            reference.append(("data", _b64(chunk), 0))
            sb.append(chunk)
    assert sb.start == 0, "the reference must hold every byte: raise the ring limit"
    r = sb.replay(scrollback_lines=scrollback)
    steps = [("data", _b64(r.prefix), 0)] if r.prefix else []
    for item in r.items:
        steps.append(("size", item.cols, item.rows) if isinstance(item, Size) else ("data", _b64(item), 0))
    result = page.evaluate(
        "([s, c, r, ref, rep]) => window.compare(s, c, r, ref, rep)",
        [scrollback, cols, rows, reference, {"cols": r.cols, "rows": r.rows, "steps": steps}],
    )
    if not result["same"]:
        a, b = result["a"], result["b"]
        keys = ("type", "cursorX", "cursorY", "baseY", "cols", "rows", "modes")
        diff = {k: (a[k], b[k]) for k in keys if a[k] != b[k]}
        lines = [(i, x, y) for i, (x, y) in enumerate(zip(a["normal"], b["normal"], strict=False)) if x != y][:3]
        raise AssertionError(f"replay from {r.start} differs: {json.dumps(diff)[:600]} lines {lines!r:.1500}")
    return r


def shell_lines(n: int, seed: int = 0, width: int = 100) -> bytes:
    rnd = random.Random(seed)
    out = bytearray()
    for i in range(n):
        colour = rnd.choice([b"", b"\x1b[01;34m", b"\x1b[32m", b"\x1b[1m\x1b[31m"])
        text = b"%d " % i + bytes(rnd.choice(b"abcdefghij ") for _ in range(rnd.randint(0, width)))
        out += colour + text + (b"\x1b[0m" if colour else b"") + b"\r\n"
        if i % 37 == 0:
            out += b"\x1b[?2004h\x1b]0;user@host: ~\x07$ ls\x1b[?2004l\r\n"
    return bytes(out)


def test_long_shell_history_replays_from_a_late_cut(xterm_page):
    r = check(xterm_page, [shell_lines(3000)])
    assert r.start > 0 and r.size < len(shell_lines(3000)) / 3


def test_colour_and_charset_in_force_at_the_cut(xterm_page):
    plain = b"".join(b"word %d\r\n" % i for i in range(2000))
    r = check(xterm_page, [b"\x1b[1;33;44m\x1b(0\x0e", plain, b"\x0f\x1b(B\x1b[0mend\r\n"])
    assert r.start > 0


def test_vim_like_session_at_the_end(xterm_page):
    vim = (b"\x1b[?1049h\x1b[?1h\x1b=\x1b[H\x1b[2J" + b"".join(b"\x1b[%d;1H~" % y for y in range(2, 24))
           + b"\x1b[1;1Hfile text\x1b[24;1H\"f\" 1L\x1b[1;5H")
    check(xterm_page, [shell_lines(2500), vim])
    # ... and after it ended, back on the main screen.
    check(xterm_page, [shell_lines(2500), vim, b"\x1b[?1049l\x1b[?1l\x1b>$ ", shell_lines(50, 1)])


def test_resizes_in_the_history(xterm_page):
    long_lines = b"".join(b"L%d " % i + b"w" * 150 + b"\r\n" for i in range(300))
    check(xterm_page, [shell_lines(800), (60, 20), long_lines, (120, 40), shell_lines(900, 2), (100, 30),
                       b"prompt$ "], scrollback=300)


def test_scroll_region_set_before_the_cut(xterm_page):
    check(xterm_page, [b"\x1b[3;20r", shell_lines(2000), b"\x1b[r\x1b[20;1Hdone"])


def test_line_feeds_without_carriage_returns(xterm_page):
    check(xterm_page, [b"".join(b"x%d\n" % i for i in range(2000)), b"\r\n", shell_lines(100)])


def test_inline_tui_redraws_replay_everything(xterm_page):
    frames = b"".join(b"\x1b[4A\x1b[J" + b"".join(b"spinner %d row %d\r\n" % (i, j) for j in range(4))
                      for i in range(600))
    # Cursor moves up all along the last 2,400 lines: only the whole stream is exact...
    r = check(xterm_page, [shell_lines(100), b"\r\n" * 4, frames], scrollback=1000)
    assert r.start == 0
    # ... unless enough plain lines come before the redraws.
    r = check(xterm_page, [shell_lines(1500), b"\r\n" * 4, frames], scrollback=1000)
    assert r.start > 0


def test_wide_characters_and_wrapping(xterm_page):
    text = "中文字符🙂é".encode() * 30
    check(xterm_page, [b"".join(text + b"\r\n" for _ in range(700)), (50, 24), shell_lines(10)], cols=70)


@pytest.mark.parametrize("seed", range(int(__import__("os").environ.get("FIDELITY_SEEDS", "12"))))
def test_random_streams(xterm_page, seed):
    rnd = random.Random(seed)
    pieces = [
        lambda: shell_lines(rnd.randint(1, 400), rnd.randint(0, 999), rnd.randint(10, 200)),
        lambda: b"\x1b[%d;%dH" % (rnd.randint(1, 30), rnd.randint(1, 90)) + b"moved",
        lambda: b"\x1b[%dA" % rnd.randint(1, 5) + b"up\r\n",
        lambda: b"\x1b[%d;%dr" % (rnd.randint(1, 5), rnd.randint(10, 24)) + b"region\r\n" * 30 + b"\x1b[r",
        lambda: b"\x1b[?1049h\x1b[H\x1b[2Jalt screen\x1b[5;5Hhere" + b"\x1b[?1049l",
        lambda: b"\x1b[%dm" % rnd.choice([0, 1, 4, 7, 31, 42, 95]),
        lambda: b"\x1b[?%d%s" % (rnd.choice([1, 25, 1000, 1006, 2004, 7]), rnd.choice([b"h", b"l"])),
        lambda: b"\x1b7\x1b[2;2Hsaved\x1b8",
        lambda: b"\x1b[2J\x1b[H",
        lambda: (rnd.randint(40, 140), rnd.randint(10, 40)),
        lambda: "é中🙂".encode() * rnd.randint(1, 60) + b"\r\n",
        lambda: b"\tTab\tstops\r\n",
        lambda: b"\x1b[4hins\x1b[4l",
        lambda: b"\x1bM\x1bM",
    ]
    weights = [30, 2, 2, 1, 1, 3, 2, 1, 1, 2, 2, 1, 1, 1]
    chunks = [rnd.choices(pieces, weights)[0]() for _ in range(rnd.randint(20, 60))]
    chunks.append(shell_lines(rnd.choice([0, 50, 400]), seed))
    check(xterm_page, chunks, scrollback=rnd.choice([50, 200]), cols=rnd.randint(40, 120), rows=rnd.randint(10, 30))
