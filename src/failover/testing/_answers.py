"""Rendering a planned :class:`~._reply.Answer` in each API's format, as JSON or SSE.

The SSE sequences are the real ones: Anthropic ``message_start``, then per content block
``content_block_start`` / deltas / ``content_block_stop`` (``ping`` after the first
start), ``message_delta`` with the stop reason and usage, ``message_stop``; OpenAI
``chat.completion.chunk`` lines with ``choices[0].delta``, a chunk with the
``finish_reason``, a usage chunk when ``stream_options.include_usage``, ``[DONE]``.
"""

from __future__ import annotations

import time
from typing import Any

from ._reply import Answer, PlannedCall
from ._wire import Wire, dumps, json_wire, sse_wire

__all__ = ["anthropic_answer", "openai_answer", "request_id"]

_ANTHROPIC_STOP = {"end": "end_turn", "length": "max_tokens", "tool": "tool_use"}
_OPENAI_STOP = {"end": "stop", "length": "length", "tool": "tool_calls"}
_FRAGMENT = 12  # characters of tool-call arguments per streamed delta


def request_id(seq: int) -> str:
    """The request id header's value for the ``seq``-th request."""
    return f"req_fake{seq:012d}"


def _fragments(text: str) -> list[str]:
    return [text[i : i + _FRAGMENT] for i in range(0, len(text), _FRAGMENT)]


# -- Anthropic ------------------------------------------------------------------------------


def _anthropic_event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + dumps({"type": kind, **data}) + b"\n\n"


def _anthropic_blocks(answer: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.thinking:
        blocks.append(
            {
                "type": "thinking",
                "thinking": "".join(answer.thinking),
                "signature": answer.signature,
            }
        )
    if answer.chunks or not (blocks or answer.calls):
        blocks.append({"type": "text", "text": answer.text})
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in answer.calls
    ]
    return blocks


def anthropic_answer(answer: Answer, *, stream: bool) -> Wire:
    """The Messages API answer: a ``message`` object, or its SSE stream."""
    headers = {"request-id": request_id(answer.seq)}
    stop_reason = answer.stop_reason or _ANTHROPIC_STOP[answer.stop]
    usage = {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens}
    if answer.cache_read or answer.cache_write:
        # Only when caching happened: the answers' byte sizes stay as tests measured them.
        usage["cache_creation_input_tokens"] = answer.cache_write
        usage["cache_read_input_tokens"] = answer.cache_read
    message: dict[str, Any] = {
        "id": f"msg_fake{answer.seq:012d}",
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": _anthropic_blocks(answer),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }
    if not answer.usage:
        del message["usage"]
    if not stream:
        return json_wire(200, message, headers)
    start = {**message, "content": [], "stop_reason": None}
    if answer.usage:
        start["usage"] = {**usage, "output_tokens": 1}
    events = [_anthropic_event("message_start", {"message": start})]
    for index, block in enumerate(_anthropic_blocks(answer)):
        events += _anthropic_block_events(index, block, answer)
        if index == 0:
            events.insert(2, _anthropic_event("ping", {}))
    delta: dict[str, Any] = {"delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    if answer.usage:
        delta["usage"] = {"output_tokens": answer.output_tokens}
    events += [_anthropic_event("message_delta", delta), _anthropic_event("message_stop", {})]
    return sse_wire(events, headers)


def _anthropic_block_events(index: int, block: dict[str, Any], answer: Answer) -> list[bytes]:
    kind = block["type"]
    first: dict[str, Any]
    deltas: list[dict[str, Any]]
    if kind == "thinking":
        first = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": w} for w in answer.thinking]
        deltas.append({"type": "signature_delta", "signature": answer.signature})
    elif kind == "text":
        first = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": chunk} for chunk in answer.chunks]
    else:
        first = {**block, "input": {}}
        arguments = _fragments(next(c.json for c in answer.calls if c.id == block["id"]))
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *arguments]]
    return [
        _anthropic_event("content_block_start", {"index": index, "content_block": first}),
        *(_anthropic_event("content_block_delta", {"index": index, "delta": d}) for d in deltas),
        _anthropic_event("content_block_stop", {"index": index}),
    ]


# -- OpenAI ---------------------------------------------------------------------------------


def _openai_event(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"


def _openai_usage(answer: Answer) -> dict[str, Any]:
    prompt = answer.input_tokens + answer.cache_read + answer.cache_write
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": answer.output_tokens,
        "total_tokens": prompt + answer.output_tokens,
    }
    # The details only when there is something to report: byte sizes stay as they were.
    if answer.cache_read or answer.cache_write:
        usage["prompt_tokens_details"] = {"cached_tokens": answer.cache_read, "audio_tokens": 0}
    if answer.thinking:
        usage["completion_tokens_details"] = {
            "reasoning_tokens": len(answer.thinking),
            "audio_tokens": 0,
        }
    return usage


def _openai_call(call: PlannedCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.json},
    }


def openai_answer(answer: Answer, *, stream: bool, include_usage: bool) -> Wire:
    """The Chat Completions answer: a ``chat.completion``, or its chunk stream."""
    headers = {"x-request-id": request_id(answer.seq)}
    finish = answer.stop_reason or _OPENAI_STOP[answer.stop]
    base = {
        "id": f"chatcmpl-fake{answer.seq:012d}",
        "created": int(time.time()),
        "model": answer.model,
    }
    if not stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.chunks or not answer.calls else None,
        }
        if answer.thinking:
            message["reasoning_content"] = "".join(answer.thinking)
        if answer.calls:
            message["tool_calls"] = [_openai_call(c) for c in answer.calls]
        body = {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        if answer.usage:
            body["usage"] = _openai_usage(answer)
        return json_wire(200, body, headers)
    chunk_base = {**base, "object": "chat.completion.chunk"}

    def delta(content: dict[str, Any], reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": content, "finish_reason": reason}
        return _openai_event({**chunk_base, "choices": [choice]})

    events = [delta({"role": "assistant", "content": ""})]
    events += [delta({"reasoning_content": word}) for word in answer.thinking]
    events += [delta({"content": chunk}) for chunk in answer.chunks]
    for k, call in enumerate(answer.calls):
        opening = {**_openai_call(call), "index": k}
        opening["function"] = {"name": call.name, "arguments": ""}
        events.append(delta({"tool_calls": [opening]}))
        events += [
            delta({"tool_calls": [{"index": k, "function": {"arguments": part}}]})
            for part in _fragments(call.json)
        ]
    events.append(delta({}, finish))
    if include_usage and answer.usage:
        events.append(_openai_event({**chunk_base, "choices": [], "usage": _openai_usage(answer)}))
    events.append(b"data: [DONE]\n\n")
    return sse_wire(events, headers)
