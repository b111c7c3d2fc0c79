"""The router's own openai clients for LiteLLM endpoints served by its ``openai`` provider.

LiteLLM takes a ``client=`` for OpenAI-compatible models. Handing it ours, rather than
letting it build and cache its own, gives the router what it needs from the client:
a tolerant SSE decoder (a malformed event is skipped and logged, see
:mod:`._malformed`), the deadline-bounded network backend (:mod:`failover._deadline`),
clients a forked child rebuilds, and clients :meth:`close` can close. Other LiteLLM
providers keep LiteLLM's own clients.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from typing import Any

import openai

from .. import _deadline, _fork
from ..policy._model import EndpointPolicy
from ._aclose import close_async_quietly
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


class OpenAIClients:
    """One endpoint's openai clients: one sync, one per event loop; made on first use."""

    def __init__(self, endpoint: EndpointPolicy) -> None:
        self._endpoint = endpoint
        self._reset()
        _fork.register(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None
        self._aclients: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], Any]] = {}

    def _after_fork(self) -> None:
        _fork.abandon(self._client, *(client for _, client in self._aclients.values()))
        self._reset()

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

    def sync(self) -> Any:
        """The sync client."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._made(False)
        return self._client

    def current_loop(self) -> Any:
        """The async client of the running event loop."""
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        client = self._made(True)
        with self._lock:
            if entry is not None:
                close_async_quietly(entry[1]._client)
            self._aclients[id(loop)] = (weakref.ref(loop), client)
        return client

    def close(self) -> None:
        """Close the sync client, and quietly the async clients of loops not running."""
        with self._lock:
            client, self._client = self._client, None
            stale = [
                key
                for key, (ref, _) in self._aclients.items()
                if (loop := ref()) is None or loop.is_closed() or not loop.is_running()
            ]
            discarded = [self._aclients.pop(key)[1] for key in stale]
        if client is not None:
            client.close()
        for aclient in discarded:
            close_async_quietly(aclient._client)

    async def aclose(self) -> None:
        """Close the running loop's async client, then the rest as :meth:`close` does."""
        entry = self._aclients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].close()
        self.close()
