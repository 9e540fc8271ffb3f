"""Access: who owns this app, and whether a request may reach anything.

``owner`` finds the owner (the app's creator on Databricks Apps), ``decision``
is the one pure authorization rule, and ``middleware`` applies it to every
page, route and WebSocket before they run.

May import: ``lib.settings``, ``lib.workspace``. Nothing imports it but the
launcher (``app.py``), ``ui.py`` and ``lib.runtime``.
"""
