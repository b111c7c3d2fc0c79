"""The Anthropic adapter: the native SDK (anthropic >= 2.13, on httpx2), retries off."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import anthropic
import httpx2

from .. import _deadline
from .._failures import Failure, failure_from_status, status_for_error_type
from .._response import Usage
from ..policy._model import EndpointPolicy
from ._base import ProviderFailure, ProviderRequest, ProviderResult

__all__ = ["AnthropicProvider", "classify", "to_anthropic"]

# Anthropic requires max_tokens; LiteLLM's Router uses the same default for Claude.
DEFAULT_MAX_TOKENS = 4096


def classify(exc: BaseException) -> Failure:
    """Map an exception from the anthropic SDK (or httpx2 under it) to a :class:`Failure`."""
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure("timeout", detail="timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        name = type(cause).__name__ if cause is not None else "connection error"
        return Failure("connect", detail=name)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        error_type = getattr(exc, "type", None)
        if status < 400:
            # An error event inside a 200 stream: its type says what it stands for.
            status = status_for_error_type(error_type) or 500
        detail = error_type or f"HTTP {status}"
        message = getattr(exc, "api_message", None)
        if message:
            detail = f"{detail}: {message[:200]}"
        return failure_from_status(
            status, headers=exc.response.headers, detail=detail, request_id=exc.request_id
        )
    if isinstance(exc, httpx2.TimeoutException):
        return Failure("timeout", detail=type(exc).__name__)
    if isinstance(exc, httpx2.TransportError):
        return Failure("stream_cut", detail=type(exc).__name__)
    return Failure("unknown", detail=type(exc).__name__)


def to_anthropic(
    messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """OpenAI-style messages to the Messages API: ``system`` messages lifted to ``system=``."""
    out: list[dict[str, Any]] = []
    system: list[Any] = []
    for message in messages:
        if message.get("role") == "system":
            system.append(message.get("content", ""))
        else:
            out.append(dict(message))
    kwargs = dict(params)
    kwargs.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    if system:
        given = kwargs.pop("system", None)
        parts = ([given] if given else []) + system
        if all(isinstance(p, str) for p in parts):
            kwargs["system"] = "\n\n".join(parts)
        else:  # content blocks: keep them as blocks
            blocks: list[Any] = []
            for part in parts:
                blocks.extend([{"type": "text", "text": part}] if isinstance(part, str) else part)
            kwargs["system"] = blocks
    return out, kwargs


@functools.lru_cache(maxsize=1)
def _accepted() -> frozenset[str]:
    """Keywords ``messages.create`` takes; the rest travel in ``extra_body``.

    anthropic 2.13 dropped ``temperature``, ``top_p`` and ``top_k`` from its signature
    (passing them raises TypeError) while the API still reads them from the body.
    """
    create = inspect.signature(anthropic.resources.Messages.create).parameters
    stream = inspect.signature(anthropic.resources.Messages.stream).parameters
    return frozenset(create) & frozenset(stream) - {"self", "stream"}


def _split_params(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "stop" in kwargs and "stop_sequences" not in kwargs:  # OpenAI's name for it
        stop = kwargs.pop("stop")
        kwargs["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    accepted = _accepted()
    extra = {k: kwargs.pop(k) for k in list(kwargs) if k not in accepted}
    if extra:
        kwargs["extra_body"] = {**extra, **kwargs.get("extra_body", {})}
    return kwargs


def _result(message: Any) -> ProviderResult:
    text = "".join(block.text for block in message.content if block.type == "text")
    usage = message.usage
    return ProviderResult(
        text=text,
        model=message.model,
        usage=Usage(usage.input_tokens or 0, usage.output_tokens or 0),
        stop_reason=message.stop_reason,
        request_id=getattr(message, "_request_id", None),
        raw=message,
    )


class AnthropicProvider:
    """One endpoint's anthropic clients, created lazily (sync and async separately)."""

    name = "anthropic"

    def __init__(self, endpoint: EndpointPolicy) -> None:
        self._endpoint = endpoint
        self._lock = threading.Lock()
        self._client: anthropic.Anthropic | None = None
        # An async client's connection pool belongs to one event loop; a Router may be
        # shared between loops, so each loop gets its own client.
        self._aclients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anthropic.AsyncAnthropic
        ] = weakref.WeakKeyDictionary()

    def _options(self) -> dict[str, Any]:
        ep = self._endpoint
        options: dict[str, Any] = {
            "max_retries": 0,
            "timeout": anthropic.Timeout(ep.timeout.read, connect=ep.timeout.connect),
        }
        if ep.api_key is not None:
            options["api_key"] = ep.api_key.reveal()
        if ep.base_url is not None:
            options["base_url"] = ep.base_url
        return options

    def client(self) -> anthropic.Anthropic:
        """The sync client, made on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = anthropic.Anthropic(**self._options())
                    _deadline.install(client._client)
                    self._client = client
        return self._client

    def aclient(self) -> anthropic.AsyncAnthropic:
        """The async client of the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = anthropic.AsyncAnthropic(**self._options())
            _deadline.install(client._client)
            self._aclients[loop] = client
        return client

    def _kwargs(self, call: ProviderRequest, *, stream: bool = False) -> dict[str, Any]:
        messages, kwargs = to_anthropic(call.messages, call.params)
        kwargs = _split_params(kwargs)
        kwargs["model"] = self._endpoint.model
        kwargs["messages"] = messages
        read = call.read_timeout
        if stream:
            # The router bounds the wait for the first delta by the deadline and each
            # later gap by stream_idle, through the socket layer; the per-read timeout
            # must not cut a stream that pauses for less than stream_idle.
            read = max(self._endpoint.timeout.read, call.idle_timeout)
        kwargs["timeout"] = anthropic.Timeout(
            read, connect=call.connect_timeout, pool=call.connect_timeout
        )
        return kwargs

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Send the request and wait for the whole answer."""
        try:
            message = self.client().messages.create(**self._kwargs(call))
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        return _result(message)

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """The async twin of :meth:`complete`."""
        try:
            message = await self.aclient().messages.create(**self._kwargs(call))
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        return _result(message)

    def stream(self, call: ProviderRequest) -> Iterator[str | ProviderResult]:
        """Yield text deltas, then the final :class:`Result`."""
        try:
            with self.client().messages.stream(**self._kwargs(call, stream=True)) as stream:
                for event in stream:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield event.delta.text
                message = stream.get_final_message()
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        yield _result(message)

    async def astream(self, call: ProviderRequest) -> AsyncIterator[str | ProviderResult]:
        """The async twin of :meth:`stream`."""
        try:
            async with self.aclient().messages.stream(**self._kwargs(call, stream=True)) as stream:
                async for event in stream:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield event.delta.text
                message = await stream.get_final_message()
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        yield _result(message)

    def close(self) -> None:
        """Close the sync client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the running loop's async client and the sync client."""
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()
        self.close()
