"""The typed events of ``s.events()``: what a streamed answer is made of, as it arrives.

Provider adapters yield text deltas as plain ``str`` (so ``for text in s`` stays cheap)
and everything else as these events; the stream turns text into :class:`TextDelta` for
``events()`` and adds :class:`Restarted` and :class:`Finished`. Each event has a ``type``
string, so ``match ev.type`` works as well as ``isinstance``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ._response import Response

__all__ = [
    "Finished",
    "Restarted",
    "StreamEvent",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallDelta",
    "ToolCallStart",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """More of the answer's text."""

    type: ClassVar[str] = "text"
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """More of the model's reasoning text (Anthropic thinking, OpenAI reasoning content)."""

    type: ClassVar[str] = "thinking"
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A tool call begins.

    Attributes:
        index: the call's position among this answer's tool calls (0, 1, ...).
        id: the provider's id for the call, to send back with its result.
        name: the tool's name.
    """

    type: ClassVar[str] = "tool_call_start"
    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """More of a tool call's arguments, as JSON text (join them; parse at the end).

    Attributes:
        index: the call's position, as in its :class:`ToolCallStart`.
        arguments: the next fragment of the arguments' JSON.
    """

    type: ClassVar[str] = "tool_call_delta"
    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class Restarted:
    """Everything given so far is void: the answer starts again on ``endpoint``.

    Sent when a stream broke (or failed before its first text) after some content was
    given; clear what you showed and start over.
    """

    type: ClassVar[str] = "restart"
    endpoint: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The answer is complete; the last event of a stream.

    Attributes:
        finish_reason: normalized (``stop``, ``length``, ``tool_calls``,
            ``content_filter``, ``other``).
        response: the whole :class:`~failover.Response` (tool calls parsed, usage).
    """

    type: ClassVar[str] = "finish"
    finish_reason: str | None
    response: Response = field(repr=False)


StreamEvent = TextDelta | ThinkingDelta | ToolCallStart | ToolCallDelta | Restarted | Finished
"""Any event of ``s.events()``."""

ContentEvent = ThinkingDelta | ToolCallStart | ToolCallDelta
"""What a provider adapter yields besides text (``str``) and its final result."""
