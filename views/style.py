"""The page frame every page shares: less empty space above the content."""

import streamlit as st

# The header holds nothing but the sidebar button (phones) and the running
# indicator, so content may go under it; Streamlit's default leaves ~6rem empty.
_STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 1rem; }
[data-testid="stHeader"] { background: transparent; pointer-events: none; }
[data-testid="stHeader"] * { pointer-events: auto; }
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-top: 3rem; padding-left: 0.75rem; padding-right: 0.75rem; }
}
</style>"""


def page_frame() -> None:
    st.html(_STYLE)
