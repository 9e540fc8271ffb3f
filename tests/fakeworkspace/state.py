"""Shared, thread-safe state of one fake workspace: identities, tokens, records.

The server's event loop runs in a background thread while the test thread
creates tokens, revokes them and reads what was recorded, so everything here
sits behind one lock and readers get snapshots (copies), never live lists.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Identity:
    """A workspace principal: the owner (a user) or the app's service principal."""

    id: str
    user_name: str  # SCIM userName: an email for users, the application id for SPs
    display_name: str
    is_service_principal: bool = False
    emails: tuple = ()

    def scim_me(self) -> Dict[str, Any]:
        """The body of ``GET /api/2.0/preview/scim/v2/Me`` for this principal."""
        if self.is_service_principal:
            return {
                "id": self.id,
                "userName": self.user_name,
                "applicationId": self.user_name,
                "displayName": self.display_name,
                "active": True,
                "groups": [{"display": "users", "type": "direct", "value": "100", "$ref": "Groups/100"}],
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal",
                    "urn:ietf:params:scim:schemas:extension:workspace:2.0:ServicePrincipal",
                ],
            }
        given, _, family = self.display_name.partition(" ")
        return {
            "id": self.id,
            "userName": self.user_name,
            "displayName": self.display_name,
            "name": {"givenName": given, "familyName": family},
            "emails": [{"type": "work", "value": e, "primary": i == 0} for i, e in enumerate(self.emails)],
            "active": True,
            "groups": [{"display": "users", "type": "direct", "value": "100", "$ref": "Groups/100"}],
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
            ],
        }


@dataclass
class TokenRecord:
    """One credential the fake accepts as ``Authorization: Bearer``."""

    value: str
    kind: str  # "pat" or "oauth"
    identity: Identity
    token_id: str
    created_at: float
    expires_at: Optional[float]  # epoch seconds; None = never
    comment: str = ""
    revoked: bool = False

    def usable(self, now: Optional[float] = None) -> bool:
        """True while neither revoked nor past its expiry."""
        now = time.time() if now is None else now
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def token_info(self) -> Dict[str, Any]:
        """The ``token_info`` object of the token API (times in epoch ms, -1 = never)."""
        return {
            "token_id": self.token_id,
            "creation_time": int(self.created_at * 1000),
            "expiry_time": -1 if self.expires_at is None else int(self.expires_at * 1000),
            "comment": self.comment,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the server received it (recorded before faults/auth)."""

    method: str
    path: str
    query: str
    headers: Dict[str, str]  # keys lower-cased
    body: bytes
    at: float = field(default_factory=time.time)

    @property
    def query_params(self) -> Dict[str, str]:
        """The query string parsed into a dict (last value wins)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.body.decode("utf-8"))

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``method, path, headers, body``."""
        return iter((self.method, self.path, self.headers, self.body))


@dataclass(frozen=True)
class ModelUsage:
    """The usage a model answer reported (what a client summing usage must arrive at)."""

    api: str  # "anthropic", "responses", "chat" or "gemini"
    model: Optional[str]
    input_tokens: int
    output_tokens: int
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ModelRequest:
    """One call to a model endpoint (any of the four wire APIs)."""

    api: str  # "anthropic", "anthropic-count-tokens", "responses", "chat", "gemini", "gemini-count-tokens"
    path: str
    query: str
    headers: Dict[str, str]
    json: Any
    model: Optional[str]
    stream: bool
    at: float = field(default_factory=time.time)

    def __iter__(self) -> Iterator[Any]:
        """Unpacks as ``path, headers, json``."""
        return iter((self.path, self.headers, self.json))


@dataclass(frozen=True)
class ToolCall:
    """A shell tool call the fake model answered with (``ModelSettings.tool_command``)."""

    api: str  # "anthropic", "responses", "chat" or "gemini"
    call_id: str
    name: str  # the CLI's tool name: "Bash", "exec_command", "run_shell_command", "bash"
    arguments: Dict[str, Any]
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ToolResult:
    """A tool result a CLI sent back in a later request (recorded once per call id)."""

    api: str
    call_id: str  # Gemini without ids: the function name
    output: str  # the result as text (JSON for structured results)
    is_error: bool = False
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class FaultHit:
    """A request a fault rule acted on (so tests can count SDK retries)."""

    mode: str
    method: str
    path: str
    at: float = field(default_factory=time.time)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class WorkspaceState:
    """Identities, tokens and recordings of one fake workspace.

    Why one object: the auth middleware, the token API, the OIDC endpoint and
    the test-facing :class:`~tests.fakeworkspace.server.FakeWorkspace` must
    agree on which tokens exist and who they belong to.
    """

    def __init__(
        self,
        *,
        owner_email: str,
        app_name: str,
        client_id: str,
        client_secret: str,
        workspace_id: str,
    ) -> None:
        self.lock = threading.RLock()
        self.owner_email = owner_email
        self.app_name = app_name
        self.client_id = client_id
        self.client_secret = client_secret
        self.workspace_id = workspace_id
        self.oauth_token_lifetime_s: int = 3600
        # error_code of the 403 for a bad token; the real service has also sent the number 403
        self.invalid_token_error_code: object = "PERMISSION_DENIED"
        # ``creator`` in the apps API; None makes the app 404 (deleted / not visible)
        self.app_creator: Optional[str] = owner_email
        self._ids = itertools.count(1000)
        self._identities: Dict[str, Identity] = {}
        self._tokens: Dict[str, TokenRecord] = {}
        self._requests: List[RecordedRequest] = []
        self._model_requests: List[ModelRequest] = []
        self._model_usage: List[ModelUsage] = []
        self._fault_hits: List[FaultHit] = []
        self._tool_calls: List[ToolCall] = []
        self._tool_results: List[ToolResult] = []
        local = owner_email.split("@", 1)[0]
        display = " ".join(p.capitalize() if p.islower() else p for p in local.replace("_", ".").split(".") if p)
        self.owner = self.identity_for(owner_email, display_name=display or owner_email)
        sp_suffix = hashlib.sha256(client_id.encode()).hexdigest()[:6]
        self.service_principal = Identity(
            id=self._new_id(),
            user_name=client_id,
            display_name=f"app-{sp_suffix} {app_name}",
            is_service_principal=True,
        )
        self._identities[client_id.lower()] = self.service_principal

    # identities ------------------------------------------------------------
    def _new_id(self) -> str:
        return str(7_000_000_000_000_000 + next(self._ids))

    def identity_for(self, user: str, display_name: Optional[str] = None) -> Identity:
        """The principal named ``user`` (email or client id), created on first use."""
        with self.lock:
            key = user.lower()
            found = self._identities.get(key)
            if found is None:
                found = Identity(
                    id=self._new_id(),
                    user_name=user,
                    display_name=display_name or user,
                    emails=(user,) if "@" in user else (),
                )
                self._identities[key] = found
            return found

    # tokens ----------------------------------------------------------------
    def create_pat(self, identity: Identity, lifetime_s: Optional[float], comment: str = "") -> TokenRecord:
        """Issue a personal access token (``dapi`` + 32 hex, like the real ones)."""
        now = time.time()
        rec = TokenRecord(
            value="dapi" + secrets.token_hex(16),
            kind="pat",
            identity=identity,
            token_id=secrets.token_hex(32),
            created_at=now,
            expires_at=None if not lifetime_s or lifetime_s <= 0 else now + lifetime_s,
            comment=comment,
        )
        with self.lock:
            self._tokens[rec.value] = rec
        return rec

    def create_oauth_token(self, identity: Identity, scope: str, issuer: str) -> TokenRecord:
        """Issue an OAuth access token; shaped like a JWT as real ones are."""
        now = time.time()
        exp = now + self.oauth_token_lifetime_s
        header = _b64url(json.dumps({"alg": "RS256", "kid": "fake", "typ": "at+jwt"}).encode())
        claims = {
            "client_id": identity.user_name,
            "scope": scope,
            "iss": issuer,
            "aud": self.workspace_id,
            "sub": identity.user_name,
            "iat": int(now),
            "exp": int(exp),
            "jti": secrets.token_hex(8),
        }
        payload = _b64url(json.dumps(claims).encode())
        rec = TokenRecord(
            value=f"{header}.{payload}.{_b64url(secrets.token_bytes(32))}",
            kind="oauth",
            identity=identity,
            token_id=secrets.token_hex(32),
            created_at=now,
            expires_at=exp,
        )
        with self.lock:
            self._tokens[rec.value] = rec
        return rec

    def lookup_token(self, value: str) -> Optional[TokenRecord]:
        """The record for a token string, usable or not (None if never issued)."""
        with self.lock:
            return self._tokens.get(value)

    def tokens(self) -> List[TokenRecord]:
        """Snapshot of every token ever issued."""
        with self.lock:
            return list(self._tokens.values())

    def revoke(self, value: str) -> None:
        """Make a token stop working (KeyError if it was never issued)."""
        with self.lock:
            self._tokens[value].revoked = True

    def expire(self, value: str) -> None:
        """Move a token's expiry into the past (KeyError if never issued)."""
        with self.lock:
            self._tokens[value].expires_at = time.time() - 1

    def revoke_by_id(self, identity: Identity, token_id: str) -> bool:
        """Token API delete: revoke ``identity``'s PAT with that id; False if none."""
        with self.lock:
            for rec in self._tokens.values():
                if rec.kind == "pat" and rec.token_id == token_id and rec.identity == identity and not rec.revoked:
                    rec.revoked = True
                    return True
            return False

    def list_pats(self, identity: Identity) -> List[TokenRecord]:
        """Token API list: ``identity``'s live PATs."""
        with self.lock:
            return [r for r in self._tokens.values() if r.kind == "pat" and r.identity == identity and r.usable()]

    # recordings ------------------------------------------------------------
    def record_request(self, req: RecordedRequest) -> None:
        with self.lock:
            self._requests.append(req)

    def record_model_request(self, req: ModelRequest) -> None:
        with self.lock:
            self._model_requests.append(req)

    def record_tool_call(self, call: ToolCall) -> None:
        with self.lock:
            self._tool_calls.append(call)

    def record_tool_results(self, results: List[ToolResult]) -> None:
        """Add the results not seen before (each request repeats the earlier ones)."""
        with self.lock:
            seen = {(r.api, r.call_id) for r in self._tool_results}
            for result in results:
                if (result.api, result.call_id) not in seen:
                    seen.add((result.api, result.call_id))
                    self._tool_results.append(result)

    def record_fault_hit(self, hit: FaultHit) -> None:
        with self.lock:
            self._fault_hits.append(hit)

    def requests(self) -> List[RecordedRequest]:
        with self.lock:
            return list(self._requests)

    def model_requests(self) -> List[ModelRequest]:
        with self.lock:
            return list(self._model_requests)

    def fault_hits(self) -> List[FaultHit]:
        with self.lock:
            return list(self._fault_hits)

    def tool_calls(self) -> List[ToolCall]:
        with self.lock:
            return list(self._tool_calls)

    def tool_results(self) -> List[ToolResult]:
        with self.lock:
            return list(self._tool_results)

    def record_model_usage(self, usage: ModelUsage) -> None:
        with self.lock:
            self._model_usage.append(usage)

    def model_usage(self) -> List[ModelUsage]:
        with self.lock:
            return list(self._model_usage)

    def clear_records(self) -> None:
        """Forget recorded requests, model requests, tool calls/results and fault hits."""
        with self.lock:
            self._model_usage.clear()
            self._requests.clear()
            self._model_requests.clear()
            self._fault_hits.clear()
            self._tool_calls.clear()
            self._tool_results.clear()
