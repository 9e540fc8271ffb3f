"""xterm.js terminal as a Streamlit Components v2 element.

The component only receives its mount parameters through Streamlit. Terminal
bytes flow over the front end's own WebSocket to
``{base}/terminal/ws/{session_id}`` (``lib.terminal.protocol``), so typing
never triggers a Streamlit rerun. The mount data carries everything the front
end must agree on with the server: the URL prefix (``server.baseUrlPath``) and
the close-code table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.components.v1 import declare_component

from lib.settings import base_url_path
from lib.terminal import protocol

__all__ = ["terminal"]

_STATIC = Path(__file__).parent / "static"
_VENDOR = _STATIC / "vendor"
# Built once: the mount data must be equal on every rerun to keep the terminal alive.
_CLOSE_CODES = protocol.close_codes()
_GONE_CODES = [int(c) for c in protocol.GONE_CODES]

_HTML = """
<div class="coda-terminal" data-testid="terminal">
  <div class="coda-terminal__screen"></div>
  <div class="coda-terminal__status" data-testid="terminal-status">Connecting…</div>
  <div class="coda-terminal__notice" data-testid="terminal-notice" role="status" hidden></div>
  <div class="coda-terminal__search" hidden>
    <input type="search" data-testid="terminal-search" aria-label="Search the terminal"
           placeholder="Find: Enter next, Shift+Enter previous, Esc close">
  </div>
  <div class="coda-terminal__keys" data-testid="terminal-keys" role="toolbar" aria-label="Terminal keys" hidden></div>
</div>
"""


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# Components v2 puts `css` in the component's shadow root, so xterm's own
# stylesheet goes there too. `js` is inlined: Streamlit runs it from a blob: URL.
_render = st.components.v2.component(
    "coda_terminal",
    html=_HTML,
    css=_read(_VENDOR / "xterm.css") + "\n" + _read(_STATIC / "terminal.css"),
    js=_read(_STATIC / "terminal.js"),
)


def _vendor_url() -> str:
    """URL path (with trailing slash) at which the browser finds static/vendor/.

    Components v2 serves asset files only for pip-installed packages that
    declare an ``asset_dir`` in pyproject.toml, and ``server.enableStaticServing``
    only serves ``static/`` next to the main script. This repo is not
    installed, so we use the other supported route: a v1 component declared
    with a ``path`` is served by Streamlit at ``/component/<module>.<name>/``,
    with no config and no route of our own. It is only a file server here;
    it is never mounted. Declaring needs a running script, hence per call (an
    identical re-declaration is a no-op).
    """
    served = declare_component("vendor", path=str(_VENDOR))
    return f"{base_url_path()}/component/{served.name}/"


def _ignore() -> None:
    """Default ``on_ended``: the rerun the trigger causes is what redraws the page."""


def terminal(
    session_id: str,
    *,
    font_size: int = 14,
    theme: str = "auto",
    height: int = 600,
    copy_on_select: bool = False,
    upload_max_bytes: int = 0,
    on_ended: Callable[[], None] | None = None,
    notify: bool = False,
    sound: bool = False,
    key: str = "terminal",
) -> None:
    """Show the terminal of PTY session ``session_id``.

    ``theme`` is "auto" (follow Streamlit's light/dark theme), "light" or
    "dark"; ``height`` is in pixels, 0 to fill the window below the terminal.
    ``copy_on_select`` copies a selection to the clipboard as it is made;
    ``upload_max_bytes`` (the server's cap, 0 unknown) lets the page refuse a
    dropped file that is too big before sending it. When the program exits or
    the session turns out to be gone, the component triggers a rerun (and
    calls ``on_ended``) so the page around it can say so. Every session's
    attention state arrives over the terminal's WebSocket (``lib.attention``):
    the page's title counts sessions needing input and the favicon gets a dot;
    ``notify`` shows a desktop notification and ``sound`` plays a tone when a
    session in the background starts waiting; a change the session tabs show
    triggers a rerun (``attention``) so they are drawn again. The front end is
    torn down and rebuilt whenever these arguments change, so pass the same
    values (and the same ``key``) on every rerun to keep the terminal and its
    connection alive.
    """
    if theme not in ("auto", "light", "dark"):
        raise ValueError(f"theme must be 'auto', 'light' or 'dark', not {theme!r}")
    _render(
        key=key,
        data={
            "session_id": session_id,
            "font_size": int(font_size),
            "theme": theme,
            "height": int(height),
            "vendor": _vendor_url(),
            "base": base_url_path(),
            "close_codes": _CLOSE_CODES,
            "gone_codes": _GONE_CODES,
            "quiet_code": int(protocol.Close.NO_ANSWER),
            "scrollback_lines": protocol.SCROLLBACK_LINES,
            "ping_s": protocol.PING_INTERVAL_S,
            "copy_on_select": bool(copy_on_select),
            "upload_max_bytes": int(upload_max_bytes),
            "attention": {"notify": bool(notify), "sound": bool(sound)},
        },
        height=int(height) if height > 0 else "content",
        on_ended_change=on_ended or _ignore,
        on_attention_change=_ignore,
    )
