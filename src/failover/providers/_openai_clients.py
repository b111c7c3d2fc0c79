"""The router's own openai clients for LiteLLM endpoints served by its ``openai`` provider.

LiteLLM takes a ``client=`` for OpenAI-compatible models. Handing it ours, rather than
letting it build and cache its own, gives the router what it needs from the client:
a tolerant SSE decoder (a malformed event is skipped and logged, see
:mod:`._malformed`), the deadline-bounded network backend (:mod:`failover._deadline`),
clients a forked child rebuilds, and clients :meth:`close` can close. Other LiteLLM
providers keep LiteLLM's own clients.
"""

from __future__ import annotations

import functools
from typing import Any

import openai

from .. import _deadline
from ..policy._model import EndpointPolicy
from ._clients import ClientPool
from ._malformed import TolerantDecoder

__all__ = ["OpenAIClients"]


@functools.lru_cache(maxsize=2)
def _client_class(is_async: bool) -> type[Any]:
    base: type[Any] = openai.AsyncOpenAI if is_async else openai.OpenAI
    if not callable(getattr(base, "_make_sse_decoder", None)):
        return base

    class Client(base):  # type: ignore[misc]
        failover_endpoint = ""
        failover_model = ""

        def _make_sse_decoder(self) -> Any:
            inner = super()._make_sse_decoder()
            return TolerantDecoder(inner, self.failover_endpoint, self.failover_model, "litellm")

    return Client


class OpenAIClients(ClientPool):
    """One endpoint's openai clients: one sync, one per event loop; made on first use."""

    def __init__(self, endpoint: EndpointPolicy) -> None:
        self._endpoint = endpoint
        super().__init__(self._made)

    def _made(self, is_async: bool) -> Any:
        ep = self._endpoint
        client = _client_class(is_async)(
            api_key=None if ep.api_key is None else ep.api_key.reveal(),
            base_url=ep.base_url,
            max_retries=0,
        )
        client.failover_endpoint = ep.name
        client.failover_model = ep.model
        _deadline.install(client._client)
        return client
