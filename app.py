"""Launcher: ``streamlit run app.py`` serves the dashboard and the terminal routes on one port."""

import streamlit as st
from starlette.middleware import Middleware

from lib.lifespan import lifespan
from lib.terminal.routes import build_routes
from lib.access.middleware import SecurityMiddleware

app = st.App(
    "ui.py",
    routes=build_routes(),
    middleware=[Middleware(SecurityMiddleware)],
    lifespan=lifespan,
)
