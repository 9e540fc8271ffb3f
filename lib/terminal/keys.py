"""Per-session keys: an identity only one session's processes hold.

Each session gets a random key in its PTY environment (``CODA_SESSION_KEY``)
together with the app's loopback address (``CODA_APP_URL``). Whatever runs in
that terminal (an agent's hook, its model calls through the app) presents
the key to the app over loopback, and the app maps it to exactly that
session: a hook can never speak for another session. Keys live only in this
process's memory and in the session's environment; they are never logged,
shown, or written to disk, and they die with the app process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

KEY_ENV = "CODA_SESSION_KEY"
APP_URL_ENV = "CODA_APP_URL"
KEY_HEADER = "x-coda-session-key"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "replace")).digest()


class SessionKeys:
    """Issues keys and maps a presented key back to its session id.

    Lookup is by the key's SHA-256, then a constant-time comparison of the
    digests, so neither the dictionary nor the comparison tells an attacker
    how much of a guess was right.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_digest: dict[bytes, str] = {}
        self._by_session: dict[str, bytes] = {}

    def issue(self, session_id: str) -> str:
        """A fresh key for ``session_id`` (replacing any earlier one)."""
        key = secrets.token_urlsafe(32)
        digest = _digest(key)
        with self._lock:
            old = self._by_session.pop(session_id, None)
            if old is not None:
                self._by_digest.pop(old, None)
            self._by_digest[digest] = session_id
            self._by_session[session_id] = digest
        return key

    def session_for(self, key: str | None) -> str | None:
        """The session id ``key`` belongs to, or ``None`` for a wrong, empty or revoked key."""
        if not key or len(key) > 256:
            return None
        digest = _digest(key)
        with self._lock:
            session_id = self._by_digest.get(digest)
            stored = self._by_session.get(session_id) if session_id is not None else None
        if stored is None or not hmac.compare_digest(stored, digest):
            return None
        return session_id

    def revoke(self, session_id: str) -> None:
        """Forget the session's key (it closed): its processes can no longer report."""
        with self._lock:
            digest = self._by_session.pop(session_id, None)
            if digest is not None:
                self._by_digest.pop(digest, None)
