"""Everything that is not UI: sessions, identity, routes, agents, setup, sync."""

__version__ = "0.1.0"
