"""The normalized result of a call and the record of each attempt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ._frozen import fast_init

__all__ = ["Attempt", "Outcome", "Response", "Thinking", "ToolCall", "Usage"]

Outcome = Literal["ok", "error", "skipped"]


@fast_init
@dataclass(frozen=True)
class Attempt:
    """One try at one endpoint, or one endpoint skipped because its breaker was open.

    Attributes:
        endpoint: the endpoint's name.
        outcome: ``"ok"``, ``"error"``, or ``"skipped"`` (open breaker, no request made).
        error: a short failure kind such as ``"connect"``, ``"timeout"``, ``"overloaded"``,
            ``"breaker_open"``; ``None`` when it succeeded.
        status_code: the HTTP status received; ``None`` when no response came.
        latency: seconds spent on this attempt (0 for a skipped one).
        retry: 0 for the first request to this endpoint in this call, 1 for the first retry...
        detail: a short human-readable message (never holds a key or the prompt).
    """

    endpoint: str
    outcome: Outcome
    error: str | None = None
    status_code: int | None = None
    latency: float = 0.0
    retry: int = 0
    detail: str = ""

    def describe(self) -> str:
        """One line for error messages and logs."""
        if self.outcome == "ok":
            return f"{self.endpoint}: ok in {self.latency * 1000:.0f} ms"
        if self.outcome == "skipped":
            return f"{self.endpoint}: skipped ({self.error or 'breaker open'})"
        status = f" HTTP {self.status_code}" if self.status_code is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return (
            f"{self.endpoint}: {self.error}{status} after {self.latency * 1000:.0f} ms"
            f" (try {self.retry + 1}){detail}"
        )


@fast_init
@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them.

    ``input_tokens`` and ``output_tokens`` are ``None`` when the provider reported no
    usage at all, so "nothing reported" is never mistaken for zero tokens. The detail
    counts are 0 when not reported (most answers use no cache and no reasoning).
    ``input_tokens`` is counted the same way on every provider: it includes the tokens
    read from and written to the provider's prompt cache (Anthropic reports those apart
    from its ``input_tokens``; OpenAI's ``prompt_tokens`` already holds them).

    Attributes:
        input_tokens: prompt tokens, cache reads and writes included.
        output_tokens: generated tokens (reasoning tokens included).
        cache_read_tokens: prompt tokens served from the provider's cache.
        cache_write_tokens: prompt tokens written to the provider's cache.
        reasoning_tokens: generated tokens spent on reasoning, where reported apart.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call in an answer, in the same shape from every provider.

    Attributes:
        id: the provider's id for the call (``toolu_...``, ``call_...``), passed back
            unchanged with the tool's result, to either provider.
        name: the tool's name.
        arguments: the arguments, parsed from JSON.
    """

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Thinking:
    """A reasoning block from the answer, kept so it can be replayed to its own provider.

    Attributes:
        text: the reasoning text (empty for a redacted block).
        signature: the provider's signature over it; ``None`` when unsigned.
        provider: who produced it (``"anthropic"``...); signed thinking is replayed
            only to that provider and dropped for the others.
        redacted: the opaque ``data`` of a redacted block, ``None`` otherwise.
    """

    text: str
    signature: str | None = None
    provider: str = "anthropic"
    redacted: str | None = None

    def block(self) -> dict[str, Any]:
        """The block in the ``thinking_blocks`` shape the request parser accepts."""
        if self.redacted is not None:
            return {"type": "redacted_thinking", "data": self.redacted, "provider": self.provider}
        block: dict[str, Any] = {"type": "thinking", "thinking": self.text}
        if self.signature is not None:
            block["signature"] = self.signature
        block["provider"] = self.provider
        return block


@fast_init
@dataclass(frozen=True)
class Response:
    """The answer to one call, whichever endpoint (or the cache) produced it.

    Attributes:
        text: the answer's text.
        endpoint: the endpoint that produced it (for a cached answer, the one that
            produced the cache entry).
        provider: ``"anthropic"`` or ``"litellm"``.
        model: the model name.
        from_cache: ``True`` when served from the fallback cache.
        cache_age: age of the cached answer in seconds, ``None`` when fresh from a provider.
        attempts: every try in order, failed and skipped ones too.
        latency: seconds for the whole call.
        usage: token counts.
        stop_reason: why generation stopped, as the provider said (``"end_turn"``,
            ``"max_tokens"``, ``"stop"``...).
        raw: the provider's own response object, ``None`` when from the cache.
        tool_calls: the tool calls the answer asks for, in order.
        finish_reason: why generation stopped, normalized: ``"stop"``, ``"length"``,
            ``"tool_calls"``, ``"content_filter"`` or ``"other"``.
        thinking: the answer's reasoning blocks (with signature and provider).
    """

    text: str
    endpoint: str
    provider: str
    model: str
    attempts: tuple[Attempt, ...] = ()
    latency: float = 0.0
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    from_cache: bool = False
    cache_age: float | None = None
    raw: Any = field(default=None, repr=False, compare=False)
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    thinking: tuple[Thinking, ...] = field(default=(), repr=False)

    @property
    def message(self) -> dict[str, Any]:
        """The answer as an OpenAI-format assistant message, ready to append to ``messages``.

        Signed thinking travels in ``thinking_blocks`` (LiteLLM's name for it) so the
        next turn can replay it to the provider that signed it.
        """
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in self.tool_calls
            ]
        if self.thinking:
            message["thinking_blocks"] = [block.block() for block in self.thinking]
        return message
