"""Terminals: PTY sessions, their viewers, and the HTTP/WebSocket routes that reach them.

``session`` (one PTY, its scrollback and viewers), ``spec`` (what a session
runs: program, environment, id), ``inputs`` (exactly-once input across
reconnects), ``exitwatch`` (the program's end, at once), ``registry`` (every
session: cap, idle close), ``pump`` (PTY I/O on the server's event loop),
``viewers`` (each viewer's bounded queue), ``scrollback`` (the ring and the
replay plan), ``termstate`` (the modes bytes leave in force), ``protocol``
(control messages and close codes), ``procs`` (ending a session's
processes), ``uploads``, ``errors`` and ``routes``; ``records``,
``recorder`` and ``conversation_ids`` (each session's record on disk, so
sessions outlive the app process) and ``snapshot`` (a last screen drawn again).

May import: ``lib.settings``, ``lib.agents`` (what to start, folder trust),
``lib.attention`` (each session's attention tracker, the hub that pushes it),
``lib.runtime`` (routes only, for the services). Never ``lib.access`` or the UI.
"""
