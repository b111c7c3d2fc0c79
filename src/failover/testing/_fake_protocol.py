"""Wire formats of the fake provider: Anthropic Messages and OpenAI Chat Completions.

Pure functions that turn a request body into the bytes a real API would send back, split
into the head, the body parts (one per SSE event, or the single JSON body) and the tail,
so the fault modes can send a prefix, interleave an error event or trickle the bytes.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

__all__ = [
    "Api",
    "Wire",
    "api_for_path",
    "count_input_words",
    "error_reply",
    "ok_reply",
    "status_for_error_type",
    "stream_error_part",
]

Api = Literal["anthropic", "openai"]

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Rate limit exceeded"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}

# The status each Anthropic error type stands for, used when an error that normally arrives
# as an SSE event has to be answered to a request that did not ask for a stream.
_STATUS_BY_TYPE: dict[str, int] = {kind: code for code, (kind, _) in _ANTHROPIC_ERRORS.items()}

_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    413: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}

_REASONS = {200: "OK", 413: "Payload Too Large", 529: "Overloaded"}
_WORDS = re.compile(r"\S+\s*")


@dataclass(frozen=True)
class Wire:
    """One HTTP response split where the fault modes need to cut it.

    Attributes:
        head: status line and headers, ending in the blank line.
        parts: the body: one chunk-framed SSE event each for a stream, else the whole body.
        tail: what ends the body (the last chunk of a chunked stream), often empty.
        streaming: whether ``parts`` are SSE events.
    """

    head: bytes
    parts: tuple[bytes, ...]
    tail: bytes = b""
    streaming: bool = False

    def whole(self) -> bytes:
        """The complete response, to be sent in one write."""
        return self.head + b"".join(self.parts) + self.tail


def api_for_path(path: str) -> Api | None:
    """Which API a request path belongs to, or ``None`` for an unknown path."""
    path = path.split("?", 1)[0].rstrip("/")
    if path == "/v1/messages":
        return "anthropic"
    if path.endswith("/chat/completions"):
        return "openai"
    return None


def status_for_error_type(error_type: str) -> int:
    """The HTTP status an Anthropic error type stands for (500 when unknown)."""
    return _STATUS_BY_TYPE.get(error_type, 500)


def count_input_words(body: Any) -> int:
    """Whitespace-separated words in every message's content and the system prompt."""
    if not isinstance(body, dict):
        return 0
    total = _words_in(body.get("system"))
    messages = body.get("messages")
    if isinstance(messages, list):
        total += sum(_words_in(m.get("content")) for m in messages if isinstance(m, dict))
    return total


def _words_in(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(_words_in(block.get("text")) for block in content if isinstance(block, dict))
    return 0


def _answer_chunks(text: str, body: Any, api: Api) -> tuple[list[str], bool]:
    """Split the answer into one chunk per word; truncate to ``max_tokens`` words."""
    chunks: list[str] = _WORDS.findall(text)
    if chunks and text[0].isspace():
        # The pattern skips leading whitespace; keep it so the chunks join to the text.
        chunks[0] = text[: len(text) - len(text.lstrip())] + chunks[0]
    limit = _max_tokens(body, api)
    if limit is None or len(chunks) <= limit:
        return chunks, False
    chunks = chunks[: max(limit, 0)]
    if chunks:
        chunks[-1] = chunks[-1].rstrip()
    return chunks, True


def _max_tokens(body: Any, api: Api) -> int | None:
    if not isinstance(body, dict):
        return None
    keys = ("max_tokens",) if api == "anthropic" else ("max_completion_tokens", "max_tokens")
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _head(status: int, headers: dict[str, str]) -> bytes:
    reason = _REASONS.get(status) or _default_reason(status)
    lines = [f"HTTP/1.1 {status} {reason}", "server: failover-fake"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _default_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _json_wire(status: int, obj: Any, headers: dict[str, str]) -> Wire:
    body = _dumps(obj)
    head = _head(
        status,
        {"content-type": "application/json", "content-length": str(len(body)), **headers},
    )
    return Wire(head=head, parts=(body,))


def _sse_wire(events: list[bytes], headers: dict[str, str]) -> Wire:
    head = _head(
        200,
        {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
            **headers,
        },
    )
    return Wire(
        head=head, parts=tuple(_chunk(e) for e in events), tail=b"0\r\n\r\n", streaming=True
    )


def _anthropic_event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + _dumps({"type": kind, **data}) + b"\n\n"


def _openai_event(data: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(data) + b"\n\n"


def ok_reply(api: Api, body: Any, text: str, *, model: str, seq: int) -> Wire:
    """The successful answer to ``body``: JSON, or SSE when it asked for ``"stream": true``.

    Args:
        api: the API the request was sent to.
        body: the parsed request body.
        text: the answer's full text (truncated here to ``max_tokens`` words).
        model: the model to report when the request named none.
        seq: the request's sequence number, used in the response ids.
    """
    chunks, truncated = _answer_chunks(text, body, api)
    stream = isinstance(body, dict) and body.get("stream") is True
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        model = body["model"]
    build = _anthropic_ok if api == "anthropic" else _openai_ok
    return build(
        chunks,
        truncated=truncated,
        stream=stream,
        model=model,
        seq=seq,
        words_in=count_input_words(body),
    )


def _anthropic_ok(
    chunks: list[str], *, truncated: bool, stream: bool, model: str, seq: int, words_in: int
) -> Wire:
    headers = {"request-id": _request_id(seq)}
    stop_reason = "max_tokens" if truncated else "end_turn"
    message: dict[str, Any] = {
        "id": f"msg_fake{seq:012d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(chunks)}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": words_in, "output_tokens": len(chunks)},
    }
    if not stream:
        return _json_wire(200, message, headers)
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": words_in, "output_tokens": 1},
    }
    events = [
        _anthropic_event("message_start", {"message": start}),
        _anthropic_event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        ),
        _anthropic_event("ping", {}),
    ]
    events += [
        _anthropic_event(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": chunk}}
        )
        for chunk in chunks
    ]
    events += [
        _anthropic_event("content_block_stop", {"index": 0}),
        _anthropic_event(
            "message_delta",
            {
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": len(chunks)},
            },
        ),
        _anthropic_event("message_stop", {}),
    ]
    return _sse_wire(events, headers)


def _openai_ok(
    chunks: list[str], *, truncated: bool, stream: bool, model: str, seq: int, words_in: int
) -> Wire:
    headers = {"x-request-id": _request_id(seq)}
    finish = "length" if truncated else "stop"
    usage = {
        "prompt_tokens": words_in,
        "completion_tokens": len(chunks),
        "total_tokens": words_in + len(chunks),
    }
    base = {"id": f"chatcmpl-fake{seq:012d}", "created": int(time.time()), "model": model}
    if not stream:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": "".join(chunks)},
            "finish_reason": finish,
        }
        return _json_wire(
            200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}, headers
        )
    chunk_base = {**base, "object": "chat.completion.chunk"}

    def delta(content: dict[str, Any], reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": content, "finish_reason": reason}
        return _openai_event({**chunk_base, "choices": [choice]})

    events = [delta({"role": "assistant", "content": ""})]
    events += [delta({"content": chunk}) for chunk in chunks]
    events += [
        delta({}, finish),
        _openai_event({**chunk_base, "choices": [], "usage": usage}),
        b"data: [DONE]\n\n",
    ]
    return _sse_wire(events, headers)


def error_reply(
    api: Api,
    status: int,
    *,
    seq: int,
    error_type: str | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Wire:
    """An error response with the body the real API sends for ``status``.

    Args:
        api: the API whose error format to use.
        status: the HTTP status.
        seq: the request's sequence number, used in the request id.
        error_type: the error's ``type``; by default the one the API uses for ``status``.
        message: the error's message; by default a short one for ``status``.
        headers: extra headers such as ``retry-after``.
    """
    extra = dict(headers or {})
    if api == "anthropic":
        default_type, default_message = _ANTHROPIC_ERRORS.get(status, ("api_error", "API error"))
        body = {"type": error_type or default_type, "message": message or default_message}
        obj = {"type": "error", "error": body, "request_id": _request_id(seq)}
        return _json_wire(status, obj, {"request-id": _request_id(seq), **extra})
    default_type, code = _OPENAI_ERRORS.get(status, ("server_error", None))
    error: dict[str, Any] = {
        "message": message or _ANTHROPIC_ERRORS.get(status, ("", f"HTTP {status}"))[1],
        "type": error_type or default_type,
        "param": None,
        "code": code,
    }
    return _json_wire(status, {"error": error}, {"x-request-id": _request_id(seq), **extra})


def stream_error_part(api: Api, error_type: str, message: str | None = None) -> bytes:
    """A chunk-framed error event inside a 200 stream, as the API sends it under load."""
    message = message or _ANTHROPIC_ERRORS.get(status_for_error_type(error_type), ("", ""))[1]
    if api == "anthropic":
        return _chunk(
            _anthropic_event("error", {"error": {"type": error_type, "message": message}})
        )
    error = {"message": message, "type": error_type, "param": None, "code": None}
    return _chunk(_openai_event({"error": error}))


def _request_id(seq: int) -> str:
    return f"req_fake{seq:012d}"
