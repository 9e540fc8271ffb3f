"""Sessions: the list of terminals, the open one, and what to do with them."""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from components.terminal import terminal
from lib import capacity
from lib.attention import states
from lib.gateway.usage import budget_caption, budget_report
from lib.runtime import runtime
from lib.settings import load_settings
from lib.terminal import snapshot
from lib.terminal.errors import SessionError
from lib.terminal.records import SCREEN_BYTES, SessionRecord
from lib.terminal.registry import SessionRegistry
from lib.terminal.session import PtySession
from lib.timefmt import age
from views.plain import clean, md


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
    st.text(f"Close “{clean(label)}”? Its programs are ended and its output is discarded.")
    left, right = st.columns(2)
    if left.button("Close session", type="primary", key="confirm-close"):
        try:
            registry().close(session_id)
        except SessionError as exc:
            st.error(md(exc))
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


def _state(session: PtySession) -> str:
    if session.status == "running":
        return "running"
    return "exited" if session.exit_code is None else f"exited {session.exit_code}"


def _picker(sessions: list[PtySession], wanted: str | None) -> None:
    """One tab per session, the list of all of them, and "New shell": above the terminal, never below it."""
    by_id = {s.id: s for s in sessions}
    with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute",
                      key="session-bar"):
        if sessions:
            choice = st.segmented_control(
                "Sessions",
                options=[s.id for s in _needs_input_first(sessions)],
                format_func=lambda sid: _attention_badge(by_id[sid]) + md(by_id[sid].label)
                + ("" if by_id[sid].status == "running" else f" ({_state(by_id[sid])})") + _budget_badge(sid),
                default=wanted,
                key=f"picker-{wanted}",
                label_visibility="collapsed",
            )
            if choice and choice != wanted:
                _open(choice)
                st.rerun()
        else:
            st.caption("No sessions yet.", width="content")
        with st.container(horizontal=True, vertical_alignment="center", width="content"):
            if sessions:
                with st.popover(f"All sessions ({len(sessions)})", icon=":material/list:"):
                    _all_sessions(sessions)
            st.button("New shell", icon=":material/add:", type="primary", on_click=new_shell)


# --- needs attention (lib.attention) ----------------------------------------------
def _needs_input_first(sessions: list[PtySession]) -> list[PtySession]:
    """Sessions waiting for input first (the longest waiting first), the rest in their own order."""
    waiting = sorted((s for s in sessions if s.attention.state is states.Attention.NEEDS_INPUT),
                     key=lambda s: s.attention.since)
    return waiting + [s for s in sessions if s.attention.state is not states.Attention.NEEDS_INPUT]


def _attention_badge(session: PtySession) -> str:
    """A tab's badge: colour, icon and word, with how long it has waited; none when quiet or exited."""
    state = session.attention.state
    if state not in states.BADGED or state is states.Attention.EXITED:
        return ""
    return states.badge_markdown(state, session.attention.since, time.time()) + " "


def _budget_badge(session_id: str) -> str:
    """Near or over its daily token budget: a badge after the tab's name; nothing otherwise."""
    report = budget_report(runtime().gateway.session_usage(session_id))
    return f" {report.badge}" if report and report.badge else ""


def _open_started(start: Callable[[], PtySession]) -> None:
    """Open the session ``start`` gives, or keep its refusal to show on the next run."""
    try:
        session = start()
    except SessionError as exc:
        st.session_state["session_error"] = str(exc)
        return
    _open(session.id)


def _restart(session_id: str) -> None:
    _open_started(lambda: registry().restart(session_id))


def _close_ended(session_id: str) -> None:
    """An ended session has nothing left to lose but its last screen: close it without asking."""
    try:
        registry().close(session_id)
    except SessionError as exc:
        st.session_state["session_error"] = str(exc)
    _open(None)


def _open_session(current: PtySession) -> None:
    """The open session's facts and actions, then its terminal (greyed with its last screen once ended)."""
    settings = load_settings()
    running = current.status == "running"
    with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute",
                      key="session-head"):
        facts = f"{current.agent} · {current.cwd} · pid {current.pid}"
        if running:
            st.caption(md(f"{facts} · running"), width="content")
        else:
            code = "" if current.exit_code is None else f" with code {current.exit_code}"
            st.caption(md(facts) + f" · :red[**exited{code}**]", width="content")
        actions = st.container(horizontal=True, vertical_alignment="center", width="content")
    with actions:
        if not running:
            st.button("Restart", icon=":material/restart_alt:", type="primary", key=f"restart-{current.id}",
                      on_click=_restart, args=(current.id,),
                      help="Start the same program again in the same folder, under the same name")
        with st.popover("Rename", icon=":material/edit:"):
            new_label = st.text_input("Label", value=current.label, key=f"label-{current.id}", max_chars=80)
            if st.button("Save name", key=f"rename-{current.id}"):
                registry().rename(current.id, new_label)
                st.rerun()
        if running:
            if st.button("Close", icon=":material/close:", key=f"close-{current.id}"):
                confirm_close(current.id, current.label)
        else:
            st.button("Close", icon=":material/close:", key=f"close-{current.id}", on_click=_close_ended,
                      args=(current.id,))
    _budget_notice(current)
    terminal(current.id, font_size=settings.font_size, theme=settings.theme, height=0,
             copy_on_select=settings.copy_on_select, upload_max_bytes=settings.upload_max_bytes,
             notify=settings.notify_desktop, sound=settings.notify_sound,
             key=f"terminal-{current.id}")


def _gone(session_id: str) -> None:
    """The page asked for a session that does not exist (any more)."""
    st.warning(
        f"Session {md(session_id[:40])} no longer exists: the app was restarted, or the session was closed "
        "(here or in another tab), and its terminal went with it. Pick a session above, or start a new shell.",
        icon=":material/link_off:",
    )


def _budget_notice(session: PtySession) -> None:
    """Near or over its daily token budget: say so above the terminal (lib.gateway.usage words it)."""
    report = budget_report(runtime().gateway.session_usage(session.id))
    if report is None or not report.notice:
        return
    if report.state == "over":
        st.error(md(report.notice), icon=":material/block:" if report.refused else ":material/error:")
    else:
        st.warning(md(report.notice), icon=":material/warning:")


def _all_sessions(sessions: list[PtySession]) -> None:
    now = time.time()
    gateway = runtime().gateway
    budget = gateway.budget()
    rows = []
    for s in _needs_input_first(sessions):
        usage = gateway.session_usage(s.id)
        row = {
            "label": s.label,
            "attention": states.plain_text(s.attention.state, s.attention.since, now),
            "agent": s.agent,
            "folder": str(s.cwd),
            "age": age(now - s.created_at),
            "idle": age(now - s.last_activity),
            "running": s.foreground_process() or "",
            "state": _state(s),
            "viewers": s.client_count,
            "model tokens today": usage.get("today_tokens", 0),
        }
        if budget is not None:
            report = budget_report(usage)
            row["budget"] = report.cell if report else ""
        rows.append(row)
    st.dataframe(rows, hide_index=True, width=760)
    total = gateway.usage.today_total().total_tokens
    caption = budget_caption(budget)
    if total or caption:
        st.caption(" ".join(filter(None, [f"Model tokens today, all sessions: {total:,}.", caption])))


# --- sessions ended by a restart (lib.terminal.records) --------------------------
def _resume(session_id: str) -> None:
    _open_started(lambda: registry().resume(session_id))


def _resume_all() -> None:
    started = registry().resume_all()
    if left := registry().ended():
        st.session_state["session_error"] = (f"{len(left)} session(s) could not be resumed (the session cap, "
                                             "a missing folder or program): resume them one by one to see why.")
    if started:
        _open(started[-1].id)


def _dismiss(session_id: str) -> None:
    try:
        registry().close(session_id)
    except SessionError as exc:
        st.session_state["session_error"] = str(exc)
    if st.session_state.get("open_session") == session_id:
        _open(None)


@st.cache_data(max_entries=32, show_spinner=False)
def _screen_html(session_id: str, recorded_at: float, cols: int, rows: int, font_size: int) -> str:
    """The ended session's last screen, drawn again from its recorded output (cached per record)."""
    data = registry().ended_screen(session_id)
    lines = snapshot.render(data, cols, rows, cut=len(data) >= SCREEN_BYTES)  # a tail: skip its first line
    return snapshot.to_html(lines, font_size=font_size) if data else ""


def _ended_sessions(ended: list[SessionRecord], wanted: str | None) -> None:
    """Sessions the app was running when it last stopped: their last screen, Resume, Dismiss."""
    if not ended:
        return
    font_size = load_settings().font_size
    head = st.columns([6, 1], vertical_alignment="bottom")
    head[0].subheader("Ended by a restart", anchor=False)
    if len(ended) > 1:
        head[1].button("Resume all", key="resume-all", on_click=_resume_all, width="stretch")
    now = time.time()
    for record in reversed(ended):
        if record.resumable_conversation:
            then = "Resume continues its conversation"
        else:
            then = "Resume starts a new shell there" if record.agent == "bash" else "Resume starts it afresh there"
        with st.container(border=True, key=f"ended-{record.id}"):
            row = st.columns([5, 1, 1], vertical_alignment="center")
            row[0].markdown(f"**{md(record.label)}**  \n" + md(
                f"{record.agent} · {record.cwd} · ended {age(now - (record.ended_at or now))} ago · {then}"))
            row[1].button("Resume", key=f"resume-{record.id}", type="primary", icon=":material/play_arrow:",
                          on_click=_resume, args=(record.id,), width="stretch")
            row[2].button("Dismiss", key=f"dismiss-{record.id}", on_click=_dismiss, args=(record.id,),
                          width="stretch", help="Forget this session and its last screen")
            with st.expander("Last screen", expanded=record.id == wanted):
                html = _screen_html(record.id, record.recorded_at, record.cols, record.rows, font_size)
                if html:
                    st.html(html)
                else:
                    st.caption("Nothing of its screen was recorded.")


def _capacity(sessions: list[PtySession]) -> None:
    """Memory used of the container's limit and sessions of the cap (lib.capacity refuses below the floor)."""
    memory = capacity.read_memory()
    running = sum(1 for s in sessions if s.status == "running")
    text = f"{running} of {load_settings().session_cap} sessions running"
    if memory is None:
        st.caption(text)
        return
    st.progress(memory.fraction, text=f"Memory {capacity.fmt(memory.used)} of {capacity.fmt(memory.limit)} used"
                f" ({memory.source}) · {text}")


def render() -> None:
    sessions = registry().list()
    ended = registry().ended()
    by_id = {s.id: s for s in sessions}
    ended_ids = {r.id for r in ended}
    asked = st.session_state.get("open_session") or st.query_params.get("session")
    gone = asked if asked and asked not in by_id and asked not in ended_ids else None
    if gone:
        wanted = None  # said plainly below; nothing else is opened in its place
    elif asked:
        wanted = asked
    else:  # "/" opens the newest running session, never an ended one
        live = [s for s in sessions if s.status == "running"]
        wanted = live[-1].id if live else (ended[-1].id if ended else None)
    if not gone:
        _open(wanted)
    _picker(sessions, wanted if wanted in by_id else None)
    _capacity(sessions)
    if error := st.session_state.pop("session_error", None):
        st.error(md(error))
    if gone:
        _gone(gone)
    if wanted in by_id:
        _open_session(by_id[wanted])
    _ended_sessions(ended, wanted)


if __name__ == "__main__":
    render()
