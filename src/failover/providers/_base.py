"""The interface every provider adapter implements.

Give ``Router(policy, providers={"name": adapter})`` any object with these methods (an
in-process fake, say) and the router drives it exactly as it drives the built-in ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .._response import Usage

if TYPE_CHECKING:  # _failures imports email.utils: keep it out of `import failover`
    from .._failures import Failure

__all__ = [
    "Provider",
    "ProviderFailure",
    "ProviderRequest",
    "ProviderResult",
    "accepts_prefill",
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


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One request as the router hands it to a provider.

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


@dataclass(frozen=True, slots=True)
class ProviderResult:
    """What a provider returns for a completed request."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    request_id: str | None = None
    raw: Any = None


class ProviderFailure(Exception):
    """A provider's exception, classified. Raised ``from`` the SDK's own exception."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail or failure.kind)
        self.failure = failure


class Provider(Protocol):
    """An adapter for one endpoint's SDK client(s)."""

    name: str

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Send the request and wait for the whole answer; raise ProviderFailure."""

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """The async twin of :meth:`complete`."""

    def stream(self, call: ProviderRequest) -> Iterator[str | ProviderResult]:
        """Yield text deltas, then the final :class:`Result`; raise ProviderFailure."""

    def astream(self, call: ProviderRequest) -> AsyncIterator[str | ProviderResult]:
        """The async twin of :meth:`stream`."""

    def close(self) -> None:
        """Release the sync client's connections."""

    async def aclose(self) -> None:
        """Release the async client's connections."""
