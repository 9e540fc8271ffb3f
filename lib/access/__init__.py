"""Access: who owns this app, and whether a request may reach anything.

``owner`` finds the owner (the app's creator on Databricks Apps) and the app's
own URL, ``decision`` holds the pure rules (is the request addressed to one of
the app's names; is its one signed-in user the owner), ``middleware`` applies
them to every page, route and WebSocket before they run and adds the security
headers, ``loopback`` tells the app's own terminals apart, and ``timeouts``
closes connections that never finish a request head.

May import: ``lib.settings``, ``lib.workspace``. Nothing imports it but the
launcher (``app.py``), ``ui.py`` and ``lib.runtime``.
"""
