"""How long ago something happened, in the few characters a page has room for.

Every page that shows an age (a session's idle time, a project's last sync)
uses these, so "5m" means the same thing everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def age(seconds: float) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``: the largest whole unit (negative clock skew counts as 0)."""
    whole = max(0, int(seconds))
    for unit, size in _UNITS:
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def when_and_ago(iso: str | None, now: datetime | None = None) -> str:
    """``2024-05-01 14:03:07 (5m ago)`` in local time for an ISO 8601 stamp; ``never`` for None.

    A stamp that does not parse is shown as it is rather than hidden.
    """
    if not iso:
        return "never"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return f"{when.astimezone().strftime('%Y-%m-%d %H:%M:%S')} ({age((now - when).total_seconds())} ago)"
