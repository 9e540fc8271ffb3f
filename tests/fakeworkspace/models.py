"""Model endpoints: the four wire APIs the coding agents speak, plus the
serving-endpoints list.

The same server plays the serving endpoints host (``H/serving-endpoints/...``)
and the AI gateway (``G/anthropic``, ``G/openai/v1``, ``G/gemini``). Every
call needs a valid Bearer token (checked by the auth middleware), is
recorded as a :class:`~tests.fakeworkspace.state.ModelRequest`, and answers
``ModelSettings.reply`` as plain text (no tool calls), streamed in a few
deltas when the client asks for a stream:

* Anthropic Messages (Claude Code): ``.../v1/messages`` (``?beta=true`` ok)
  SSE ``message_start, content_block_start, ping, content_block_delta
  (text_delta)..., content_block_stop, message_delta, message_stop``; JSON
  when ``stream`` is false; ``.../v1/messages/count_tokens``.
* OpenAI Responses (Codex): ``/serving-endpoints/responses``,
  ``/openai/v1/responses``. Codex needs ``response.output_item.done`` (the
  message) and ``response.completed`` with ``response.id`` and ``usage``
  (``input_tokens``, ``input_tokens_details.cached_tokens``,
  ``output_tokens``, ``output_tokens_details.reasoning_tokens``,
  ``total_tokens``); without ``response.completed`` it fails with "stream
  closed before response.completed".
* OpenAI chat completions (OpenCode): ``/serving-endpoints/chat/completions``,
  ``/openai/v1/chat/completions``, ``/serving-endpoints/{name}/invocations``;
  ``chat.completion.chunk`` lines, a usage chunk when
  ``stream_options.include_usage``, then ``data: [DONE]``.
* Gemini (Gemini CLI via @google/genai): ``.../v1beta/models/{model}:
  streamGenerateContent`` (SSE with ``alt=sse``, else a JSON array),
  ``:generateContent``, ``:countTokens``. The last chunk carries
  ``finishReason: "STOP"`` and ``usageMetadata``. When the request asks for
  JSON (``responseMimeType: application/json``), the reply is a JSON value
  built from the request's schema (first enum value, etc.), since the CLI's
  side calls (next-speaker check) parse it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict, List, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .errors import ApiError
from .state import ModelRequest, WorkspaceState

DEFAULT_ENDPOINTS = (
    "databricks-claude-opus-4-6",
    "databricks-gpt-5-2",
    "databricks-gemini-3-1-pro",
    "databricks-claude-sonnet-4-5",
)


@dataclass
class ModelSettings:
    """What the model endpoints answer; mutated by tests through FakeWorkspace."""

    reply: str = "Hello from the fake model"
    endpoints: List[str] = field(default_factory=lambda: list(DEFAULT_ENDPOINTS))
    strict: bool = False  # True: unknown model names get 404 like a real workspace
    chunk_delay_s: float = 0.0  # pause between streamed deltas


def _sse(data: Any, event: Optional[str] = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"{head}data: {payload}\n\n".encode("utf-8")


def _pieces(text: str, max_pieces: int = 4) -> List[str]:
    """Split ``text`` into a few deltas that concatenate back to it exactly."""
    words = re.findall(r"\s*\S+", text) or [text]
    if len(text) and "".join(words) != text:  # trailing whitespace
        words[-1] += text[len("".join(words)) :]
    size = max(1, -(-len(words) // max_pieces))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def _fake_from_schema(schema: Any, text: str) -> Any:
    """A minimal value satisfying a JSON/Gemini schema (enums take their first value)."""
    if not isinstance(schema, dict):
        return text
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object" if "properties" in schema else "string")).lower()
    if kind == "object":
        return {k: _fake_from_schema(v, text) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        return 0
    if kind == "boolean":
        return False
    return text


class ModelRoutes:
    """Handlers of all model APIs, sharing recording and reply settings."""

    def __init__(self, state: WorkspaceState, settings: ModelSettings) -> None:
        self.state = state
        self.settings = settings

    # helpers ---------------------------------------------------------------
    async def _start(self, request: Request, api: str, model: Optional[str] = None) -> Dict[str, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "Request body must be a JSON object")
        model = model or body.get("model")
        stream = bool(body.get("stream"))
        self.state.record_model_request(
            ModelRequest(
                api=api,
                path=request.url.path,
                query=request.url.query,
                headers={k.lower(): v for k, v in request.headers.items()},
                json=body,
                model=model,
                stream=stream,
            )
        )
        if self.settings.strict and model not in self.settings.endpoints:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{model}' does not exist.")
        return body

    async def _paced(self, events: List[bytes]) -> AsyncIterator[bytes]:
        for ev in events:
            yield ev
            await asyncio.sleep(self.settings.chunk_delay_s)

    def _stream(self, events: List[bytes]) -> StreamingResponse:
        return StreamingResponse(
            self._paced(events), media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )

    # Anthropic -------------------------------------------------------------
    async def anthropic_messages(self, request: Request) -> Response:
        body = await self._start(request, "anthropic")
        text = self.settings.reply
        model = body.get("model") or "unknown"
        msg_id = "msg_" + secrets.token_hex(12)
        in_tokens, out_tokens = _tokens(body.get("messages", [])), _tokens(text)
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": in_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": out_tokens,
                    },
                }
            )
        events = [
            _sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": in_tokens,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                            "output_tokens": 1,
                        },
                    },
                },
                "message_start",
            ),
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            ),
            _sse({"type": "ping"}, "ping"),
        ]
        for piece in _pieces(text):
            events.append(
                _sse(
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                    "content_block_delta",
                )
            )
        events += [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": out_tokens},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return self._stream(events)

    async def anthropic_count_tokens(self, request: Request) -> Response:
        body = await self._start(request, "anthropic-count-tokens")
        return JSONResponse({"input_tokens": _tokens([body.get("system"), body.get("messages", [])])})

    # OpenAI Responses ------------------------------------------------------
    async def responses(self, request: Request) -> Response:
        body = await self._start(request, "responses")
        text = self.settings.reply
        model = body.get("model") or "unknown"
        resp_id = "resp_" + secrets.token_hex(12)
        item_id = "msg_" + secrets.token_hex(12)
        created = int(time.time())
        in_tokens, out_tokens = _tokens(body.get("input", "")), _tokens(text)
        usage = {
            "input_tokens": in_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": in_tokens + out_tokens,
        }
        part_done = {"type": "output_text", "text": text, "annotations": []}
        item_done = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part_done],
        }

        def response_obj(status: str, output: List[Any], usage_: Optional[Dict[str, Any]]) -> Dict[str, Any]:
            return {
                "id": resp_id,
                "object": "response",
                "created_at": created,
                "status": status,
                "model": model,
                "output": output,
                "parallel_tool_calls": True,
                "tool_choice": body.get("tool_choice", "auto"),
                "tools": [],
                "usage": usage_,
                "error": None,
                "incomplete_details": None,
            }

        if not body.get("stream"):
            return JSONResponse({**response_obj("completed", [item_done], usage), "output_text": text})
        seq = iter(range(10_000))
        events = [
            _sse(
                {
                    "type": "response.created",
                    "sequence_number": next(seq),
                    "response": response_obj("in_progress", [], None),
                },
                "response.created",
            ),
            _sse(
                {
                    "type": "response.in_progress",
                    "sequence_number": next(seq),
                    "response": response_obj("in_progress", [], None),
                },
                "response.in_progress",
            ),
            _sse(
                {
                    "type": "response.output_item.added",
                    "sequence_number": next(seq),
                    "output_index": 0,
                    "item": {
                        "id": item_id,
                        "type": "message",
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    },
                },
                "response.output_item.added",
            ),
            _sse(
                {
                    "type": "response.content_part.added",
                    "sequence_number": next(seq),
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                },
                "response.content_part.added",
            ),
        ]
        for piece in _pieces(text):
            events.append(
                _sse(
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": next(seq),
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": [],
                    },
                    "response.output_text.delta",
                )
            )
        events += [
            _sse(
                {
                    "type": "response.output_text.done",
                    "sequence_number": next(seq),
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                },
                "response.output_text.done",
            ),
            _sse(
                {
                    "type": "response.content_part.done",
                    "sequence_number": next(seq),
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "part": part_done,
                },
                "response.content_part.done",
            ),
            _sse(
                {
                    "type": "response.output_item.done",
                    "sequence_number": next(seq),
                    "output_index": 0,
                    "item": item_done,
                },
                "response.output_item.done",
            ),
            _sse(
                {
                    "type": "response.completed",
                    "sequence_number": next(seq),
                    "response": response_obj("completed", [item_done], usage),
                },
                "response.completed",
            ),
        ]
        return self._stream(events)

    # OpenAI chat completions -----------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        name = request.path_params.get("name")
        body = await self._start(request, "chat", model=name)
        text = self.settings.reply
        model = name or body.get("model") or "unknown"
        chat_id = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())
        in_tokens, out_tokens = _tokens(body.get("messages", [])), _tokens(text)
        usage = {"prompt_tokens": in_tokens, "completion_tokens": out_tokens, "total_tokens": in_tokens + out_tokens}
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )

        def chunk(delta: Dict[str, Any], finish: Optional[str]) -> bytes:
            return _sse(
                {
                    "id": chat_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": piece}, None) for piece in _pieces(text)]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                _sse(
                    {
                        "id": chat_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        events.append(_sse("[DONE]"))
        return self._stream(events)

    # Gemini ----------------------------------------------------------------
    async def gemini(self, request: Request) -> Response:
        model, _, method = request.path_params["rest"].rpartition(":")
        if method not in ("streamGenerateContent", "generateContent", "countTokens") or not model:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.url.path}'")
        api = "gemini-count-tokens" if method == "countTokens" else "gemini"
        body = await self._start(request, api, model=model)
        contents = body.get("contents", (body.get("generateContentRequest") or {}).get("contents", []))
        in_tokens = _tokens(contents)
        if method == "countTokens":
            return JSONResponse({"totalTokens": in_tokens})
        config = body.get("generationConfig") or {}
        text = self.settings.reply
        if str(config.get("responseMimeType", "")).startswith("application/json"):
            schema = config.get("responseJsonSchema") or config.get("responseSchema")
            text = json.dumps(_fake_from_schema(schema, self.settings.reply) if schema else {})
        out_tokens = _tokens(text)
        response_id = hashlib.sha1(secrets.token_bytes(8)).hexdigest()[:22]

        def chunk(piece: str, last: bool) -> Dict[str, Any]:
            cand: Dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
            usage = {"promptTokenCount": in_tokens, "totalTokenCount": in_tokens}
            if last:
                cand["finishReason"] = "STOP"
                usage = {
                    "promptTokenCount": in_tokens,
                    "candidatesTokenCount": out_tokens,
                    "totalTokenCount": in_tokens + out_tokens,
                }
            return {"candidates": [cand], "usageMetadata": usage, "modelVersion": model, "responseId": response_id}

        if method == "generateContent":
            return JSONResponse(chunk(text, True))
        pieces = _pieces(text)
        chunks = [chunk(p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
        if request.query_params.get("alt") == "sse":
            return self._stream([_sse(c) for c in chunks])
        return JSONResponse(chunks)

    # serving-endpoints list ------------------------------------------------
    def _endpoint(self, name: str) -> Dict[str, Any]:
        return {
            "name": name,
            "id": hashlib.sha256(name.encode()).hexdigest()[:32],
            "creator": "system",
            "creation_timestamp": 1735689600000,
            "last_updated_timestamp": 1735689600000,
            "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
            "task": "llm/v1/chat",
            "endpoint_type": "FOUNDATION_MODEL_API",
            "config": {"served_entities": [{"name": name, "foundation_model": {"name": name, "display_name": name}}]},
        }

    async def list_endpoints(self, request: Request) -> Response:
        return JSONResponse({"endpoints": [self._endpoint(n) for n in list(self.settings.endpoints)]})

    async def get_endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.settings.endpoints:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist.")
        return JSONResponse(self._endpoint(name))

    def routes(self) -> List[Route]:
        r: List[Route] = [
            Route("/api/2.0/serving-endpoints", self.list_endpoints, methods=["GET"]),
            Route("/api/2.0/serving-endpoints/{name}", self.get_endpoint, methods=["GET"]),
        ]
        for base in ("/serving-endpoints/anthropic", "/anthropic"):
            r.append(Route(f"{base}/v1/messages", self.anthropic_messages, methods=["POST"]))
            r.append(Route(f"{base}/v1/messages/count_tokens", self.anthropic_count_tokens, methods=["POST"]))
        for base in ("/serving-endpoints", "/openai/v1"):
            r.append(Route(f"{base}/responses", self.responses, methods=["POST"]))
            r.append(Route(f"{base}/chat/completions", self.chat_completions, methods=["POST"]))
        r.append(Route("/serving-endpoints/{name}/invocations", self.chat_completions, methods=["POST"]))
        for base in ("/serving-endpoints/google", "/gemini"):
            r.append(Route(base + "/v1beta/models/{rest:path}", self.gemini, methods=["POST"]))
        return r
