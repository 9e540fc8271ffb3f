"""The model gateway: every agent's model calls go through the app, over loopback.

Agents' config files point at ``http://127.0.0.1:PORT[/base]/_coda/local/gateway/{api}``
and present their session's key (``CODA_SESSION_KEY``) instead of a
workspace token. The gateway accepts only local, non-forwarded requests with
a valid key, forwards each call to the AI Gateway or the serving endpoints
with fresh workspace credentials (``lib.workspace.credentials``), streams the
answer back chunk by chunk, fixes known CLI/endpoint incompatibilities in one
place, and counts every session's tokens.

``proxy`` is the service (``Gateway``), ``routes`` its Starlette route,
``upstream`` the connection pool to the workspace, ``wire`` what differs
between the four wire APIs (formats, error shapes, request fixes), ``usage``
the per-session token count.

The runtime builds one ``Gateway`` (``runtime().gateway``); pages read
``gateway.session_usage(id)`` and ``gateway.usage.today_total()``, and
``runtime().credentials.status()`` says which credential model calls use.

May import: ``lib.workspace``, ``lib.settings``, ``lib.access.loopback``,
httpx/httpcore and Starlette. Never ``lib.terminal`` (session keys are looked up
through a function the runtime passes in), ``lib.agents``, or the UI.
"""
