"""Needs attention: which session waits for the user, told by the agents themselves.

Each terminal session has one attention state (``states.Attention``):
``working``, ``needs_input``, ``done``, ``idle`` and ``exited`` for agents;
``running`` / ``idle`` (and ``needs_input`` on a bell) for a plain shell.

Where the states come from:

- the agent CLIs' own hooks, installed into each CLI's config by its module
  in ``lib.agents`` (``install`` holds the shared parts): every hook runs
  ``~/.coda/hooks/attention.sh`` (``hooks/attention.sh``, plain bash: no
  interpreter to start), which posts the event over loopback to
  ``{CODA_APP_URL}/_coda/local/attention`` with the session's key
  (``CODA_SESSION_KEY``); OpenCode loads ``hooks/opencode-plugin.js`` instead;
- the terminal itself (``tracker``): for a shell, who holds the foreground
  of the PTY, OSC 133 prompt marks and the bell; for every session, a quiet
  period after "working" and the program's exit.

``events`` turns a hook's report into a state (pure), ``tracker`` keeps one
session's state, ``hub`` knows every session's state, answers reports
(``routes``) and pushes each change to every open terminal WebSocket.

May import: the standard library, Starlette (``routes``), ``lib.access.loopback``,
``lib.settings``, ``lib.timefmt``, ``lib.homefiles``, ``lib.statefile``. Never
``lib.terminal`` (session keys are looked up through a function passed in),
``lib.agents`` (they import ``install``) or the UI.
"""
