"""Provider adapters: one small interface, one module per SDK, imported on first use."""

from __future__ import annotations

from ._base import Provider, ProviderFailure, ProviderRequest, ProviderResult

__all__ = ["Provider", "ProviderFailure", "ProviderRequest", "ProviderResult", "make_provider"]


def make_provider(endpoint: object, secrets: object = None) -> Provider:
    """Build the adapter for an endpoint's ``provider`` (imports its SDK lazily)."""
    from ..policy._model import EndpointPolicy

    assert isinstance(endpoint, EndpointPolicy)
    if endpoint.provider == "anthropic":
        from ._anthropic import AnthropicProvider

        return AnthropicProvider(endpoint)
    from ._litellm import LiteLLMProvider

    return LiteLLMProvider(endpoint)
