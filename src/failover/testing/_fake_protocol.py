"""Wire formats of the fake provider: Anthropic Messages and OpenAI Chat Completions.

Pure functions that turn a request body into the bytes a real API would send back, split
into the head, the body parts (one per SSE event, or the single JSON body) and the tail,
so the fault modes can send a prefix, interleave an error event or trickle the bytes.
"""

from __future__ import annotations

from typing import Any, Literal

from ._answers import anthropic_answer, openai_answer, request_id
from ._reply import Reply, count_input_words, plan_answer
from ._wire import Wire, body_wire, chunk, dumps, json_wire

__all__ = [
    "Api",
    "Wire",
    "api_for_path",
    "count_input_words",
    "echo_reply",
    "error_reply",
    "malformed_body",
    "malformed_part",
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


def error_reply(
    api: Api,
    status: int,
    *,
    seq: int,
    error_type: str | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
    param: str | None = None,
) -> Wire:
    """An error response with the body the real API sends for ``status``.

    Args:
        api: the API whose error format to use.
        status: the HTTP status.
        seq: the request's sequence number, used in the request id.
        error_type: the error's ``type``; by default the one the API uses for ``status``.
        message: the error's message; by default a short one for ``status``.
        headers: extra headers such as ``retry-after``.
        param: the OpenAI error's ``param`` (the field at fault).
    """
    extra = dict(headers or {})
    if api == "anthropic":
        default_type, default_message = _ANTHROPIC_ERRORS.get(status, ("api_error", "API error"))
        body = {"type": error_type or default_type, "message": message or default_message}
        obj = {"type": "error", "error": body, "request_id": request_id(seq)}
        return json_wire(status, obj, {"request-id": request_id(seq), **extra})
    default_type, code = _OPENAI_ERRORS.get(status, ("server_error", None))
    error: dict[str, Any] = {
        "message": message or _ANTHROPIC_ERRORS.get(status, ("", f"HTTP {status}"))[1],
        "type": error_type or default_type,
        "param": param,
        "code": code,
    }
    return json_wire(status, {"error": error}, {"x-request-id": request_id(seq), **extra})


def stream_error_part(api: Api, error_type: str, message: str | None = None) -> bytes:
    """A chunk-framed error event inside a 200 stream, as the API sends it under load."""
    message = message or _ANTHROPIC_ERRORS.get(status_for_error_type(error_type), ("", ""))[1]
    if api == "anthropic":
        data = {"type": "error", "error": {"type": error_type, "message": message}}
        return chunk(b"event: error\ndata: " + dumps(data) + b"\n\n")
    error = {"message": message, "type": error_type, "param": None, "code": None}
    return chunk(b"data: " + dumps({"error": error}) + b"\n\n")


def ok_reply(
    api: Api, body: dict[str, Any], reply: Reply, *, text: str, model: str, seq: int
) -> Wire:
    """The successful answer to ``body``: JSON, or SSE when it asked for ``"stream": true``.

    Args:
        api: the API the request was sent to.
        body: the parsed request body.
        reply: what the answer contains.
        text: the answer's text unless ``reply`` says otherwise (truncated to ``max_tokens``
            words).
        model: the model to report when the request named none.
        seq: the request's sequence number, used in the response ids.
    """
    answer = plan_answer(reply, body, api, text=text, model=model, seq=seq)
    stream = body.get("stream") is True
    if api == "anthropic":
        return anthropic_answer(answer, stream=stream)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return openai_answer(answer, stream=stream, include_usage=include_usage)


def malformed_part(api: Api) -> bytes:
    """A chunk-framed SSE event whose data line is not valid JSON."""
    if api == "anthropic":
        return chunk(
            b'event: content_block_delta\ndata: {"type": "content_block_delta", "index\n\n'
        )
    return chunk(b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content\n\n')


def malformed_body(seq: int) -> Wire:
    """HTTP 200 with a JSON content type and a body that is not JSON."""
    body = b'{"id": "msg_fake", "content": [{"type": "text", "text": "Hel'
    return body_wire(200, body, {"request-id": request_id(seq)})


def echo_reply(api: Api, code: int, headers: dict[str, str], body: Any, *, seq: int) -> Wire:
    """An error whose message quotes the request's API key and prompt, as some providers do."""
    keys = [headers.get("x-api-key", ""), headers.get("authorization", "").removeprefix("Bearer ")]
    key = " / ".join(k for k in keys if k) or "(none)"
    prompt = " ".join(_texts(body.get("messages") if isinstance(body, dict) else None))
    message = f"Incorrect API key provided: {key}. Your request was: {prompt}"
    return error_reply(api, code, seq=seq, message=message)


def _texts(content: Any) -> list[str]:
    """Every text in a request's messages, in order."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [t for item in content for t in _texts(item)]
    if isinstance(content, dict):
        found = [content["text"]] if isinstance(content.get("text"), str) else []
        return found + _texts(content.get("content"))
    return []
