"""Debian's chromium driven by Playwright (a browser download does not work here)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def terminal_text(page: Page) -> str:
    """All lines of the xterm buffer on the page, as text."""
    return page.evaluate(
        """() => {
            const t = window.__codaTerm; if (!t) return "";
            const b = t.buffer.active; const out = [];
            for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
            return out.join("\\n");
        }"""
    )


def wait_for_terminal_text(page: Page, needle: str, timeout_ms: int = 15000) -> None:
    page.wait_for_function(
        """(needle) => {
            const t = window.__codaTerm; if (!t) return false;
            const b = t.buffer.active;
            for (let i = 0; i < b.length; i++) if (b.getLine(i).translateToString(true).includes(needle)) return true;
            return false;
        }""",
        arg=needle,
        timeout=timeout_ms,
    )


# Whether the terminal's whole buffer, whitespace removed, holds a needle (for page.wait_for_function).
SCREEN_HAS = """(needle) => {
    const t = window.__codaTerm; if (!t) return false;
    const b = t.buffer.active; let text = "";
    for (let i = 0; i < b.length; i++) text += b.getLine(i).translateToString(true);
    return text.replace(/\\s+/g, "").includes(needle);
}"""
