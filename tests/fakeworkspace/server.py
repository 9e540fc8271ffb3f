"""``FakeWorkspace``: a real HTTP server on 127.0.0.1 that the real
databricks-sdk, the coding-agent CLIs and the app (as a subprocess) talk to.

It runs uvicorn with its own event loop in a daemon thread, on a free port
bound before the thread starts (so ``fw.url`` is known at once). The ASGI
stack, outermost first: record -> faults (slow/5xx/429) -> auth -> routes;
``down`` faults act one level lower, in the HTTP protocol, because only
there can a connection be dropped without an answer.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from .auth import AuthMiddleware, oidc_routes
from .errors import ApiError, api_error_handler, error_response, method_not_allowed_handler, not_found_handler
from .faults import FaultMiddleware, FaultRegistry, FaultRule, make_rule, protocol_for
from .identity import identity_routes
from .models import ModelRoutes, ModelSettings
from .recording import RecordingMiddleware
from .state import (
    FaultHit,
    ModelRequest,
    ModelUsage,
    RecordedRequest,
    TokenRecord,
    ToolCall,
    ToolResult,
    WorkspaceState,
)
from .workspace_files import workspace_routes
from .workspace_tree import WorkspaceTree, canonical

if TYPE_CHECKING:  # pragma: no cover
    from databricks.sdk import WorkspaceClient


async def _http_exception_handler(request: Any, exc: Exception) -> Any:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await not_found_handler(request, exc)
    if exc.status_code == 405:
        return await method_not_allowed_handler(request, exc)
    return error_response(exc.status_code, "BAD_REQUEST", str(exc.detail))


class FakeWorkspace:
    """A fake Databricks workspace for tests. See the package docstring for the API."""

    def __init__(
        self,
        owner_email: str = "Owner.Person@example.com",
        app_name: str = "coda-app",
        client_id: str = "sp-client-id",
        client_secret: str = "sp-secret",
        *,
        workspace_id: str = "1234567890123456",
        port: int = 0,
    ) -> None:
        self.state = WorkspaceState(
            owner_email=owner_email,
            app_name=app_name,
            client_id=client_id,
            client_secret=client_secret,
            workspace_id=workspace_id,
        )
        self.tree = WorkspaceTree()
        for folder in ("/Users", "/Shared", f"/Users/{owner_email}", f"/Users/{client_id}"):
            self.tree.mkdirs(folder)
        self.fault_registry = FaultRegistry(self.state)
        self.model_settings = ModelSettings()
        self._port = port
        self._server: Optional[uvicorn.Server] = None
        self._thread: Optional[threading.Thread] = None
        self._stop_signal: Optional[Callable[[], object]] = None
        self._app = self._build_app()

    # wiring ----------------------------------------------------------------
    def _build_app(self) -> Starlette:
        routes = (
            oidc_routes(self.state, lambda: self.url)
            + identity_routes(self.state)
            + workspace_routes(self.tree)
            + ModelRoutes(self.state, self.model_settings).routes()
        )
        return Starlette(
            routes=routes,
            middleware=[
                Middleware(RecordingMiddleware, state=self.state),
                Middleware(FaultMiddleware, registry=self.fault_registry),
                Middleware(AuthMiddleware, state=self.state),
            ],
            exception_handlers={ApiError: api_error_handler, HTTPException: _http_exception_handler},
        )

    # lifecycle -------------------------------------------------------------
    def start(self) -> "FakeWorkspace":
        """Listen on 127.0.0.1 (a free port, or the same port again after ``stop``)."""
        if self._thread is not None:
            raise RuntimeError("FakeWorkspace already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(128)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            http=protocol_for(self.fault_registry),
            ws="none",
            lifespan="off",
            log_level="warning",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_keep_alive=5,
        )
        server = uvicorn.Server(config)
        ready = threading.Event()
        failure: List[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(server, sock, ready))
            except BaseException as exc:  # surfaced by start() if it happens before ready
                failure.append(exc)
            finally:
                sock.close()
                ready.set()

        thread = threading.Thread(target=run, name=f"fakeworkspace-{self._port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        if not ready.wait(timeout=10) or failure or not thread.is_alive():
            self._server = self._thread = None
            raise RuntimeError(f"fake workspace server did not start: {failure!r}")
        return self

    async def _serve(self, server: uvicorn.Server, sock: socket.socket, ready: threading.Event) -> None:
        """uvicorn's startup, then a stop that is immediate (no 0.1 s polling, no
        graceful drain): a stopped fake should refuse connections at once."""
        if not server.config.loaded:
            server.config.load()
        server.lifespan = server.config.lifespan_class(server.config)
        await server.startup(sockets=[sock])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._stop_signal = lambda: loop.call_soon_threadsafe(stop.set)
        ready.set()
        await stop.wait()
        for listener in server.servers:
            listener.close()
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.close()
        for task in list(server.server_state.tasks):
            task.cancel()
        await asyncio.sleep(0)

    def stop(self) -> None:
        """Stop listening and drop open connections (later connections are refused).
        ``start()`` again reuses the port."""
        thread, signal = self._thread, self._stop_signal
        self._server = self._thread = None
        self._stop_signal = None
        if thread is None:
            return
        if signal is not None:
            signal()
        thread.join(timeout=5)

    def __enter__(self) -> "FakeWorkspace":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("FakeWorkspace not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: use as DATABRICKS_HOST (keep the scheme: without
        one the SDK assumes https)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host_without_scheme(self) -> str:
        return f"127.0.0.1:{self.port}"

    # identities and tokens -------------------------------------------------
    @property
    def owner_email(self) -> str:
        return self.state.owner_email

    @property
    def app_name(self) -> str:
        return self.state.app_name

    @property
    def client_id(self) -> str:
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        return self.state.client_secret

    @property
    def workspace_id(self) -> str:
        return self.state.workspace_id

    @property
    def app_creator(self) -> Optional[str]:
        """``creator`` of the app (default: the owner); None makes apps.get 404."""
        return self.state.app_creator

    @app_creator.setter
    def app_creator(self, value: Optional[str]) -> None:
        self.state.app_creator = value

    @property
    def oauth_token_lifetime_s(self) -> int:
        """``expires_in`` of OAuth tokens (default 3600). The SDK refreshes 40 s early."""
        return self.state.oauth_token_lifetime_s

    @oauth_token_lifetime_s.setter
    def oauth_token_lifetime_s(self, value: int) -> None:
        self.state.oauth_token_lifetime_s = int(value)

    def create_token(self, user: Optional[str] = None, lifetime_s: Optional[float] = None, comment: str = "") -> str:
        """A PAT (``dapi...``) for ``user`` (an email, or the client id for the SP;
        default the owner). ``lifetime_s`` None = never expires."""
        identity = self.state.identity_for(user or self.state.owner_email)
        return self.state.create_pat(identity, lifetime_s, comment).value

    def create_oauth_token(self) -> str:
        """An OAuth access token of the app's service principal, without the OIDC round trip."""
        return self.state.create_oauth_token(self.state.service_principal, "all-apis", f"{self.url}/oidc").value

    def revoke_token(self, token: str) -> None:
        """Requests with ``token`` get 403 afterwards (PAT or OAuth token)."""
        self.state.revoke(token)

    def expire_token(self, token: str) -> None:
        """Move ``token``'s expiry into the past; requests with it get 403."""
        self.state.expire(token)

    def revoke_oauth_tokens(self) -> None:
        """Revoke every OAuth token issued so far (the SDK then needs a new one)."""
        for rec in self.state.tokens():
            if rec.kind == "oauth":
                self.state.revoke(rec.value)

    @property
    def tokens(self) -> List[TokenRecord]:
        """Snapshot of every token issued (PATs and OAuth tokens)."""
        return self.state.tokens()

    # workspace files -------------------------------------------------------
    @property
    def files(self) -> Dict[str, bytes]:
        """Snapshot ``{path: bytes}`` of files and notebooks; paths are canonical
        (``/Users/...``, without ``/Workspace``); notebooks lose their extension."""
        return self.tree.files()

    @property
    def directories(self) -> Set[str]:
        """Snapshot of every folder path (canonical)."""
        return self.tree.directories()

    def read_file(self, path: str) -> bytes:
        """Bytes of a file or notebook; ``/Workspace/...`` accepted. FileNotFoundError if missing."""
        canon, _ = canonical(path)
        data = self.tree.files().get(canon)
        if data is None:
            raise FileNotFoundError(path)
        return data

    def list_dir(self, path: str) -> List[str]:
        """Sorted names of a folder's children. FileNotFoundError / NotADirectoryError."""
        canon, _ = canonical(path)
        if canon not in self.tree.directories():
            if self.tree.exists(canon):
                raise NotADirectoryError(path)
            raise FileNotFoundError(path)
        return [n.path.rsplit("/", 1)[1] for n in self.tree.children(canon)]

    def exists(self, path: str) -> bool:
        return self.tree.exists(path)

    def get_status(self, path: str) -> Dict[str, Any]:
        """The ObjectInfo dict the API would return. FileNotFoundError if missing."""
        canon, _ = canonical(path)
        try:
            return self.tree.get(canon).info(canon)
        except ApiError:
            raise FileNotFoundError(path) from None

    def mkdirs(self, path: str) -> None:
        """Create a folder and its parents (seeding state for a test)."""
        self.tree.mkdirs(path)

    def put_file(self, path: str, data: bytes, *, make_parents: bool = True) -> None:
        """Seed a FILE with exact bytes (RAW import, overwriting)."""
        canon, _ = canonical(path)
        if make_parents:
            self.tree.mkdirs(canon.rsplit("/", 1)[0] or "/")
        self.tree.import_(canon, data, format="RAW", overwrite=True)

    # faults ----------------------------------------------------------------
    def set_fault(
        self,
        mode: Optional[str],
        *,
        paths: Optional[Sequence[str]] = None,
        count: Optional[int] = None,
        delay_s: float = 0,
        status: Optional[int] = None,
        retry_after: Optional[int] = None,
    ) -> Optional[FaultRule]:
        """Replace all faults with one rule (``mode=None`` clears). See faults.py.

        ``status`` changes the 5xx code (default 503); ``retry_after`` sets the
        Retry-After header (429 default 1; 5xx default none, which the SDK reads
        as 1 s)."""
        self.fault_registry.clear()
        if mode is None:
            return None
        return self.add_fault(mode, paths=paths, count=count, delay_s=delay_s, status=status, retry_after=retry_after)

    def add_fault(
        self,
        mode: str,
        *,
        paths: Optional[Sequence[str]] = None,
        count: Optional[int] = None,
        delay_s: float = 0,
        status: Optional[int] = None,
        retry_after: Optional[int] = None,
    ) -> FaultRule:
        """Add a rule next to the existing ones (first matching rule wins)."""
        rule = make_rule(mode, paths=paths, count=count, delay_s=delay_s, status=status, retry_after=retry_after)
        return self.fault_registry.add(rule)

    def clear_faults(self) -> None:
        self.fault_registry.clear()

    @property
    def fault_hits(self) -> List[FaultHit]:
        """Every request a fault acted on, in order."""
        return self.state.fault_hits()

    # recordings ------------------------------------------------------------
    @property
    def requests(self) -> List[RecordedRequest]:
        """Snapshot of every request received (unpacks as method, path, headers, body)."""
        return self.state.requests()

    @property
    def model_requests(self) -> List[ModelRequest]:
        """Snapshot of model-endpoint calls (unpacks as path, headers, json)."""
        return self.state.model_requests()

    @property
    def model_tool_calls(self) -> List[ToolCall]:
        """Snapshot of the shell tool calls the models answered with (``model_tool_command``)."""
        return self.state.tool_calls()

    @property
    def model_tool_results(self) -> List[ToolResult]:
        """Snapshot of the tool results the CLIs sent back, once per call id."""
        return self.state.tool_results()

    def clear_requests(self) -> None:
        """Forget recorded requests, model requests, tool calls/results and fault hits."""
        self.state.clear_records()

    # models ----------------------------------------------------------------
    @property
    def model_reply(self) -> str:
        """The text every model endpoint answers with."""
        return self.model_settings.reply

    @model_reply.setter
    def model_reply(self, value: str) -> None:
        self.model_settings.reply = value

    @property
    def model_tool_command(self) -> Optional[str]:
        """A shell command the models ask to run before replying (default None: text only).

        While set, a request that declares the CLI's shell tool and carries no
        tool result yet is answered with one call of that tool running this
        command; once the request carries a tool result, ``model_reply`` as text.
        """
        return self.model_settings.tool_command

    @model_tool_command.setter
    def model_tool_command(self, value: Optional[str]) -> None:
        self.model_settings.tool_command = value or None

    @property
    def model_tool_arguments(self) -> Dict[str, Any]:
        """Extra arguments for the tool call, used where the tool's schema declares them (default {})."""
        return self.model_settings.tool_arguments

    @model_tool_arguments.setter
    def model_tool_arguments(self, value: Dict[str, Any]) -> None:
        self.model_settings.tool_arguments = dict(value or {})

    @property
    def serving_endpoints(self) -> List[str]:
        """Endpoint names listed by ``GET /api/2.0/serving-endpoints`` (a live, mutable list)."""
        return self.model_settings.endpoints

    @serving_endpoints.setter
    def serving_endpoints(self, names: Sequence[str]) -> None:
        self.model_settings.endpoints = list(names)

    @property
    def strict_models(self) -> bool:
        """When True, model calls naming an unlisted endpoint get 404 (default False)."""
        return self.model_settings.strict

    @strict_models.setter
    def strict_models(self, value: bool) -> None:
        self.model_settings.strict = bool(value)

    @property
    def model_chunk_delay_s(self) -> float:
        """Pause between streamed deltas (default 0)."""
        return self.model_settings.chunk_delay_s

    @model_chunk_delay_s.setter
    def model_chunk_delay_s(self, value: float) -> None:
        self.model_settings.chunk_delay_s = float(value)

    @property
    def model_usage(self) -> List[ModelUsage]:
        """Snapshot of the usage each model answer reported (one per call that reported any)."""
        return self.state.model_usage()

    @property
    def model_reject_empty_text(self) -> bool:
        """When True, a request with an empty text content block gets 400, as Databricks answers."""
        return self.model_settings.reject_empty_text

    @model_reject_empty_text.setter
    def model_reject_empty_text(self, value: bool) -> None:
        self.model_settings.reject_empty_text = bool(value)

    @property
    def model_denied_endpoints(self) -> List[str]:
        """Endpoints every caller lacks CAN_QUERY on: 403 PERMISSION_DENIED (a live, mutable list)."""
        return self.model_settings.denied

    @model_denied_endpoints.setter
    def model_denied_endpoints(self, names: Sequence[str]) -> None:
        self.model_settings.denied = list(names)

    # conveniences for other tests ------------------------------------------
    def app_env(self, *, token: Optional[str] = None) -> Dict[str, str]:
        """The variables Databricks Apps injects, pointing at this fake (for a subprocess).

        ``DATABRICKS_HOST`` keeps ``http://``: the platform may omit the scheme,
        but then the SDK assumes https, which this server does not speak."""
        env = {
            "DATABRICKS_HOST": self.url,
            "DATABRICKS_APP_NAME": self.app_name,
            "DATABRICKS_WORKSPACE_ID": self.workspace_id,
            "DATABRICKS_CLIENT_ID": self.client_id,
            "DATABRICKS_CLIENT_SECRET": self.client_secret,
        }
        if token:
            env["DATABRICKS_TOKEN"] = token
        return env

    def workspace_client(
        self,
        *,
        auth_type: str = "pat",
        token: Optional[str] = None,
        retry_timeout_seconds: int = 5,
        **config: Any,
    ) -> "WorkspaceClient":
        """A real ``WorkspaceClient`` for this fake: ``auth_type="pat"`` (a new owner
        PAT unless ``token``) or ``"oauth-m2m"`` (the app's service principal)."""
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.core import Config

        if auth_type == "pat":
            cfg = Config(
                host=self.url,
                token=token or self.create_token(),
                auth_type="pat",
                retry_timeout_seconds=retry_timeout_seconds,
                **config,
            )
        elif auth_type == "oauth-m2m":
            cfg = Config(
                host=self.url,
                client_id=self.client_id,
                client_secret=self.client_secret,
                auth_type="oauth-m2m",
                retry_timeout_seconds=retry_timeout_seconds,
                **config,
            )
        else:
            raise ValueError(f"unsupported auth_type {auth_type!r}")
        return WorkspaceClient(config=cfg)
