"""Provider adapters: one small interface, one module per SDK, imported on first use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from ._base import Provider, ProviderFailure, ProviderRequest, ProviderResult

if TYPE_CHECKING:
    from .._failures import Failure

__all__ = [
    "Failure",
    "Provider",
    "ProviderFailure",
    "ProviderRequest",
    "ProviderResult",
    "Unavailable",
    "make_provider",
]

_EXTRA_HINT = {
    "litellm": "litellm is not installed: pip install 'failover[litellm]'",
    "anthropic": "anthropic is not installed: pip install failover",
}


def make_provider(endpoint: Any, secrets: object = None) -> Provider:
    """Build the adapter for an endpoint's ``provider`` (imports its SDK lazily).

    When the provider's SDK cannot be imported (a missing extra), the adapter returned
    fails every call as ``misconfigured`` with an install hint, so the route skips the
    endpoint and the others still answer.
    """
    from ..policy._model import EndpointPolicy

    assert isinstance(endpoint, EndpointPolicy)
    try:
        if endpoint.provider == "anthropic":
            from ._anthropic import AnthropicProvider

            return AnthropicProvider(endpoint)
        from ._litellm import LiteLLMProvider

        return LiteLLMProvider(endpoint)
    except ImportError as exc:
        hint = _EXTRA_HINT.get(endpoint.provider, f"{endpoint.provider}: {exc}")
        return Unavailable(endpoint.provider, hint)


class Unavailable:
    """The adapter of an endpoint whose SDK is not installed: every call fails at once."""

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        self.detail = detail

    def _failure(self) -> ProviderFailure:
        from .._failures import Failure

        failure: Failure = Failure("misconfigured", detail=self.detail)
        return ProviderFailure(failure)

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Fail: the SDK is missing."""
        raise self._failure()

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """Fail: the SDK is missing."""
        raise self._failure()

    def stream(self, call: ProviderRequest) -> Iterator[str | ProviderResult]:
        """Fail: the SDK is missing."""
        raise self._failure()
        yield  # type: ignore[unreachable]  # a generator, as the interface expects

    async def astream(self, call: ProviderRequest) -> AsyncIterator[str | ProviderResult]:
        """Fail: the SDK is missing."""
        raise self._failure()
        yield  # type: ignore[unreachable]

    def close(self) -> None:
        """Nothing to close."""

    async def aclose(self) -> None:
        """Nothing to close."""


def __getattr__(name: str) -> Any:
    # Failure (for adapters of your own: raise ProviderFailure(Failure("server", 503)))
    # imports email.utils; load it when first asked for.
    if name == "Failure":
        from .._failures import Failure

        return Failure
    raise AttributeError(f"module 'failover.providers' has no attribute {name!r}")
