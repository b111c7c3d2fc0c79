"""The Anthropic adapter: the native SDK (anthropic >= 2.13, on httpx2), retries off."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2

from .. import _deadline, _fork
from .._failures import Failure, failure_from_status, meaning_of, status_for_error_type
from .._stream_events import ContentEvent, ThinkingDelta, ToolCallDelta, ToolCallStart
from ..conversation import (
    RequestTranslationError,
    answer_from_anthropic,
    anthropic_usage,
    finish_reason,
    parse_request,
    to_anthropic_kwargs,
)
from ..policy._model import EndpointPolicy
from ._aclose import close_async_quietly
from ._base import (
    ProviderFailure,
    ProviderRequest,
    ProviderResult,
    result_from_answer,
    untranslatable,
)
from ._encode import encoding_detail
from ._malformed import TolerantDecoder
from ._redact import redact, request_texts

__all__ = ["AnthropicProvider", "classify"]

# Anthropic requires max_tokens; LiteLLM's Router uses the same default for Claude.
DEFAULT_MAX_TOKENS = 4096


def classify(exc: BaseException, call: ProviderRequest | None = None) -> Failure:
    """Map an exception from the anthropic SDK (or httpx2 under it) to a :class:`Failure`.

    ``call``, when given, lets an encoding error name the parameter at fault. Details
    are not yet redacted here: the adapter passes them through :func:`redact`.
    """
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure("timeout", detail="timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        name = type(cause).__name__ if cause is not None else "connection error"
        return Failure("connect", detail=name)
    if isinstance(exc, anthropic.APIStatusError):
        return _status_failure(exc)
    if isinstance(exc, httpx2.TimeoutException):
        return Failure("timeout", detail=type(exc).__name__)
    if isinstance(exc, httpx2.TransportError):
        return Failure("stream_cut", detail=type(exc).__name__)
    if _missing_key(exc):
        return Failure("misconfigured", detail="no API key: set api_key or ANTHROPIC_API_KEY")
    if isinstance(exc, json.JSONDecodeError):  # a response body or event that is not JSON
        return Failure("server", detail="the response is not valid JSON")
    detail = encoding_detail(exc, call)
    if detail is not None:  # the request cannot be encoded: nothing was sent
        return Failure("invalid_request", detail=detail)
    return Failure("unknown", detail=type(exc).__name__)


def _status_failure(exc: anthropic.APIStatusError) -> Failure:
    status = exc.status_code
    error_type = getattr(exc, "type", None)
    if status < 400:
        # An error event inside a 200 stream: its type says what it stands for.
        status = status_for_error_type(error_type) or 500
    message = str(getattr(exc, "api_message", None) or "")
    detail = f"{error_type or f'HTTP {status}'}: {message}" if message else error_type or ""
    return failure_from_status(
        status,
        headers=exc.response.headers,
        detail=detail,
        request_id=exc.request_id,
        kind=meaning_of(status, error_type, message),
    )


def _missing_key(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not resolve authentication method" in text or (
        isinstance(exc, anthropic.AnthropicError)
        and not isinstance(exc, anthropic.APIError)
        and "api_key" in text
    )


def _result(message: Any) -> ProviderResult:
    content = message.content
    if len(content) != 1 or content[0].type != "text":
        return result_from_answer(answer_from_anthropic(message), message)
    # The common answer, one text block: no lists, no intermediate Answer.
    stop = message.stop_reason
    return ProviderResult(
        content[0].text,
        str(message.model),
        anthropic_usage(message.usage),
        stop,
        getattr(message, "_request_id", None),
        message,
        (),
        finish_reason(stop),
    )


class _Items:
    """A stream's raw events -> what the adapter yields: text, thinking, tool calls.

    A tool call's ``index`` is its position among the answer's tool calls (as OpenAI
    numbers them), not Anthropic's content block index, which counts text blocks too.
    """

    __slots__ = ("_calls", "stopped")

    def __init__(self) -> None:
        self._calls: dict[int, int] = {}  # content block index -> tool call position
        self.stopped = False

    def item(self, event: Any) -> str | ContentEvent | None:
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                return str(delta.text) or None
            if delta.type == "input_json_delta":
                position = self._calls.get(event.index)
                if position is not None and delta.partial_json:
                    return ToolCallDelta(position, delta.partial_json)
            elif delta.type == "thinking_delta" and delta.thinking:
                return ThinkingDelta(delta.thinking)
        elif kind == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            position = self._calls[event.index] = len(self._calls)
            return ToolCallStart(position, block.id, block.name)
        elif kind == "message_stop":
            self.stopped = True
        return None


@functools.lru_cache(maxsize=2)
def _client_class(is_async: bool) -> type[Any]:
    """The SDK's client class, with its SSE decoder wrapped to skip malformed events.

    ``_make_sse_decoder`` is the SDK's own hook for a client's event decoding (Bedrock's
    client overrides it too); where it is missing, the plain class is used.
    """
    base: type[Any] = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
    if not callable(getattr(base, "_make_sse_decoder", None)):
        return base

    class Client(base):  # type: ignore[misc]
        failover_endpoint = ""
        failover_model = ""

        def _make_sse_decoder(self, options: Any = None) -> Any:
            inner = super()._make_sse_decoder(options)
            return TolerantDecoder(inner, self.failover_endpoint, self.failover_model)

    return Client


# Modules httpx2/httpcore2 import only when the first request is made (opentelemetry's
# propagators only where it is installed).
_FIRST_REQUEST_MODULES = (
    "h11",
    "h2.connection",
    "anyio.streams.tls",
    "anyio.streams.memory",
    "opentelemetry.propagate",
)


def _warm_imports(names: tuple[str, ...]) -> None:
    """Import ``names`` now; one that is missing (another version) is simply skipped."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


class AnthropicProvider:
    """One endpoint's anthropic clients, created lazily (sync and async separately)."""

    name = "anthropic"

    def __init__(self, endpoint: EndpointPolicy) -> None:
        self._endpoint = endpoint
        self._secrets = (endpoint.api_key.reveal(),) if endpoint.api_key is not None else ()
        # The usual per-request timeout (the endpoint's own), made once.
        connect = endpoint.timeout.connect
        self._timeout = anthropic.Timeout(endpoint.timeout.read, connect=connect, pool=connect)
        self._reset()
        _fork.register(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._client: anthropic.Anthropic | None = None
        # An async client's connection pool belongs to one event loop; a Router may be
        # shared between loops, so each loop gets its own client, kept (strongly) until
        # close(): dropped with its loop, it would try to close itself on the next loop.
        self._aclients: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], Any]] = {}

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's clients (never close them) and locks."""
        _fork.abandon(self._client, *(client for _, client in self._aclients.values()))
        self._reset()

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

    def _made(self, client: Any) -> Any:
        client.failover_endpoint = self._endpoint.name
        client.failover_model = self._endpoint.model
        _deadline.install(client._client)
        return client

    def prepare(self) -> None:
        """Build the sync client now and import what httpx2 imports on a first request
        (h11, h2, anyio's TLS streams), so the first call pays no set-up."""
        self.client()
        _warm_imports(_FIRST_REQUEST_MODULES)

    def client(self) -> anthropic.Anthropic:
        """The sync client, made on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._made(_client_class(False)(**self._options()))
        return self._client

    def aclient(self) -> anthropic.AsyncAnthropic:
        """The async client of the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(id(loop))
        if entry is not None and entry[0]() is loop:
            client: anthropic.AsyncAnthropic = entry[1]
            return client
        client = self._made(_client_class(True)(**self._options()))
        with self._lock:
            if entry is not None:  # a dead loop's id reused: its client is stale
                _discard(entry[1])
            self._aclients[id(loop)] = (weakref.ref(loop), client)
        return client

    def _kwargs(self, call: ProviderRequest, *, stream: bool = False) -> dict[str, Any]:
        """The SDK call's keywords; a request this endpoint cannot take fails here, unsent.

        Any other exception (a bug in the translation) propagates as it is: it is not
        the endpoint's failure and must not count against its breaker.
        """
        try:
            request = parse_request(call.messages, call.params)
            kwargs = to_anthropic_kwargs(
                request, self._endpoint.model, default_max_tokens=DEFAULT_MAX_TOKENS
            )
        except RequestTranslationError as exc:
            texts = request_texts(call.messages, call.params)
            detail = redact(str(exc), secrets=self._secrets, texts=texts)
            raise untranslatable(exc, detail) from exc
        read = call.read_timeout
        if stream:
            # After the first delta the router bounds each gap by stream_idle through
            # the socket layer; the per-read timeout must not cut a stream that pauses
            # for less than that. Until the first delta, read bounds the wait (tighten).
            read = max(self._endpoint.timeout.read, call.idle_timeout)
        timeout = self._timeout
        if read != timeout.read or call.connect_timeout != timeout.connect:
            timeout = anthropic.Timeout(
                read, connect=call.connect_timeout, pool=call.connect_timeout
            )
        kwargs["timeout"] = timeout
        return kwargs

    def _failure(
        self, exc: BaseException, call: ProviderRequest, *, streamed: bool = False
    ) -> ProviderFailure:
        """``exc`` classified, its timing named, its detail cleaned of keys and prompt."""
        failure = timing_kind(classify(exc, call), streamed=streamed)
        texts = request_texts(call.messages, call.params)
        detail = redact(failure.detail, secrets=self._secrets, texts=texts)
        return ProviderFailure(dataclasses.replace(failure, detail=detail))

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Send the request and wait for the whole answer."""
        kwargs = self._kwargs(call)
        try:
            message = self.client().messages.create(**kwargs)
        except Exception as exc:
            raise self._failure(exc, call) from exc
        return _result(message)

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """The async twin of :meth:`complete`."""
        kwargs = self._kwargs(call)
        try:
            message = await self.aclient().messages.create(**kwargs)
        except Exception as exc:
            raise self._failure(exc, call) from exc
        return _result(message)

    def stream(self, call: ProviderRequest) -> Iterator[str | ContentEvent | ProviderResult]:
        """Yield text deltas and content events, then the final :class:`ProviderResult`.

        Until the first delta (of text, thinking or a tool call) every wait, the response
        headers included, is bounded by the read timeout, as in :meth:`complete`; after
        it, by the router's stream_idle.
        """
        streamed = False
        kwargs = self._kwargs(call, stream=True)
        try:
            manager = self.client().messages.stream(**kwargs)
            first = _deadline.tighten(call.read_timeout)
            try:
                stream = manager.__enter__()
            finally:
                _deadline.reset_deadline(first)
            try:
                events, items = iter(stream), _Items()
                while True:
                    token = None if streamed else _deadline.tighten(call.read_timeout)
                    try:
                        event = next(events, None)
                    finally:
                        if token is not None:
                            _deadline.reset_deadline(token)
                    if event is None:
                        break
                    item = items.item(event)
                    if item is not None:
                        streamed = True
                        yield item
                if not items.stopped:
                    raise ProviderFailure(_ENDED_EARLY)
                message = stream.get_final_message()
            finally:
                manager.__exit__(None, None, None)
        except ProviderFailure:
            raise
        except Exception as exc:
            raise self._failure(exc, call, streamed=streamed) from exc
        yield _result(message)

    async def astream(
        self, call: ProviderRequest
    ) -> AsyncIterator[str | ContentEvent | ProviderResult]:
        """The async twin of :meth:`stream`."""
        streamed = False
        kwargs = self._kwargs(call, stream=True)
        try:
            manager = self.aclient().messages.stream(**kwargs)
            first = _deadline.tighten(call.read_timeout)
            try:
                stream = await manager.__aenter__()
            finally:
                _deadline.reset_deadline(first)
            try:
                events, items = stream.__aiter__(), _Items()
                while True:
                    token = None if streamed else _deadline.tighten(call.read_timeout)
                    try:
                        event = await anext(events, None)
                    finally:
                        if token is not None:
                            _deadline.reset_deadline(token)
                    if event is None:
                        break
                    item = items.item(event)
                    if item is not None:
                        streamed = True
                        yield item
                if not items.stopped:
                    raise ProviderFailure(_ENDED_EARLY)
                message = await stream.get_final_message()
            finally:
                await manager.__aexit__(None, None, None)
        except ProviderFailure:
            raise
        except Exception as exc:
            raise self._failure(exc, call, streamed=streamed) from exc
        yield _result(message)

    def close(self) -> None:
        """Close the sync client, and quietly the async clients of loops no longer running."""
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
            _discard(aclient)

    async def aclose(self) -> None:
        """Close the running loop's async client, then the rest as :meth:`close` does."""
        entry = self._aclients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].close()
        self.close()


_ENDED_EARLY = Failure("stream_cut", detail="the stream ended before its message_stop event")


def timing_kind(failure: Failure, *, streamed: bool) -> Failure:
    """Name a timeout by when it struck: a stream's gap, the route's deadline, or a read."""
    if failure.kind != "timeout":
        return failure
    if streamed:
        return dataclasses.replace(failure, kind="stream_idle")
    left = _deadline.remaining()
    if left is not None and left <= 0.002:
        return dataclasses.replace(failure, kind="deadline", detail="deadline reached")
    return failure


def _discard(client: Any) -> None:
    """Close an async client whose event loop is gone, without that loop.

    Its connections' sockets are closed directly and the client marked closed, so it
    neither warns nor schedules its own close on whichever loop runs next.
    """
    close_async_quietly(client._client)
