"""Bounded terminal history, kept as bytes, and the replay a reconnecting viewer gets.

A deque of chunks rather than one bytearray: trimming the front of a 4 MiB
bytearray on every 4 KiB read would copy megabytes per read, while dropping
whole chunks from a deque costs nothing.

Every byte has an absolute offset (bytes ever appended before it), so a
viewer that lost its connection can say how far it got and receive only what
followed (``Replay.resume``). A viewer starting from nothing gets a replay
that rebuilds the screen exactly, cell for cell, the way a terminal that had
stayed attached shows it:

- Bytes are replayed at the size they were produced at: every PTY resize is
  recorded (``resized``) and the replay carries ``Size`` items where the size
  changed. Replaying a full-screen program's output at another size is what
  garbled ``top`` and ``vim`` before.
- The ring is trimmed at line ends, and the modes set by the bytes trimmed
  away (alternate screen, mouse, bracketed paste, cursor keys...) are kept in
  ``TermState``: a replay starts by setting them again, so a program whose
  start scrolled out of the ring still gets its keys and its screen.
- Replaying 4 MiB through xterm.js takes longer than a reconnect should
  (~250 ms here), while a terminal keeps only its last ``scrollback`` lines.
  ``plan_replay`` looks, from the end, for a stretch of plain output (no
  cursor movement upwards, no scroll region, no screen switch, no resize) with
  enough line feeds to push every earlier line out of the terminal's buffer,
  and starts the replay there, with the state those earlier bytes left
  (modes, colours, character sets, title) as a prefix. When no such stretch
  exists (a TUI redrawing in place), the whole ring is replayed: always exact
  up to what the ring holds, only slower.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

# DEC private modes a replay prefix must not set: they act rather than set
# state (1048 saves the cursor, 3 resizes), switch screens (handled apart), or
# would hold rendering back (2026 synchronized output).
_ALT_MODES = frozenset({47, 1047, 1049})
_NOT_REPLAYED = _ALT_MODES | {3, 1048, 2026}
# ANSI modes worth keeping: insert (IRM) and automatic newline (LNM).
_ANSI_MODES = frozenset({4, 20})

# Sequences that change the state a replay prefix restores. Each pattern
# starts with a literal, so the regex engine skips plain text at C speed;
# possessive quantifiers keep the many colour sequences from costing backtracking.
_PRIVATE_RE = re.compile(rb"\x1b\[\?([0-9;]*+)([hl])")
_ANSI_RE = re.compile(rb"\x1b\[((?:4|20)(?:;[0-9;]*+)?)([hl])")
_REGION_RE = re.compile(rb"\x1b\[([0-9;]*+)r")
_TITLE_RE = re.compile(rb"\x1b\][02];([^\x07\x1b]{0,512})(?:\x07|\x1b\\)")
_CHARSET_RE = re.compile(rb"\x1b([()*+])([0-9A-Za-z<%\"]{1,2})")
# What ends a "plain" stretch: upward or absolute cursor movement, scroll
# regions and scrolling commands, cursor restore, a full reset, screen switches.
_BOUNDARY_RE = re.compile(
    rb"\x1b(?:\[[0-9;:?]*+[AFHfdrSTLMu]|[M8c]|\[\?(?:[0-9;]*;)?(?:1049|1047|47|3)(?:;[0-9;]*+)?[hl])"
)
_SGR_RE = re.compile(rb"\x1b\[([0-9;:]*+)m")
_LINE_SLACK = 4096  # how much more than needed a trim drops to end at a line end


@dataclass
class TermState:
    """Terminal state left by a run of output, as far as a replay needs it again."""

    modes: dict[int, bool] = field(default_factory=dict)
    ansi_modes: dict[int, bool] = field(default_factory=dict)
    alt: bool = False
    keypad: bool = False
    region: bytes = b""  # parameters of the last DECSTBM (b"" = whole screen)
    title: bytes | None = None
    charsets: dict[bytes, bytes] = field(default_factory=dict)  # "(" -> b"\x1b(0"
    shifted: bool = False  # SO: G1 in use

    def copy(self) -> TermState:
        return TermState(
            dict(self.modes), dict(self.ansi_modes), self.alt, self.keypad, self.region, self.title,
            dict(self.charsets), self.shifted,
        )

    def feed(self, data: bytes, lo: int, hi: int, *, full: bool = True) -> None:
        """Apply the state-changing sequences in ``data[lo:hi]``.

        ``full=False`` (bytes leaving the ring, on the output path) skips the
        costlier scans for rarely used state: insert/newline modes and scroll
        regions.
        """
        ris = data.rfind(b"\x1bc", lo, hi)
        if ris >= 0:  # full reset: only what follows counts (the title stays)
            self.modes.clear()
            self.ansi_modes.clear()
            self.charsets.clear()
            self.alt = self.keypad = self.shifted = False
            self.region = b""
            lo = ris + 2
        for m in _PRIVATE_RE.finditer(data, lo, hi):
            on = m.group(2) == b"h"
            for p in m.group(1).split(b";"):
                if p.isdigit():
                    mode = int(p)
                    if mode in _ALT_MODES:
                        self.alt = on
                        self.region = b""
                    else:
                        self.modes[mode] = on
        keypad = max(data.rfind(b"\x1b=", lo, hi), data.rfind(b"\x1b>", lo, hi))
        if keypad >= 0:
            self.keypad = data[keypad + 1] == 0x3D
        title = max(data.rfind(b"\x1b]0;", lo, hi), data.rfind(b"\x1b]2;", lo, hi))
        if title >= 0 and (m := _TITLE_RE.match(data, title, hi)):
            self.title = m.group(1)
        for g in (b"(", b")", b"*", b"+"):
            at = data.rfind(b"\x1b" + g, lo, hi)
            if at >= 0 and (m := _CHARSET_RE.match(data, at, hi)):
                self.charsets[g] = m.group(0)
        so, si = data.rfind(b"\x0e", lo, hi), data.rfind(b"\x0f", lo, hi)
        if so != si:
            self.shifted = so > si
        if full:
            for m in _ANSI_RE.finditer(data, lo, hi):
                on = m.group(2) == b"h"
                for p in m.group(1).split(b";"):
                    if p in (b"4", b"20"):
                        self.ansi_modes[int(p)] = on
            last_region = None
            for last_region in _REGION_RE.finditer(data, lo, hi):  # noqa: B007 - the last one counts
                pass
            if last_region is not None and last_region.start() > max(
                data.rfind(b"\x1b[?1049", lo, hi), data.rfind(b"\x1b[?47", lo, hi), data.rfind(b"\x1b[?1047", lo, hi)
            ):
                self.region = bytes(last_region.group(1))

    def full_region(self, rows: int) -> bool:
        params = [p for p in self.region.split(b";") if p]
        if not params:
            return True
        top = int(params[0]) if params[0].isdigit() else 1
        bottom = int(params[1]) if len(params) > 1 and params[1].isdigit() else rows
        return top <= 1 and bottom >= rows

    def prefix(self) -> bytes:
        """Bytes that put a fresh terminal into this state (the screen contents aside)."""
        out = bytearray()
        if self.alt:
            out += b"\x1b[?1049h"
        for mode, on in sorted(self.modes.items()):
            if mode not in _NOT_REPLAYED:
                out += b"\x1b[?%d%s" % (mode, b"h" if on else b"l")
        for mode, on in sorted(self.ansi_modes.items()):
            out += b"\x1b[%d%s" % (mode, b"h" if on else b"l")
        if self.keypad:
            out += b"\x1b="
        if self.region:
            out += b"\x1b[" + self.region + b"r"
        for g in (b"(", b")", b"*", b"+"):
            if g in self.charsets and not self.charsets[g].endswith(b"B"):
                out += self.charsets[g]
        if self.shifted:
            out += b"\x0e"
        if self.title is not None:
            out += b"\x1b]2;" + self.title + b"\x07"
        return bytes(out)


@dataclass(frozen=True)
class Size:
    """From here on the bytes were produced at this size."""

    cols: int
    rows: int


@dataclass(frozen=True)
class Replay:
    """What a viewer gets before live output.

    ``resume``: the viewer keeps its screen; ``items`` are the bytes it missed.
    Otherwise the viewer resets its terminal, takes size ``cols`` x ``rows``,
    writes ``prefix`` (state, not output) and then ``items``. ``items`` are
    ``bytes`` (output, in order) and ``Size`` (resize here). ``start``/``end``
    are the absolute offsets of the output sent; ``trimmed`` says the whole
    ring was replayed from a point whose earlier output is gone.
    """

    resume: bool
    start: int
    end: int
    cols: int
    rows: int
    prefix: bytes = b""
    items: tuple[bytes | Size, ...] = ()
    trimmed: bool = False
    alt_from_before: bool = False  # the ring starts inside a full-screen program

    @property
    def size(self) -> int:
        return sum(len(i) for i in self.items if isinstance(i, bytes)) + len(self.prefix)


class Scrollback:
    def __init__(self, limit: int, cols: int = 120, rows: int = 32) -> None:
        if limit <= 0:
            raise ValueError("scrollback limit must be positive")
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._start = 0  # absolute offset of the first byte kept
        self._marks: deque[tuple[int, int, int]] = deque([(0, cols, rows)])  # (offset, cols, rows)
        self._base = TermState()  # the state the trimmed bytes left
        self._cached: tuple[int, TermState] | None = None  # (absolute offset, state there): replays scan less

    def __len__(self) -> int:
        return self._size

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._start + self._size

    @property
    def cols_rows(self) -> tuple[int, int]:
        _, cols, rows = self._marks[-1]
        return cols, rows

    def resized(self, cols: int, rows: int) -> None:
        """The PTY takes this size from here on."""
        offset, old_cols, old_rows = self._marks[-1]
        if (cols, rows) == (old_cols, old_rows):
            return
        if offset == self.end:  # nothing was produced at the previous size
            self._marks.pop()
            if self._marks and self._marks[-1][1:] == (cols, rows):
                return
        self._marks.append((self.end, cols, rows))

    def append(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > self.limit:
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest bytes, up to a line end when one is near, until the ring fits.

        Cutting after a newline keeps escape sequences and UTF-8 characters
        whole; the dropped bytes update ``_base`` (modes they set).
        """
        excess = self._size - self.limit
        while excess > 0 and self._chunks:
            first = self._chunks[0]
            if len(first) <= excess:
                cut = len(first)
            else:
                nl = first.find(b"\n", excess - 1, excess + _LINE_SLACK)
                cut = excess if nl < 0 else nl + 1
            self._base.feed(first, 0, cut, full=False)
            if cut == len(first):
                self._chunks.popleft()
            else:
                self._chunks[0] = first[cut:]
            self._size -= cut
            self._start += cut
            excess -= cut
        while len(self._marks) > 1 and self._marks[1][0] <= self._start:
            self._marks.popleft()

    def _joined(self) -> bytes:
        data = b"".join(self._chunks)
        if len(self._chunks) > 1:
            self._chunks.clear()
            self._chunks.append(data)
        return data

    def snapshot(self) -> bytes:
        """Everything kept, starting at a UTF-8 character boundary."""
        data = self._joined()
        start = 0
        while start < min(len(data), 3) and 0x80 <= data[start] <= 0xBF:
            start += 1
        return data[start:]

    def tail(self, max_bytes: int) -> bytes:
        """The last ``max_bytes`` of output (or all kept), starting at a UTF-8 character boundary.

        Copies only those bytes (not the whole ring): a session's record takes them every few seconds.
        """
        parts: list[bytes] = []
        size = 0
        for chunk in reversed(self._chunks):
            if size >= max_bytes:
                break
            parts.append(chunk if size + len(chunk) <= max_bytes else chunk[len(chunk) - (max_bytes - size):])
            size += len(parts[-1])
        data = b"".join(reversed(parts))
        start = 0
        while start < min(len(data), 3) and 0x80 <= data[start] <= 0xBF:
            start += 1
        return data[start:]

    # --- replay ---------------------------------------------------------------
    def replay(self, resume_from: int | None = None, scrollback_lines: int = 10000) -> Replay:
        """What a viewer needs: the missed bytes (``resume_from`` still kept) or a full replay.

        ``scrollback_lines``: lines the viewer's terminal keeps; 0 replays the whole ring (a baseline).
        """
        data = self._joined()
        cols, rows = self.cols_rows
        if resume_from is not None and self._start <= resume_from <= self.end:
            return Replay(True, resume_from, self.end, cols, rows, items=_nonempty(data[resume_from - self._start :]))
        return self._full(data, scrollback_lines)

    def _state_at(self, data: bytes, cut: int) -> TermState:
        """The state after ``data[:cut]``, scanning on from the last replay's point when it is still kept."""
        cut_abs = self._start + cut
        if self._cached is not None and self._start <= self._cached[0] <= cut_abs:
            state, lo = self._cached[1].copy(), self._cached[0] - self._start
        else:
            state, lo = self._base.copy(), 0
        state.feed(data, lo, cut)
        self._cached = (cut_abs, state.copy())
        return state

    def _full(self, data: bytes, scrollback_lines: int) -> Replay:
        marks = [(max(0, off - self._start), c, r) for off, c, r in self._marks]
        cut = plan_cut(data, marks, scrollback_lines) if scrollback_lines > 0 else 0
        from_start = True
        prefix = self._base.prefix()
        if cut > 0:
            at_cut = self._state_at(data, cut)
            # The walk assumes the main screen and a whole-screen scroll region at the cut.
            if not at_cut.alt and at_cut.full_region(_rows_at(marks, cut)):
                prefix = at_cut.prefix() + sgr_at(data, cut)
                from_start = False
        if from_start:
            cut = 0  # a trim with no line end nearby may have split a character: skip its rest
            while cut < min(len(data), 3) and 0x80 <= data[cut] <= 0xBF:
                cut += 1
        # The size in force at the cut, then a Size item at every later change.
        start_mark = max((m for m in marks if m[0] <= cut), key=lambda m: m[0])
        items: list[bytes | Size] = []
        pos = cut
        for off, c, r in marks:
            if off <= cut:
                continue
            if off > pos:
                items.append(data[pos:off])
                pos = off
            items.append(Size(c, r))
        if pos < len(data):
            items.append(data[pos:])
        return Replay(
            False, self._start + cut, self.end, start_mark[1], start_mark[2], prefix, tuple(items),
            trimmed=from_start and self._start > 0, alt_from_before=from_start and self._base.alt,
        )


def _nonempty(data: bytes) -> tuple[bytes, ...]:
    return (data,) if data else ()


def plan_cut(
    data: bytes, marks: list[tuple[int, int, int]], scrollback_lines: int,
    window: int = 1 << 18, max_boundaries: int = 5000,
) -> int:
    """The latest offset in ``data`` from which replaying gives the same terminal as replaying it all.

    Walks back from the end over stretches between boundaries (``_BOUNDARY_RE``
    and size changes) until one holds enough line feeds: from a line start in
    that stretch, the cursor reaches the bottom row within ``rows`` line feeds
    and every further one scrolls a line, so ``scrollback_lines + 2 * rows``
    of them leave no earlier line in the buffer. 0 when there is no such point.

    Windows are scanned backwards and begin after a newline, which no
    boundary sequence contains, so no match is split between two windows.
    """
    zero_width = sorted({off for off, _, _ in marks if 0 < off < len(data)})
    hi = len(data)  # the stretch examined ends here
    scanned = len(data)  # boundaries from here to the end are known
    newlines = 0  # in data[scanned:hi], while no boundary is pending
    pending: list[tuple[int, int]] = []  # known boundaries before ``hi``, ascending
    for _ in range(max_boundaries):
        while not pending and scanned > 0:
            if newlines > scrollback_lines:
                cut = _cut_in(data, scanned, hi, marks, scrollback_lines)
                if cut is not None:
                    return cut
            lo = 0 if scanned <= window else data.rfind(b"\n", 0, scanned - window) + 1
            found = [(m.start(), m.end()) for m in _BOUNDARY_RE.finditer(data, lo, scanned)]
            found += [(off, off) for off in zero_width if lo <= off < scanned]
            pending = sorted(b for b in found if b[1] <= hi)
            newlines += data.count(b"\n", lo, scanned)
            scanned = lo
        b_start, b_end = pending.pop() if pending else (0, 0)
        cut = _cut_in(data, b_end, hi, marks, scrollback_lines)
        if cut is not None:
            return cut
        if b_end == 0:
            return 0
        hi = b_start
        newlines = data.count(b"\n", scanned, hi) if not pending else 0
    return 0  # redrawn in place all along: replay everything


def _rows_at(marks: list[tuple[int, int, int]], offset: int) -> int:
    rows = marks[0][2]
    for off, _, r in marks:
        if off <= offset:
            rows = r
    return rows


def _cut_in(data: bytes, lo: int, hi: int, marks: list[tuple[int, int, int]], scrollback_lines: int) -> int | None:
    """The latest line start in ``data[lo:hi]`` with enough line feeds after it, up to ``hi``."""
    need = scrollback_lines + 2 * _rows_at(marks, lo) + 2
    pos = _nth_newline_back(data, lo, hi, need)
    if pos is None:
        return None
    # ``pos`` is the need-th newline from the end: start after a "\r\n" at or before it,
    # so the cursor is in column 0 whatever came before.
    crlf = data.rfind(b"\r\n", lo, pos + 1)
    if crlf < 0:
        return None
    return crlf + 2


def _nth_newline_back(data: bytes, lo: int, hi: int, n: int, block: int = 1 << 16) -> int | None:
    """Offset of the ``n``-th newline counting back from ``hi`` (not before ``lo``), or None."""
    end = hi
    while end > lo:
        start = max(lo, end - block)
        found = data.count(b"\n", start, end)
        if found >= n:
            pos = end
            for _ in range(n):
                pos = data.rfind(b"\n", start, pos)
            return pos
        n -= found
        end = start
    return None


def sgr_at(data: bytes, cut: int, window: int = 1 << 14, limit: int = 1 << 20) -> bytes:
    """The SGR sequences that set the colours and attributes in force at ``cut``."""
    lo = max(0, cut - window)
    while True:
        found = list(_SGR_RE.finditer(data, lo, cut))
        last_reset = None
        for i, m in enumerate(found):
            params = m.group(1)
            if not params or params.split(b";")[0] in (b"", b"0"):
                last_reset = i
        if last_reset is not None or lo == 0 or cut - lo >= limit:
            keep = found[last_reset:] if last_reset is not None else found
            return b"\x1b[0m" + b"".join(m.group(0) for m in keep)
        lo = max(0, cut - (cut - lo) * 4)
