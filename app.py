"""Launcher: ``streamlit run app.py`` serves the dashboard and the app's routes on one port.

It only wires: the services come from ``lib.runtime``, the routes and the
middleware get the services they use.
"""

import streamlit as st
from starlette.middleware import Middleware

from lib.access.middleware import SecurityMiddleware
from lib.lifespan import lifespan
from lib.runtime import runtime
from lib.terminal.routes import EXCEPTION_HANDLERS, build_routes

services = runtime()
app = st.App(
    "ui.py",
    routes=build_routes(services),
    middleware=[Middleware(SecurityMiddleware, owner=services.owner)],
    lifespan=lifespan,
    exception_handlers=EXCEPTION_HANDLERS,
)
