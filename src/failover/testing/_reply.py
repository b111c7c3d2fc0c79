"""What the fake answers: the scriptable :class:`Reply` and the plan built from it.

A :class:`Reply` says what the answer contains (text, tool calls, thinking, cache usage);
:func:`plan_answer` turns it and the request into an :class:`Answer`, which the Anthropic
and OpenAI builders render as JSON or as an SSE stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Answer", "FakeToolCall", "PlannedCall", "Reply", "count_media", "plan_answer"]

_WORDS = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    """A tool call the fake answers with.

    Attributes:
        name: the tool's name.
        arguments: the call's arguments (sent as Anthropic ``input`` / OpenAI JSON string).
        id: the call id; by default ``toolu_fake...`` (Anthropic) or ``call_fake...``
            (OpenAI), unique per request and call.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What a successful answer contains, on both APIs, as JSON and as a stream.

    Attributes:
        text: the answer's text; ``None`` uses the fake's ``text``; ``""`` sends no text.
        tool_calls: tool calls to answer with; the stop reason becomes ``tool_use``
            (OpenAI ``tool_calls``). ``(name, arguments)`` pairs are accepted too.
        thinking: a thinking text sent before the answer: an Anthropic ``thinking`` block
            with ``signature``, OpenAI ``reasoning_content`` (as LiteLLM reads it) with
            its words counted as ``reasoning_tokens``.
        signature: the thinking block's signature.
        cache_read_tokens: reported as Anthropic ``cache_read_input_tokens`` and OpenAI
            ``prompt_tokens_details.cached_tokens`` (also added to ``prompt_tokens``).
        cache_write_tokens: reported as Anthropic ``cache_creation_input_tokens`` (OpenAI
            adds them to ``prompt_tokens``).
        usage: ``False`` leaves usage out of the answer entirely.
        describe_media: answer ``"saw N image(s)"`` (plus ``" and M document(s)"`` when
            there are documents) counting the request's images and documents, instead
            of ``text``.
        stop_reason: the provider's stop reason to send as is (e.g. ``"refusal"``,
            ``"content_filter"``); by default it follows from the answer.
    """

    text: str | None = None
    tool_calls: Sequence[FakeToolCall | tuple[str, Mapping[str, Any]]] = ()
    thinking: str | None = None
    signature: str = "fake-signature"
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usage: bool = True
    describe_media: bool = False
    stop_reason: str | None = None

    def __post_init__(self) -> None:
        calls = tuple(
            c if isinstance(c, FakeToolCall) else FakeToolCall(*c) for c in self.tool_calls
        )
        object.__setattr__(self, "tool_calls", calls)
        if self.cache_read_tokens < 0 or self.cache_write_tokens < 0:
            raise ValueError("Reply cache token counts must be >= 0")


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A tool call ready to send: its id, name and arguments as a JSON string."""

    id: str
    name: str
    arguments: dict[str, Any]
    json: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Everything one answer sends, before it is rendered in an API's format."""

    chunks: tuple[str, ...]
    thinking: tuple[str, ...]
    signature: str
    calls: tuple[PlannedCall, ...]
    stop: Literal["end", "length", "tool"]
    stop_reason: str | None
    model: str
    seq: int
    input_tokens: int
    output_tokens: int
    cache_read: int
    cache_write: int
    usage: bool

    @property
    def text(self) -> str:
        """The whole answer text."""
        return "".join(self.chunks)


def plan_answer(
    reply: Reply, body: dict[str, Any], api: Literal["anthropic", "openai"], *, text: str,
    model: str, seq: int,
) -> Answer:  # fmt: skip
    """The answer ``reply`` gives to ``body`` (text truncated to ``max_tokens`` words)."""
    if reply.describe_media:
        images, documents = count_media(body)
        text = f"saw {images} image(s)" + (f" and {documents} document(s)" if documents else "")
    elif reply.text is not None:
        text = reply.text
    chunks, truncated = _answer_chunks(text, _max_tokens(body, api))
    prefix = "toolu_fake" if api == "anthropic" else "call_fake"
    calls = tuple(
        PlannedCall(
            id=call.id or f"{prefix}{seq:06d}{k:02d}",
            name=call.name,
            arguments=dict(call.arguments),
            json=json.dumps(dict(call.arguments), separators=(",", ":")),
        )
        for k, call in enumerate(reply.tool_calls)
        if isinstance(call, FakeToolCall)  # always: __post_init__ converted the pairs
    )
    thinking = tuple(_WORDS.findall(reply.thinking)) if reply.thinking else ()
    if isinstance(body.get("model"), str):
        model = body["model"]
    return Answer(
        chunks=tuple(chunks),
        thinking=thinking,
        signature=reply.signature,
        calls=calls,
        stop="tool" if calls else ("length" if truncated else "end"),
        stop_reason=reply.stop_reason,
        model=model,
        seq=seq,
        input_tokens=count_input_words(body),
        output_tokens=len(chunks) + len(thinking) + len(calls),
        cache_read=reply.cache_read_tokens,
        cache_write=reply.cache_write_tokens,
        usage=reply.usage,
    )


def count_media(body: dict[str, Any]) -> tuple[int, int]:
    """Images and documents in a request's messages (tool results included), either API."""
    images = documents = 0
    stack: list[Any] = list(body.get("messages") or ())
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            kind = item.get("type")
            images += kind in ("image", "image_url")
            documents += kind in ("document", "file")
            stack.extend(v for v in item.values() if isinstance(v, list))
    return images, documents


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


def _answer_chunks(text: str, limit: int | None) -> tuple[list[str], bool]:
    """Split the answer into one chunk per word; truncate to ``limit`` words."""
    chunks: list[str] = _WORDS.findall(text)
    if chunks and text[0].isspace():
        # The pattern skips leading whitespace; keep it so the chunks join to the text.
        chunks[0] = text[: len(text) - len(text.lstrip())] + chunks[0]
    if limit is None or len(chunks) <= limit:
        return chunks, False
    chunks = chunks[: max(limit, 0)]
    if chunks:
        chunks[-1] = chunks[-1].rstrip()
    return chunks, True


def _max_tokens(body: dict[str, Any], api: str) -> int | None:
    keys = ("max_tokens",) if api == "anthropic" else ("max_completion_tokens", "max_tokens")
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
