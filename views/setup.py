"""Setup: what the boot setup did, how long each step took, and what failed.

The page refreshes itself while setup runs, so a user who opens it during the
first boot watches the CLIs arrive; a failed step shows npm's (or git's)
error and a button that reruns only the failed steps.
"""

from __future__ import annotations

import streamlit as st

from lib.agents.setup import FAILED, OK, PENDING, RUNNING, SKIPPED, StepState
from lib.runtime import runtime
from lib.settings import load_settings
from views.plain import clean, md

_STATUS = {RUNNING: "running", OK: "complete", SKIPPED: "complete", FAILED: "error", PENDING: "running"}


def _step(step: StepState) -> None:
    took = f" · {step.duration_s:.1f} s" if step.duration_s is not None else ""
    label = f"{step.label} — {step.state}{took}"
    # A failed or skipped step is open: what went wrong, or why it did nothing (no token...), shows at once.
    with st.status(label, state=_STATUS.get(step.state, "running"), expanded=step.state in (FAILED, SKIPPED)):
        if step.error:
            st.error(md(step.error))
        if step.detail:
            st.text(clean(step.detail))
        if not step.error and not step.detail:
            st.caption("waiting" if step.state == PENDING else "working…")


@st.fragment(run_every=2)
def _live() -> None:
    setup = runtime().setup
    steps = setup.steps()
    overall = setup.state()
    done = sum(1 for s in steps if s.state in (OK, SKIPPED, FAILED))
    st.progress(done / len(steps) if steps else 1.0, text=f"Setup {overall}: {done} of {len(steps)} steps finished")
    if setup.total_s is not None:
        st.caption(f"Last full run took {setup.total_s:.2f} s.")
    for step in steps:
        _step(step)
    if any(s.state == FAILED for s in steps):
        if st.button("Retry failed steps", type="primary", icon=":material/refresh:", key="setup-retry",
                     disabled=overall == RUNNING):
            if runtime().setup.retry_failed(load_settings()):
                st.toast("Retrying the failed steps…")
            st.rerun(scope="fragment")
    elif overall == "pending":
        if st.button("Run setup now", key="setup-start"):
            runtime().setup.start(load_settings())
            st.rerun(scope="fragment")


def render() -> None:
    st.title("Setup")
    st.caption("Installs the agent CLIs into ~/.local, checks the workspace token, writes each agent's "
               "config files and sets your git identity. It runs in the background at every start.")
    _live()


if __name__ == "__main__":
    render()
