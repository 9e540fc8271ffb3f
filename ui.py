"""The Streamlit script: authorization gate, navigation, sidebar.

The security middleware already refuses strangers before this runs; the gate
here is the second lock on the same door, using the same decision.
"""

import time

import streamlit as st

from lib.access.decision import decide
from lib.runtime import runtime
from views.sidebar import render_sidebar
from views.style import page_frame

st.set_page_config(page_title="Coda", page_icon="🖥️", layout="wide")

decision = decide(runtime().owner.state, st.context.headers)
if not decision.allowed:
    st.error(f"{decision.status} {decision.title}: {decision.message}")
    st.stop()

pages = [
    st.Page("views/sessions.py", title="Sessions", icon=":material/terminal:", default=True),
    st.Page("views/launch.py", title="Launch agent", url_path="launch", icon=":material/rocket_launch:"),
    st.Page("views/sync.py", title="Workspace sync", url_path="sync", icon=":material/cloud_sync:"),
    st.Page("views/setup.py", title="Setup", url_path="setup", icon=":material/build:"),
]
navigation = st.navigation(pages)

owner = runtime().owner.state
if owner.on_apps:
    resolved = time.strftime("%Y-%m-%d %H:%M", time.localtime(owner.resolved_at or 0))
    st.sidebar.caption(f"Owner: {owner.owner} (from the {owner.source}, {resolved})")
    if owner.token_mismatch:
        st.sidebar.warning(owner.token_mismatch, icon=":material/key_off:")
else:
    st.sidebar.caption("Local mode: one user, listening on this machine only.")

render_sidebar()
page_frame()

navigation.run()
