"""Outermost middleware: record every request, stamp Databricks headers.

Recording happens before faults and auth, so tests can count SDK retries
and see rejected calls too. The body is read whole and replayed to the
inner app (requests here are small; uploads are a few MB at most).
"""

from __future__ import annotations

from typing import Any, Dict, List

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .state import RecordedRequest, WorkspaceState


class RecordingMiddleware:
    """Pure ASGI middleware appending a :class:`RecordedRequest` per request."""

    def __init__(self, app: ASGIApp, state: WorkspaceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: List[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers: Dict[str, str] = {}
        for k, v in scope["headers"]:
            key = k.decode("latin-1").lower()
            headers[key] = f"{headers[key]}, {v.decode('latin-1')}" if key in headers else v.decode("latin-1")
        self.state.record_request(
            RecordedRequest(
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
            )
        )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        workspace_id = self.state.workspace_id.encode()

        async def stamp(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: List[Any] = [(b"server", b"databricks")]
                if scope["path"].startswith("/api/"):
                    extra.append((b"x-databricks-org-id", workspace_id))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, replay, stamp)
