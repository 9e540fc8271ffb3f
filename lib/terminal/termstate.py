"""The state that terminal output leaves in force: modes, scroll region, title, character sets, colours.

A replay that starts late in the scrollback ring (``lib.terminal.scrollback``)
begins with this state as a prefix, so the terminal is as if it had read
every byte before the cut. Kept apart from the ring because it is a pure
function of bytes: it reads escape sequences, it never stores output.
"""

from __future__ import annotations

import re
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
_SGR_RE = re.compile(rb"\x1b\[([0-9;:]*+)m")


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
        if data.find(b"\x1b", lo, hi) < 0 and data.find(b"\x0e", lo, hi) < 0 and data.find(b"\x0f", lo, hi) < 0:
            return  # plain text sets no state; three memchr passes instead of a dozen searches
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
