"""The interface every provider adapter implements.

Give ``Router(policy, providers={"name": adapter})`` any object with these methods (an
in-process fake, say) and the router drives it exactly as it drives the built-in ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._response import Thinking, ToolCall, Usage

if TYPE_CHECKING:  # _failures imports email.utils: keep it out of `import failover`
    from .._failures import Failure
    from .._stream_events import ContentEvent
    from ..conversation import Answer, RequestTranslationError

# Usage is frozen: one instance serves every result that reported none.
_NOT_REPORTED = Usage()

__all__ = [
    "Provider",
    "ProviderFailure",
    "ProviderRequest",
    "ProviderResult",
    "accepts_prefill",
    "result_from_answer",
    "untranslatable",
]


def accepts_prefill(endpoint: Any) -> bool:
    """Whether ``endpoint`` continues a partial answer given as a final assistant message.

    The endpoint's ``prefill:`` setting decides when given. Otherwise: Anthropic's
    Messages API continues a prefill (Claude models served through LiteLLM's
    ``anthropic/`` prefix too); OpenAI-compatible APIs take a trailing assistant message
    but answer anew rather than continue it, so they restart instead.
    """
    declared = getattr(endpoint, "prefill", None)
    if declared is not None:
        return bool(declared)
    if endpoint.provider == "anthropic":
        return True
    return str(endpoint.model).startswith(("anthropic/", "bedrock/anthropic.", "vertex_ai/claude"))


class ProviderRequest(NamedTuple):
    """One request as the router hands it to a provider (a named tuple: made per call).

    Attributes:
        messages: the caller's messages (OpenAI style; ``system`` role allowed).
        params: every other keyword (``max_tokens``, ``temperature``, ``system``...),
            the endpoint's ``params`` already merged under the caller's.
        connect_timeout: seconds allowed to connect, already bounded by the deadline.
        read_timeout: seconds allowed per read, already bounded by the deadline.
        idle_timeout: for streams, the longest gap allowed between two deltas.
    """

    messages: Sequence[Mapping[str, Any]]
    params: Mapping[str, Any]
    connect_timeout: float
    read_timeout: float
    idle_timeout: float = 30.0


class ProviderResult(NamedTuple):
    """What a provider returns for a completed request (a named tuple: made per call).

    Attributes:
        text: the answer's text.
        model: the model that answered.
        usage: token counts (input counted the same way on every provider).
        stop_reason: the provider's own stop reason.
        request_id: the provider's id for the request, if any.
        raw: the SDK's response object.
        tool_calls: the tool calls asked for, in order.
        finish_reason: the stop reason normalized; ``None`` lets the router derive it.
        thinking: the answer's reasoning blocks.
    """

    text: str
    model: str
    usage: Usage = _NOT_REPORTED
    stop_reason: str | None = None
    request_id: str | None = None
    raw: Any = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    thinking: tuple[Thinking, ...] = ()


def result_from_answer(answer: Answer, raw: Any) -> ProviderResult:
    """A normalized answer (``failover.conversation``) as the router takes it."""
    return ProviderResult(
        text=answer.text,
        model=answer.model,
        usage=answer.usage,
        stop_reason=answer.stop_reason,
        request_id=answer.request_id,
        raw=raw,
        tool_calls=answer.tool_calls,
        finish_reason=answer.finish_reason,
        thinking=answer.thinking,
    )


class ProviderFailure(Exception):
    """A provider's exception, classified. Raised ``from`` the SDK's own exception."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail or failure.kind)
        self.failure = failure


def untranslatable(exc: RequestTranslationError, detail: str | None = None) -> ProviderFailure:
    """A request this endpoint cannot take, raised before anything is sent.

    Malformed input (``InvalidRequest``) is wrong for every endpoint: ``invalid_request``,
    so the route stops with ``RequestError``. A request this endpoint alone cannot
    express (``UnsupportedRequest``) is ``unsupported``: the route skips to the next
    endpoint without a breaker failure.
    """
    from .._failures import Failure
    from ..conversation import InvalidRequest

    text = detail or str(exc)
    if isinstance(exc, InvalidRequest):
        return ProviderFailure(Failure("invalid_request", status_code=None, detail=text))
    return ProviderFailure(Failure("unsupported", status_code=None, detail=text))


class Provider(Protocol):
    """An adapter for one endpoint's SDK client(s)."""

    name: str

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Send the request and wait for the whole answer; raise ProviderFailure."""

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """The async twin of :meth:`complete`."""

    def stream(self, call: ProviderRequest) -> Iterator[str | ContentEvent | ProviderResult]:
        """Yield text deltas (``str``) and other content events (thinking, tool calls),
        then the final :class:`ProviderResult`; raise ProviderFailure."""

    def astream(self, call: ProviderRequest) -> AsyncIterator[str | ContentEvent | ProviderResult]:
        """The async twin of :meth:`stream`."""

    def close(self) -> None:
        """Release the sync client's connections."""

    async def aclose(self) -> None:
        """Release the async client's connections."""
