"""Text from outside the app shown as plain text (not a page: ``ui.py`` lists the pages).

Streamlit renders captions, alerts, toasts, labels and ``st.markdown`` as
Markdown (links, images, ``:material/…:`` icons, ``:red[…]`` colours, LaTeX).
Commit subjects, file and folder names, labels, error and log text come from
anyone who can commit or name a file, so wherever they go into such an
element they pass through ``md`` first; whole blocks of such text use
``st.text``/``st.code``, which show it as it is.
"""

from __future__ import annotations

import re

# What starts a Markdown construct that could hide text or make a link: emphasis,
# code, links and images ([ ] and <autolinks>), tables, LaTeX, headings.
# Parentheses and "!" mean nothing once brackets are escaped; "." and "-" only
# make lists, so they stay readable.
_MARKDOWN = re.compile(r"([\\`*_~\[\]<>|$#])")
# Streamlit's directives (:red[...]), icons (:material/lock:) and emoji
# shortcodes (:smile:) and GFM's links of bare URLs ("https://..."), "www."
# names and e-mail addresses are found in the text after escapes are resolved,
# so a backslash cannot stop them: an invisible WORD JOINER (U+2060) after the
# colon, inside "www." and after "@" breaks each pattern and shows nothing.
JOINER = "\u2060"
_COLON = re.compile(r":(?=[A-Za-z0-9/])")
_AUTOLINK = re.compile(r"(?<=\bwww)(?=\.)|(?<=@)", re.IGNORECASE)
# Controls (C0 but tab/newline, DEL, C1), bidi overrides/isolates/marks.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: object) -> str:
    """``text`` without control or bidi characters (which can hide or reorder what is shown)."""
    return _INVISIBLE.sub("", str(text if text is not None else ""))


def md(text: object, *, in_link: bool = False) -> str:
    """``text`` for a Markdown element, shown literally: whatever could start a construct escaped
    or broken. ``in_link=True`` for a link's own text, where GFM makes no links (addresses stay whole)."""
    escaped = _COLON.sub(":" + JOINER, _MARKDOWN.sub(r"\\\1", clean(text)))
    return escaped if in_link else _AUTOLINK.sub(JOINER, escaped)


def url(text: str) -> str:
    """A URL for a Markdown link target: the characters that could end or break it percent-encoded."""
    return "".join(f"%{ord(c):02X}" if c in " ()<>[]\\\"'`" or ord(c) < 0x21 else c for c in clean(text))
