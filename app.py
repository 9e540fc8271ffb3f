"""Launcher: ``streamlit run app.py`` (or ``python app.py``) serves the dashboard and the app's routes on one port.

It only wires: the services come from ``lib.runtime``, the routes and the
middleware get the services they use.
"""

import logging
import sys

from lib.environment import keep_secrets_out_of_process_environment

# `python app.py` re-executes itself once here, before anything reads a secret
# or opens the port, so /proc/<pid>/environ of the server holds no secret.
if not keep_secrets_out_of_process_environment(may_reexec=__name__ == "__main__"):
    logging.getLogger("coda").warning(
        "Started with `streamlit run`: the secrets in this process's start environment stay readable from "
        "/proc by the terminals. Start the app with `python app.py` (app.yaml does) to keep them out."
    )

import streamlit as st
from starlette.middleware import Middleware

from lib.access.middleware import SecurityMiddleware
from lib.attention.routes import build_routes as build_attention_routes
from lib.gateway.routes import build_routes as build_gateway_routes
from lib.lifespan import lifespan
from lib.runtime import runtime
from lib.terminal.routes import EXCEPTION_HANDLERS, build_routes

services = runtime()
app = st.App(
    "ui.py",
    routes=build_routes(services) + build_gateway_routes(services.gateway)
    + build_attention_routes(services.sessions.attention),
    middleware=[Middleware(SecurityMiddleware, owner=services.owner)],
    lifespan=lifespan,
    exception_handlers=EXCEPTION_HANDLERS,
)

if __name__ == "__main__":
    # `python app.py` is what Databricks Apps runs when no command is given: the same as `streamlit run app.py`.
    from streamlit.web import cli

    sys.exit(cli.main(["run", __file__, *sys.argv[1:]], prog_name="streamlit"))
