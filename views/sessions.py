"""Sessions: the list of terminals, the open one, and what to do with them."""

from __future__ import annotations

import time

import streamlit as st

from components.terminal import terminal
from lib.runtime import runtime
from lib.settings import load_settings
from lib.terminal.registry import SessionRegistry
from lib.terminal.session import PtySession, SessionError
from lib.timefmt import age


def registry() -> SessionRegistry:
    return runtime().sessions


def _open(session_id: str | None) -> None:
    st.session_state["open_session"] = session_id
    if session_id:
        st.query_params["session"] = session_id
    else:
        st.query_params.pop("session", None)


@st.dialog("Close session")
def confirm_close(session_id: str, label: str) -> None:
    st.text(f"Close “{label}”? Its programs are ended and its output is discarded.")
    left, right = st.columns(2)
    if left.button("Close session", type="primary", key="confirm-close"):
        try:
            registry().close(session_id)
        except SessionError as exc:
            st.error(str(exc))
            return
        _open(None)
        st.rerun()
    if right.button("Keep it", key="cancel-close"):
        st.rerun()


def new_shell() -> None:
    try:
        session = registry().create("bash")
    except SessionError as exc:
        st.session_state["session_error"] = str(exc)
        return
    _open(session.id)


def _picker(sessions: list[PtySession], wanted: str | None) -> None:
    """One tab per session, and "New shell"."""
    by_id = {s.id: s for s in sessions}
    top = st.columns([6, 1], vertical_alignment="center")
    with top[0]:
        if sessions:
            choice = st.segmented_control(
                "Sessions",
                options=[s.id for s in sessions],
                format_func=lambda sid: f"{by_id[sid].label}{'' if by_id[sid].status == 'running' else ' (exited)'}",
                default=wanted,
                key=f"picker-{wanted}",
                label_visibility="collapsed",
            )
            if choice and choice != wanted:
                _open(choice)
                st.rerun()
        else:
            st.caption("No sessions yet.")
    with top[1]:
        st.button("New shell", icon=":material/add:", type="primary", on_click=new_shell, width="stretch")


def _open_session(current: PtySession) -> None:
    """The open session's facts and actions, then its terminal."""
    settings = load_settings()
    bar = st.columns([4, 2, 1], vertical_alignment="bottom")
    with bar[0]:
        st.caption(f"{current.agent} · {current.cwd} · pid {current.pid} · {current.status}")
    with bar[1].popover("Rename", icon=":material/edit:"):
        new_label = st.text_input("Label", value=current.label, key=f"label-{current.id}", max_chars=80)
        if st.button("Save name", key=f"rename-{current.id}"):
            registry().rename(current.id, new_label)
            st.rerun()
    if bar[2].button("Close", icon=":material/close:", key=f"close-{current.id}"):
        confirm_close(current.id, current.label)
    terminal(current.id, font_size=settings.font_size, theme=settings.theme, height=0, key=f"terminal-{current.id}")


def _all_sessions(sessions: list[PtySession]) -> None:
    with st.expander(f"All sessions ({len(sessions)})", expanded=not sessions):
        now = time.time()
        st.dataframe(
            [
                {
                    "label": s.label,
                    "agent": s.agent,
                    "folder": str(s.cwd),
                    "age": age(now - s.created_at),
                    "idle": age(now - s.last_activity),
                    "running": s.foreground_process() or "",
                    "state": s.status if s.exit_code is None else f"{s.status} ({s.exit_code})",
                    "viewers": s.client_count,
                }
                for s in sessions
            ],
            hide_index=True,
            width="stretch",
        )


def render() -> None:
    sessions = registry().list()
    by_id = {s.id: s for s in sessions}
    wanted = st.session_state.get("open_session") or st.query_params.get("session")
    if wanted not in by_id:
        wanted = sessions[-1].id if sessions else None
    _open(wanted)
    _picker(sessions, wanted)
    if error := st.session_state.pop("session_error", None):
        st.error(error)
    if wanted:
        _open_session(by_id[wanted])
    _all_sessions(sessions)


if __name__ == "__main__":
    render()
