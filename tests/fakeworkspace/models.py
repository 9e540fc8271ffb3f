"""Model endpoints: the four wire APIs the coding agents speak, plus the
serving-endpoints list.

The same server plays the serving endpoints host (``H/serving-endpoints/...``)
and the AI gateway (``G/anthropic``, ``G/openai/v1``, ``G/gemini``). Every
call needs a valid Bearer token (checked by the auth middleware), is
recorded as a :class:`~tests.fakeworkspace.state.ModelRequest`, and answers
``ModelSettings.reply`` as plain text, streamed in a few deltas when the
client asks for a stream.

Tool-call mode (``ModelSettings.tool_command`` set): a request that declares
the CLI's shell tool (``Bash`` for Claude Code, ``exec_command`` / ``shell``
/ ``shell_command`` for Codex, ``run_shell_command`` for Gemini CLI, ``bash``
for OpenCode) and carries no tool result yet is answered with ONE call of
that tool running the command, in the API's own form (Anthropic ``tool_use``
with ``input_json_delta``s and ``stop_reason: tool_use``; Responses
``function_call`` item with ``function_call_arguments`` deltas; chat
``tool_calls`` deltas with ``finish_reason: tool_calls``; Gemini
``functionCall`` part). The arguments follow the tool's declared schema
(``command``/``cmd``, a ``description`` when it has one). Requests without
the tool (titles, side checks) and requests carrying a tool result
(``tool_result`` block, ``function_call_output`` item, ``role: tool``
message, ``functionResponse`` part) get the text reply. Calls issued and
results received are recorded (:class:`~tests.fakeworkspace.state.ToolCall`,
:class:`~tests.fakeworkspace.state.ToolResult`).

The wire formats:

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
from .state import ModelRequest, ModelUsage, ToolCall, ToolResult, WorkspaceState

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
    tool_command: Optional[str] = None  # set: first ask to run this in the CLI's shell tool
    # Like Databricks' Claude endpoints: 400 for an empty text content block (OpenCode sends them).
    reject_empty_text: bool = False
    # Endpoints the caller may not query (no CAN_QUERY): 403 PERMISSION_DENIED, as the workspace answers.
    denied: List[str] = field(default_factory=list)
    # Extra arguments for that call, each used only if the chosen tool's schema declares it
    # (e.g. Codex's {"sandbox_permissions": "require_escalated", "justification": ...}).
    tool_arguments: Dict[str, Any] = field(default_factory=dict)


# The CLIs' shell tools, in order of preference when a request declares several.
SHELL_TOOLS = ("Bash", "exec_command", "shell_command", "shell", "run_shell_command", "bash")


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


def _has_empty_text(body: Dict[str, Any]) -> bool:
    """A chat or Anthropic message with a text content block that is empty or blank."""
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "text" and not str(part.get("text") or "").strip():
                return True
    return False


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


def _as_text(value: Any) -> str:
    """A tool result's content as text: strings as is, text blocks joined, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, dict) and isinstance(v.get("text"), str) for v in value):
        return "".join(v["text"] for v in value)
    return json.dumps(value, ensure_ascii=False)


def declared_tools(api: str, body: Dict[str, Any]) -> List[tuple]:
    """``(name, parameters schema)`` of each function tool a request declares."""
    found: List[tuple] = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if api == "gemini":
            for decl in tool.get("functionDeclarations") or []:
                if isinstance(decl, dict) and decl.get("name"):
                    found.append((decl["name"], decl.get("parametersJsonSchema") or decl.get("parameters")))
        elif api == "chat":
            fn = tool.get("function") if isinstance(tool.get("function"), dict) else {}
            if fn.get("name"):
                found.append((fn["name"], fn.get("parameters")))
        elif api == "responses":
            if tool.get("type") == "function" and tool.get("name"):
                found.append((tool["name"], tool.get("parameters")))
        elif tool.get("name"):  # anthropic
            found.append((tool["name"], tool.get("input_schema")))
    return found


def tool_results(api: str, body: Dict[str, Any]) -> List[ToolResult]:
    """The tool results a request carries, in the API's own form."""
    out: List[ToolResult] = []
    if api == "anthropic":
        for msg in body.get("messages") or []:
            content = msg.get("content") if isinstance(msg, dict) else None
            for block in content if isinstance(content, list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    out.append(ToolResult(api, str(block.get("tool_use_id")), _as_text(block.get("content", "")),
                                          bool(block.get("is_error"))))
    elif api == "responses":
        items = body.get("input")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("type") in (
                "function_call_output", "custom_tool_call_output", "local_shell_call_output"
            ):
                out.append(ToolResult(api, str(item.get("call_id")), _as_text(item.get("output", ""))))
    elif api == "chat":
        for msg in body.get("messages") or []:
            if isinstance(msg, dict) and msg.get("role") == "tool":
                out.append(ToolResult(api, str(msg.get("tool_call_id")), _as_text(msg.get("content", ""))))
    elif api == "gemini":
        contents = body.get("contents", (body.get("generateContentRequest") or {}).get("contents", []))
        for content in contents if isinstance(contents, list) else []:
            for part in (content.get("parts") or []) if isinstance(content, dict) else []:
                resp = part.get("functionResponse") if isinstance(part, dict) else None
                if isinstance(resp, dict):
                    response = resp.get("response")
                    is_error = isinstance(response, dict) and "error" in response and "output" not in response
                    out.append(ToolResult(api, str(resp.get("id") or resp.get("name")), _as_text(response),
                                          is_error))
    return out


def shell_arguments(schema: Any, command: str, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Arguments for a shell tool running ``command``, shaped by the tool's schema.

    ``extra`` values are added for the keys the schema declares; others are dropped.
    """
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties") or {}
    required = schema.get("required") or []
    args: Dict[str, Any] = {}
    for key in ("command", "cmd"):
        if key in props or (not props and key == "command"):
            kind = str((props.get(key) or {}).get("type", "string")).lower()
            args[key] = ["bash", "-lc", command] if kind == "array" else command
            break
    if "description" in props:
        args["description"] = "Run the requested shell command"
    args.update({k: v for k, v in (extra or {}).items() if k in props})
    for key in required:
        if key not in args:
            args[key] = _fake_from_schema(props.get(key), "")
    return args


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
        if model in self.settings.denied:
            raise ApiError(403, "PERMISSION_DENIED",
                           f"User does not have permission 'CAN_QUERY' on serving endpoint '{model}'.")
        if self.settings.reject_empty_text and _has_empty_text(body):
            raise ApiError(400, "BAD_REQUEST", "messages: text content blocks must be non-empty")
        return body

    def _reported(self, api: str, model: Optional[str], in_tokens: int, out_tokens: int) -> None:
        """Record the usage an answer reports (once per call, whatever its form)."""
        self.state.record_model_usage(ModelUsage(api, model, in_tokens, out_tokens))

    def _tool_call(self, api: str, body: Dict[str, Any]) -> Optional[ToolCall]:
        """Record the request's tool results; the shell call to answer with, if any."""
        results = tool_results(api, body)
        self.state.record_tool_results(results)
        command = self.settings.tool_command
        if not command or results:
            return None
        tools = dict(declared_tools(api, body))
        name = next((n for n in SHELL_TOOLS if n in tools), None)
        if name is None:
            return None
        prefix = {"anthropic": "toolu_", "responses": "call_", "chat": "call_", "gemini": "call_"}[api]
        arguments = shell_arguments(tools[name], command, self.settings.tool_arguments)
        call = ToolCall(api, prefix + secrets.token_hex(12), name, arguments)
        self.state.record_tool_call(call)
        return call

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
        call = self._tool_call("anthropic", body)
        text = self.settings.reply
        model = body.get("model") or "unknown"
        msg_id = "msg_" + secrets.token_hex(12)
        arguments = json.dumps(call.arguments, ensure_ascii=False) if call else ""
        in_tokens, out_tokens = _tokens(body.get("messages", [])), _tokens(arguments or text)
        self._reported("anthropic", model, in_tokens, out_tokens)
        stop_reason = "tool_use" if call else "end_turn"
        if not body.get("stream"):
            content = (
                [{"type": "tool_use", "id": call.call_id, "name": call.name, "input": call.arguments}]
                if call
                else [{"type": "text", "text": text}]
            )
            return JSONResponse(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": in_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": out_tokens,
                    },
                }
            )
        if call:
            block = {"type": "tool_use", "id": call.call_id, "name": call.name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in _pieces(arguments)]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(text)]
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
            _sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"),
            _sse({"type": "ping"}, "ping"),
        ]
        for delta in deltas:
            events.append(_sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"))
        events += [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
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
        call = self._tool_call("responses", body)
        text = self.settings.reply
        model = body.get("model") or "unknown"
        resp_id = "resp_" + secrets.token_hex(12)
        created = int(time.time())
        arguments = json.dumps(call.arguments, ensure_ascii=False) if call else ""
        in_tokens, out_tokens = _tokens(body.get("input", "")), _tokens(arguments or text)
        self._reported("responses", model, in_tokens, out_tokens)
        usage = {
            "input_tokens": in_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": in_tokens + out_tokens,
        }
        part_done = {"type": "output_text", "text": text, "annotations": []}
        if call:
            item_id = "fc_" + secrets.token_hex(12)
            item_done: Dict[str, Any] = {
                "id": item_id,
                "type": "function_call",
                "status": "completed",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": arguments,
            }
            item_added = {**item_done, "status": "in_progress", "arguments": ""}
        else:
            item_id = "msg_" + secrets.token_hex(12)
            item_done = {
                "id": item_id,
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part_done],
            }
            item_added = {**item_done, "status": "in_progress", "content": []}

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
            return JSONResponse({**response_obj("completed", [item_done], usage), "output_text": "" if call else text})
        seq = iter(range(10_000))

        def event(kind: str, **fields: Any) -> bytes:
            return _sse({"type": kind, "sequence_number": next(seq), **fields}, kind)

        events = [
            event("response.created", response=response_obj("in_progress", [], None)),
            event("response.in_progress", response=response_obj("in_progress", [], None)),
            event("response.output_item.added", output_index=0, item=item_added),
        ]
        if call:
            events += [
                event("response.function_call_arguments.delta", item_id=item_id, output_index=0, delta=piece)
                for piece in _pieces(arguments)
            ]
            events.append(
                event("response.function_call_arguments.done", item_id=item_id, output_index=0, arguments=arguments)
            )
        else:
            at = {"item_id": item_id, "output_index": 0, "content_index": 0}
            events.append(
                event("response.content_part.added", **at, part={"type": "output_text", "text": "", "annotations": []})
            )
            events += [
                event("response.output_text.delta", **at, delta=piece, logprobs=[]) for piece in _pieces(text)
            ]
            events += [
                event("response.output_text.done", **at, text=text, logprobs=[]),
                event("response.content_part.done", **at, part=part_done),
            ]
        events += [
            event("response.output_item.done", output_index=0, item=item_done),
            event("response.completed", response=response_obj("completed", [item_done], usage)),
        ]
        return self._stream(events)

    # OpenAI chat completions -----------------------------------------------
    async def chat_completions(self, request: Request) -> Response:
        name = request.path_params.get("name")
        body = await self._start(request, "chat", model=name)
        call = self._tool_call("chat", body)
        text = self.settings.reply
        model = name or body.get("model") or "unknown"
        chat_id = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())
        arguments = json.dumps(call.arguments, ensure_ascii=False) if call else ""
        in_tokens, out_tokens = _tokens(body.get("messages", [])), _tokens(arguments or text)
        usage = {"prompt_tokens": in_tokens, "completion_tokens": out_tokens, "total_tokens": in_tokens + out_tokens}
        if not body.get("stream") or (body.get("stream_options") or {}).get("include_usage"):
            self._reported("chat", model, in_tokens, out_tokens)
        finish = "tool_calls" if call else "stop"
        if not body.get("stream"):
            message: Dict[str, Any] = {"role": "assistant", "content": text}
            if call:
                message = {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": call.call_id, "type": "function",
                         "function": {"name": call.name, "arguments": arguments}}
                    ],
                }
            return JSONResponse(
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
            )

        def chunk(delta: Dict[str, Any], finish_reason: Optional[str]) -> bytes:
            return _sse(
                {
                    "id": chat_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                }
            )

        if call:
            events = [
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"index": 0, "id": call.call_id, "type": "function",
                             "function": {"name": call.name, "arguments": ""}}
                        ],
                    },
                    None,
                )
            ]
            events += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None)
                for piece in _pieces(arguments)
            ]
        else:
            events = [chunk({"role": "assistant", "content": ""}, None)]
            events += [chunk({"content": piece}, None) for piece in _pieces(text)]
        events.append(chunk({}, finish))
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
        call = self._tool_call("gemini", body)
        if call:
            out_tokens = _tokens(call.arguments)
            self._reported("gemini", model, in_tokens, out_tokens)
            part = {"functionCall": {"id": call.call_id, "name": call.name, "args": call.arguments}}
            reply = {
                "candidates": [{"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {
                    "promptTokenCount": in_tokens,
                    "candidatesTokenCount": out_tokens,
                    "totalTokenCount": in_tokens + out_tokens,
                },
                "modelVersion": model,
                "responseId": hashlib.sha1(secrets.token_bytes(8)).hexdigest()[:22],
            }
            if method == "generateContent":
                return JSONResponse(reply)
            if request.query_params.get("alt") == "sse":
                return self._stream([_sse(reply)])
            return JSONResponse([reply])
        if str(config.get("responseMimeType", "")).startswith("application/json"):
            schema = config.get("responseJsonSchema") or config.get("responseSchema")
            text = json.dumps(_fake_from_schema(schema, self.settings.reply) if schema else {})
        out_tokens = _tokens(text)
        self._reported("gemini", model, in_tokens, out_tokens)
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
