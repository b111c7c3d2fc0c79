"""Answers normalized: anthropic ``Message`` or litellm ``ModelResponse`` -> :class:`Answer`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .._response import Thinking, ToolCall, Usage

__all__ = [
    "Answer",
    "ToolCallBuffer",
    "answer_from_anthropic",
    "answer_from_openai",
    "anthropic_usage",
    "finish_reason",
    "openai_usage",
    "parse_arguments",
]

_FINISH = {
    # Anthropic's stop_reason
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "other",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # OpenAI's finish_reason
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str | None:
    """A provider's stop reason, normalized: stop, length, tool_calls, content_filter, other."""
    if stop_reason is None:
        return None
    return _FINISH.get(stop_reason, "other")


def parse_arguments(arguments: str | None) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict.

    A model may emit arguments that are not a JSON object; they are kept, unparsed, under
    ``"_raw"`` rather than lost, so the caller can see what came.
    """
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


@dataclass(frozen=True, slots=True)
class Answer:
    """One provider's answer in the normalized shape.

    Attributes:
        text: the answer's text (text blocks joined).
        tool_calls: the tool calls asked for, in order.
        finish_reason: normalized (``stop``, ``length``, ``tool_calls``,
            ``content_filter``, ``other``).
        stop_reason: the provider's own value.
        usage: token counts, input counted the same way on every provider.
        thinking: reasoning blocks, with signature and the provider that made them.
        model: the model that answered.
        request_id: the provider's id for the request or response, if any.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    stop_reason: str | None
    usage: Usage
    thinking: tuple[Thinking, ...] = ()
    model: str = ""
    request_id: str | None = None


def answer_from_anthropic(message: Any) -> Answer:
    """Normalize an anthropic ``Message`` (from ``create`` or a stream's final message)."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    thinking: list[Thinking] = []
    for block in message.content:
        kind = block.type
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            calls.append(ToolCall(block.id, block.name, dict(block.input or {})))
        elif kind == "thinking":
            thinking.append(Thinking(block.thinking, block.signature or None, "anthropic"))
        elif kind == "redacted_thinking":
            thinking.append(Thinking("", None, "anthropic", redacted=block.data))
    return Answer(
        text="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=finish_reason(message.stop_reason),
        stop_reason=message.stop_reason,
        usage=anthropic_usage(message.usage),
        thinking=tuple(thinking),
        model=str(message.model),
        request_id=getattr(message, "_request_id", None),
    )


def anthropic_usage(usage: Any) -> Usage:
    """Anthropic's usage; its ``input_tokens`` leaves out cache reads and writes, added here."""
    if usage is None:
        return Usage()
    given = usage.input_tokens
    read = getattr(usage, "cache_read_input_tokens", None)
    write = getattr(usage, "cache_creation_input_tokens", None)
    total = None if given is None else given + (read or 0) + (write or 0)
    return Usage(total, usage.output_tokens, read or 0, write or 0, 0)


def answer_from_openai(response: Any, *, thinking_provider: str = "litellm") -> Answer:
    """Normalize a litellm ``ModelResponse`` (or an OpenAI ``ChatCompletion``).

    Args:
        response: the response, or ``litellm.stream_chunk_builder``'s result for a stream.
        thinking_provider: the provider to tag its thinking blocks with (``"anthropic"``
            when LiteLLM called Claude, whose signatures the native path can replay).
    """
    choice = response.choices[0]
    message = choice.message
    calls = tuple(
        ToolCall(str(call.id), call.function.name or "", parse_arguments(call.function.arguments))
        for call in getattr(message, "tool_calls", None) or ()
    )
    thinking = tuple(
        _thinking(block, thinking_provider)
        for block in getattr(message, "thinking_blocks", None) or ()
    )
    return Answer(
        text=message.content or "",
        tool_calls=calls,
        finish_reason=finish_reason(choice.finish_reason),
        stop_reason=choice.finish_reason,
        usage=openai_usage(getattr(response, "usage", None)),
        thinking=thinking,
        model=str(response.model),
        request_id=getattr(response, "id", None),
    )


def _thinking(block: Any, provider: str) -> Thinking:
    fields: dict[str, Any] = block if isinstance(block, dict) else vars(block)
    if fields.get("type") == "redacted_thinking":
        return Thinking("", None, provider, redacted=fields.get("data"))
    return Thinking(fields.get("thinking") or "", fields.get("signature") or None, provider)


def openai_usage(usage: Any) -> Usage:
    """OpenAI's usage (``prompt_tokens`` already counts cached tokens)."""
    if usage is None:
        return Usage()
    prompt = getattr(usage, "prompt_tokens", None)
    details = getattr(usage, "prompt_tokens_details", None)
    read = getattr(details, "cached_tokens", None) if details is not None else None
    # LiteLLM reports Anthropic's cache writes under Anthropic's name.
    write = getattr(usage, "cache_creation_input_tokens", None)
    out_details = getattr(usage, "completion_tokens_details", None)
    reasoning = getattr(out_details, "reasoning_tokens", None) if out_details else None
    completion = getattr(usage, "completion_tokens", None)
    return Usage(prompt, completion, read or 0, write or 0, reasoning or 0)


class ToolCallBuffer:
    """Assembles tool calls from a stream's argument deltas (either provider's).

    Anthropic streams ``content_block_start`` (id, name) then ``input_json_delta``
    fragments per block index; OpenAI streams ``delta.tool_calls`` entries whose first
    fragment for an index carries id and name. Both map to :meth:`start` and :meth:`add`.
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def start(self, index: int, call_id: str, name: str) -> None:
        """A tool call begins at ``index``."""
        self._calls[index] = [call_id, name, []]

    def add(self, index: int, fragment: str) -> None:
        """More of the arguments' JSON text for the call at ``index``."""
        call = self._calls.get(index)
        if call is None:  # a fragment before its start: keep it, the id may come later
            call = self._calls[index] = ["", "", []]
        call[2].append(fragment)

    def add_openai(self, deltas: Any) -> list[tuple[int, str | None, str | None, str]]:
        """Take one chunk's ``delta.tool_calls``; return ``(index, id, name, fragment)`` each."""
        seen = []
        for delta in deltas or ():
            index = delta.index
            function = delta.function
            name = getattr(function, "name", None) if function is not None else None
            fragment = (getattr(function, "arguments", None) or "") if function else ""
            if delta.id or index not in self._calls:
                self.start(index, delta.id or "", name or "")
            elif name:
                self._calls[index][1] = name
            if fragment:
                self.add(index, fragment)
            seen.append((index, delta.id, name, fragment))
        return seen

    def calls(self) -> tuple[ToolCall, ...]:
        """The calls so far, in index order, with their arguments parsed."""
        return tuple(
            ToolCall(call_id, name, parse_arguments("".join(parts)))
            for _, (call_id, name, parts) in sorted(self._calls.items())
        )
