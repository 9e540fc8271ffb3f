"""xterm.js terminal as a Streamlit Components v2 element.

The component only receives its mount parameters through Streamlit. Terminal
bytes flow over the front end's own WebSocket to
``{base}/terminal/ws/{session_id}`` (``lib.terminal.protocol``), so typing
never triggers a Streamlit rerun. The mount data carries everything the front
end must agree on with the server: the URL prefix (``server.baseUrlPath``) and
the close-code table.
"""

from __future__ import annotations

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

_HTML = """
<div class="coda-terminal" data-testid="terminal">
  <div class="coda-terminal__screen"></div>
  <div class="coda-terminal__status" data-testid="terminal-status">Connecting…</div>
  <div class="coda-terminal__search" hidden>
    <input type="search" data-testid="terminal-search" aria-label="Search the terminal"
           placeholder="Find: Enter next, Shift+Enter previous, Esc close">
  </div>
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


def terminal(
    session_id: str,
    *,
    font_size: int = 14,
    theme: str = "auto",
    height: int = 600,
    key: str = "terminal",
) -> None:
    """Show the terminal of PTY session ``session_id``.

    ``theme`` is "auto" (follow Streamlit's light/dark theme), "light" or
    "dark"; ``height`` is in pixels, 0 to fill the window below the terminal. The front end is torn down and rebuilt
    whenever these arguments change, so pass the same values (and the same
    ``key``) on every rerun to keep the terminal and its connection alive.
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
        },
        height=int(height) if height > 0 else "content",
    )
