"""The normalized request: one shape that both providers' translations start from.

The parts of a message are held in the shape of the Anthropic Messages API's content
blocks (text, image, document, tool_use, tool_result, thinking, redacted_thinking, each
with an optional ``cache_control``): it is the richer of the two formats, so nothing is
lost on the way in, and the native Anthropic path is then close to a copy. Two things are
ours: a thinking block carries ``provider`` (who signed it), and a message's content may
stay a plain string (the fast path for plain text). The parts are plain dicts rather than
objects because translation runs on every call and a conversation has many parts: a dict
costs a tenth of a frozen dataclass to build. They are never mutated once parsed.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, TypedDict

__all__ = [
    "InvalidRequest",
    "Message",
    "Part",
    "Request",
    "RequestTranslationError",
    "ToolChoice",
    "UnsupportedRequest",
]

Part = dict[str, Any]
"""One content block in Anthropic's shape (``{"type": "text", "text": ...}``...)."""

Role = Literal["user", "assistant"]
"""A turn's role once normalized (system lifted, tool results in user turns)."""


class Message(TypedDict):
    """One turn: ``user`` (text, images, documents, tool results) or ``assistant``."""

    role: Role
    content: str | list[Part]


class ToolChoice(NamedTuple):
    """Which tool the model must use.

    Attributes:
        mode: ``"auto"``, ``"none"``, ``"required"`` (any tool) or ``"tool"`` (``name``).
        name: the tool's name when ``mode`` is ``"tool"``.
    """

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


class Request(NamedTuple):
    """A request in the normalized form; build it with :func:`parse_request`.

    A named tuple rather than a frozen dataclass: it is built on every call and a frozen
    dataclass costs several times more to construct, for the same immutability.

    Attributes:
        messages: the conversation without its system prompt.
        system: the system prompt, a string or text blocks (``None`` when absent).
        tools: tool definitions in Anthropic's shape (``name``, ``description``,
            ``input_schema``, optional ``cache_control``/``strict``); Anthropic server
            tools (with a ``type`` such as ``web_search_20250305``) are kept as given.
        tool_choice: ``None`` for the provider's default.
        parallel_tool_calls: ``False`` to ask for one tool call at most.
        response_format: OpenAI's ``response_format`` (``json_schema`` or ``json_object``).
        reasoning_effort: OpenAI's effort level (``"low"``...), if given.
        thinking: Anthropic's ``thinking`` configuration, if given.
        params: the portable parameters (``max_tokens``, ``temperature``, ``top_p``,
            ``top_k``, ``stop`` as a list, ``user``, ``stream``...) and every unknown
            keyword, passed through to each provider.
    """

    messages: list[Message]
    system: str | list[Part] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    thinking: dict[str, Any] | None = None
    params: dict[str, Any] = {}  # noqa: RUF012 - never mutated; parse_request gives a fresh one


class RequestTranslationError(ValueError):
    """A request that cannot be translated; ``argument`` names where the problem is."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class InvalidRequest(RequestTranslationError):
    """Malformed input: no provider can take it (``messages[2].content[0]: ...``)."""


class UnsupportedRequest(RequestTranslationError):
    """Valid input that one provider cannot express (skip that endpoint, try the next)."""
