"""A session's last screen, drawn again from the last bytes of its output.

A session's record (``lib.terminal.records``) keeps the tail of what the
program wrote and the terminal size; replaying those bytes into a terminal
emulator (``pyte``) rebuilds the screen with its colours and attributes, as
text (tests, logs) or as HTML (the Sessions page). Only done when someone
looks at an ended session, never while a session runs.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass

import pyte

# xterm's default palette, for the colour names pyte reports.
_NAMED = {
    "black": "000000", "red": "cd0000", "green": "00cd00", "brown": "cdcd00", "yellow": "cdcd00",
    "blue": "0000ee", "magenta": "cd00cd", "cyan": "00cdcd", "white": "e5e5e5",
    "brightblack": "7f7f7f", "brightred": "ff0000", "brightgreen": "00ff00", "brightbrown": "ffff00",
    "brightyellow": "ffff00", "brightblue": "5c5cff", "brightmagenta": "ff00ff", "brightcyan": "00ffff",
    "brightwhite": "ffffff",
}
log = logging.getLogger(__name__)

FOREGROUND = "d4d4d4"
BACKGROUND = "1e1e1e"
MAX_COLS, MAX_ROWS = 500, 200


@dataclass(frozen=True)
class Style:
    fg: str = "default"
    bg: str = "default"
    bold: bool = False
    italics: bool = False
    underscore: bool = False
    strikethrough: bool = False
    reverse: bool = False


Line = list[tuple[str, Style]]  # runs of text in one style

# CSI forms pyte 0.8 does not know: ``<``/``=``/``>`` prefixes (kitty keyboard, modifyOtherKeys:
# ``CSI > 4 ; 2 m`` would read as "underline"), ``?`` forms other than modes and erases (``CSI ? u``
# makes it raise), colon sub-parameters (``CSI 4 : 3 m``). They set nothing a screen shows.
_CSI = re.compile(rb"\x1b\[([<=>?]?)([0-9;:]*)([ -/]*)([@-~])")
_CHUNK = 4096


def _drop_unknown(m: re.Match[bytes]) -> bytes:
    prefix, params, final = m.group(1), m.group(2), m.group(4)
    if prefix in (b"<", b"=", b">") or b":" in params or (prefix == b"?" and final not in b"hlJK"):
        return b""
    return m.group(0)


class _Screen(pyte.Screen):
    """pyte's screen, taking the private form of the sequences it knows as a no-op instead of failing."""

    def select_graphic_rendition(self, *attrs: int, private: bool = False) -> None:
        if not private:
            super().select_graphic_rendition(*attrs)

    def set_margins(self, top: int | None = None, bottom: int | None = None, private: bool = False) -> None:
        if not private:
            super().set_margins(top, bottom)


def _start(data: bytes) -> bytes:
    """Begin at a line start when the bytes were cut from a longer output (no half escape sequence)."""
    nl = data.find(b"\n")
    return data[nl + 1:] if 0 <= nl < len(data) - 1 else data


def render(data: bytes, cols: int, rows: int, *, cut: bool = False) -> list[Line]:
    """The screen after ``data`` at ``cols`` x ``rows``: one list of styled runs per row.

    ``cut``: ``data`` is the tail of a longer output, so its first line may start
    inside an escape sequence or a character; it is skipped.
    """
    cols, rows = max(2, min(cols, MAX_COLS)), max(1, min(rows, MAX_ROWS))
    screen = _Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    data = _CSI.sub(_drop_unknown, _start(data) if cut else data)
    for i in range(0, len(data), _CHUNK):  # a sequence pyte chokes on costs one chunk, not the screen
        try:
            stream.feed(data[i:i + _CHUNK])
        except Exception:  # pyte raises what it raises; the rest is still worth drawing
            log.debug("pyte could not read part of a screen", exc_info=True)
    lines: list[Line] = []
    for y in range(rows):
        row = screen.buffer[y]
        runs: Line = []
        for x in range(cols):
            char = row[x]
            if not char.data:  # the right half of a wide character
                continue
            style = Style(char.fg, char.bg, char.bold, char.italics, char.underscore, char.strikethrough,
                          char.reverse)
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + char.data, style)
            else:
                runs.append((char.data, style))
        lines.append(runs)
    return lines


def to_text(lines: list[Line]) -> str:
    """The screen as plain text, trailing blanks and blank last rows dropped."""
    text = ["".join(t for t, _ in line).rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    return "\n".join(text)


def _colour(name: str, default: str) -> str:
    if name == "default":
        return default
    if name in _NAMED:
        return _NAMED[name]
    return name if len(name) == 6 and all(c in "0123456789abcdefABCDEF" for c in name) else default


def _plain_background(style: Style) -> bool:
    return style.bg == "default" and not (style.reverse or style.underscore or style.strikethrough)


def to_html(lines: list[Line], *, font_size: int = 13) -> str:
    """The screen as a ``<pre class="coda-last-screen">`` with inline styles (no script, no class rules)."""
    while lines and not "".join(t for t, _ in lines[-1]).strip():
        lines = lines[:-1]
    out = []
    for line in lines:
        # Trailing blanks on the default background carry nothing.
        while line and _plain_background(line[-1][1]) and not line[-1][0].rstrip():
            line = line[:-1]
        if line and _plain_background(line[-1][1]):
            line = [*line[:-1], (line[-1][0].rstrip(), line[-1][1])]
        for text, style in line:
            fg, bg = _colour(style.fg, FOREGROUND), _colour(style.bg, BACKGROUND)
            if style.reverse:
                fg, bg = bg, fg
            css = []
            if fg != FOREGROUND:
                css.append(f"color:#{fg}")
            if bg != BACKGROUND:
                css.append(f"background:#{bg}")
            if style.bold:
                css.append("font-weight:bold")
            if style.italics:
                css.append("font-style:italic")
            decoration = " ".join(d for d, on in (("underline", style.underscore),
                                                  ("line-through", style.strikethrough)) if on)
            if decoration:
                css.append(f"text-decoration:{decoration}")
            escaped = html.escape(text, quote=False)
            out.append(f'<span style="{";".join(css)}">{escaped}</span>' if css else escaped)
        out.append("\n")
    body = "".join(out).rstrip("\n")
    return (f'<pre class="coda-last-screen" style="margin:0;padding:8px 10px;overflow-x:auto;'
            f"background:#{BACKGROUND};color:#{FOREGROUND};font-family:ui-monospace,Menlo,Consolas,monospace;"
            f'font-size:{font_size}px;line-height:1.2;white-space:pre">{body}</pre>')
