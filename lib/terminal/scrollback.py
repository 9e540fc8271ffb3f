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
from dataclasses import dataclass

from lib.terminal.termstate import TermState, sgr_at

# What ends a "plain" stretch: upward or absolute cursor movement, scroll
# regions and scrolling commands, cursor restore, a full reset, screen switches.
_BOUNDARY_RE = re.compile(
    rb"\x1b(?:\[[0-9;:?]*+[AFHfdrSTLMu]|[M8c]|\[\?(?:[0-9;]*;)?(?:1049|1047|47|3)(?:;[0-9;]*+)?[hl])"
)
_LINE_SLACK = 4096  # how much more than needed a trim drops to end at a line end


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
