"""The four wire APIs as the gateway sees them: which call is which, errors in each one's shape,
and the one place where a CLI's known incompatibility with Databricks endpoints is fixed.

The gateway's URL is ``/_coda/local/gateway/{api}/{rest}``: ``api`` names the
upstream base (``lib.workspace.endpoints.MODEL_APIS``), ``rest`` is what the
CLI appended. Which *format* a call speaks follows from both:

* ``anthropic``: Anthropic messages (Claude Code), ``.../v1/messages``
* ``responses``: OpenAI responses (Codex), ``.../responses``
* ``chat``: OpenAI chat completions (OpenCode), ``.../chat/completions``
  or ``.../{endpoint}/invocations``
* ``gemini``: Gemini ``...:generateContent`` / ``...:streamGenerateContent``

Calls in none of these (``count_tokens``, model lists) are forwarded as they
are and carry no usage.
"""

from __future__ import annotations

import json
import re
from typing import Any

ANTHROPIC = "anthropic"
RESPONSES = "responses"
CHAT = "chat"
GEMINI = "gemini"

_GEMINI_CALL = re.compile(r"(?:^|/)models/([^/:]+):(generateContent|streamGenerateContent)$")


def call_format(api: str, rest: str) -> str | None:
    """The format of a call to ``{api}/{rest}``, or ``None`` for calls without usage."""
    rest = rest.rstrip("/")
    if api == "anthropic":
        return ANTHROPIC if rest.endswith("messages") else None
    if api in ("openai", "chat"):
        if rest.endswith("responses"):
            return RESPONSES
        if rest.endswith(("chat/completions", "/invocations")):
            return CHAT
        return None
    if api == "gemini":
        return GEMINI if _GEMINI_CALL.search(rest) else None
    return None


def error_family(api: str) -> str:
    """Which error shape the calling CLI understands: ``anthropic``, ``openai`` or ``gemini``."""
    return {"anthropic": "anthropic", "gemini": "gemini"}.get(api, "openai")


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error"}
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED"}


def error_body(api: str, status: int, message: str, kind: str | None = None) -> bytes:
    """A JSON error the CLI calling ``api`` parses and shows: its message is what the user reads."""
    family = error_family(api)
    if family == "anthropic":
        doc: dict[str, Any] = {"type": "error",
                               "error": {"type": kind or _ANTHROPIC_TYPES.get(status, "api_error"),
                                         "message": message}}
    elif family == "gemini":
        doc = {"error": {"code": status, "message": message,
                         "status": _GOOGLE_STATUS.get(status, "UNAVAILABLE" if status >= 500 else "UNKNOWN")}}
    else:
        doc = {"error": {"message": message, "type": kind or ("server_error" if status >= 500 else
                                                               "invalid_request_error"),
                         "code": kind or str(status), "param": None}}
    return json.dumps(doc, ensure_ascii=False).encode()


def model_of(fmt: str | None, rest: str, body: Any) -> str | None:
    """The model (serving endpoint) a call names: in the body, or in Gemini's and invocations' paths."""
    if fmt == GEMINI:
        match = _GEMINI_CALL.search(rest.rstrip("/"))
        return match.group(1) if match else None
    if fmt == CHAT and rest.rstrip("/").endswith("/invocations"):
        return rest.rstrip("/").rsplit("/", 2)[-2]
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def upstream_message(raw: bytes) -> str:
    """The human part of a workspace error body (Databricks, OpenAI, Anthropic or Google shape)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:500]
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if not isinstance(doc, dict):
        return str(doc)[:500]
    error = doc.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:500]
    for key in ("message", "detail", "error_description", "error"):
        if isinstance(doc.get(key), str):
            return doc[key][:500]
    return json.dumps(doc)[:500]


# ---------------------------------------------------------------- request fixes


def _empty_text(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "text" and not str(part.get("text") or "").strip()


def fix_chat_messages(body: dict[str, Any]) -> bool:
    """OpenCode sends empty text content blocks, which Databricks endpoints reject; drop them.

    In each message: empty text parts are removed; an assistant message left
    with nothing but tool calls gets ``content: null`` (what the API wants
    there); a message left with nothing at all is dropped, since it carried
    nothing. Tool results stay as they are, empty or not. Returns whether
    anything changed.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    changed = False
    kept: list[Any] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") == "tool":
            kept.append(message)
            continue
        content = message.get("content")
        if isinstance(content, list) and any(_empty_text(part) for part in content):
            content = [part for part in content if not _empty_text(part)]
            message = {**message, "content": content}
            changed = True
        empty = content is None or content == [] or (isinstance(content, str) and not content.strip())
        if empty and message.get("tool_calls"):
            if content is not None:
                message = {**message, "content": None}
                changed = True
        elif empty and message.get("role") in ("assistant", "user"):
            changed = True
            continue
        kept.append(message)
    if changed:
        body["messages"] = kept
    return changed


def ask_for_usage(body: dict[str, Any]) -> bool:
    """Streamed chat completions report usage only when asked (``stream_options.include_usage``)."""
    if not body.get("stream"):
        return False
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        return False
    body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return True


def fix_request(fmt: str | None, body: Any) -> bool:
    """Apply every fix for ``fmt`` to the parsed request ``body`` in place; whether it changed."""
    if fmt == CHAT and isinstance(body, dict):
        fixed = fix_chat_messages(body)
        return ask_for_usage(body) or fixed
    return False
