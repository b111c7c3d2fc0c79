"""The Anthropic adapter: the native SDK (anthropic >= 2.13, on httpx2), retries off."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator, Container, Iterator
from typing import Any

import anthropic
from anthropic.types import Message

from .. import _deadline
from .._failures import Failure
from .._frozen import new_tuple
from .._stream_events import ContentEvent, ThinkingDelta, ToolCallDelta, ToolCallStart
from ..conversation import (
    RequestTranslationError,
    answer_from_anthropic,
    anthropic_usage,
    finish_reason,
    parse_request,
    plain_anthropic_kwargs,
    to_anthropic_kwargs,
)
from ..policy._model import EndpointPolicy
from ._anthropic_failures import classify, timing_kind
from ._base import (
    ProviderFailure,
    ProviderRequest,
    ProviderResult,
    result_from_answer,
    untranslatable,
)
from ._clients import ClientPool
from ._malformed import TolerantDecoder
from ._redact import redact_for

__all__ = ["AnthropicProvider", "classify"]

# Anthropic requires max_tokens; LiteLLM's Router uses the same default for Claude.
DEFAULT_MAX_TOKENS = 4096


def _result(message: Any) -> ProviderResult:
    content = message.content
    if len(content) != 1 or content[0].type != "text":
        return result_from_answer(answer_from_anthropic(message), message)
    # The common answer, one text block: no lists, no intermediate Answer.
    stop = message.stop_reason
    # ProviderResult(...) without the named tuple's Python __new__: every call makes one.
    result: ProviderResult = new_tuple(
        ProviderResult,
        (
            content[0].text,
            str(message.model),
            anthropic_usage(message.usage),
            stop,
            getattr(message, "_request_id", None),
            message,
            (),
            finish_reason(stop),
            (),
        ),
    )
    return result


class _Items:
    """A stream's raw events -> what the adapter yields: text, thinking, tool calls.

    A tool call's ``index`` is its position among the answer's tool calls (as OpenAI
    numbers them), not Anthropic's content block index, which counts text blocks too.
    """

    __slots__ = ("_calls", "_read", "_token", "stopped", "streamed")

    def __init__(self, read: float) -> None:
        self._calls: dict[int, int] = {}  # content block index -> tool call position
        self._read = read
        self._token: Any = None
        self.stopped = False
        self.streamed = False  # a delta was yielded

    def __enter__(self) -> None:
        # Until the first delta (the response headers included) every wait is bounded by
        # the read timeout, as in complete(); after it, by the router's stream_idle.
        if not self.streamed:
            self._token = _deadline.tighten(self._read)

    def __exit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            _deadline.reset_deadline(token)

    def ended(self) -> None:
        """Check that the stream reached its end: one that ended early is a cut."""
        if not self.stopped:
            raise ProviderFailure(_ENDED_EARLY)

    def item(self, event: Any) -> str | ContentEvent | None:
        item = self._item(event)
        if item is not None:
            self.streamed = True
        return item

    def _item(self, event: Any) -> str | ContentEvent | None:
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


@functools.lru_cache(maxsize=1)
def _create_options() -> tuple[dict[str, Any], Container[str]] | None:
    """What ``messages.create`` gives ``client.post`` besides the body and the timeout (its
    tracing span's name, route and attributes), and the models it warns are deprecated;
    ``None`` where this SDK version names them otherwise.

    A plain chat is sent with ``client.post`` and these options: the same request,
    span and response type as ``messages.create``, without the keyword checks and
    body assembly that a plain chat never needs (about 30 µs per call, measured with
    ``bench/versus.py``). ``tests/test_anthropic_post.py`` checks that both make the
    same request, option by option and on the wire.
    """
    try:
        from anthropic._base_client import make_request_options
        from anthropic._data import DEPRECATED_MODELS
        from anthropic.lib._tracing import messages_create_request_attributes
    except ImportError:
        return None
    options = make_request_options(
        span_name="anthropic.messages.create",
        span_route="/v1/messages",
        span_attributes=messages_create_request_attributes,
    )
    return dict(options), frozenset(DEPRECATED_MODELS)


_PATH = "/v1/messages"
# Keywords a plain chat's body holds as they are (and the timeout, which is an option).
_POSTED_AS_IS = frozenset({"model", "max_tokens", "messages", "system", "timeout"})


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
        self._clients = ClientPool(self._made)
        # A plain chat goes through client.post with messages.create's own options (see
        # _create_options); a deprecated model through messages.create, which warns.
        create = _create_options()
        self._post: dict[str, Any] | None = None
        if create is not None and endpoint.model not in create[1]:
            self._post = {**create[0], "timeout": self._timeout}

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

    def _made(self, is_async: bool) -> Any:
        client = _client_class(is_async)(**self._options())
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
        client: anthropic.Anthropic = self._clients.sync()
        return client

    def aclient(self) -> anthropic.AsyncAnthropic:
        """The async client of the running event loop, made on first use."""
        client: anthropic.AsyncAnthropic = self._clients.current_loop()
        return client

    def _kwargs(self, call: ProviderRequest, *, stream: bool = False) -> dict[str, Any]:
        """The SDK call's keywords; a request this endpoint cannot take fails here, unsent.

        Any other exception (a bug in the translation) propagates as it is: it is not
        the endpoint's failure and must not count against its breaker.
        """
        kwargs = plain_anthropic_kwargs(
            call.messages, call.params, self._endpoint.model, default_max_tokens=DEFAULT_MAX_TOKENS
        )
        try:
            if kwargs is None:
                request = parse_request(call.messages, call.params)
                kwargs = to_anthropic_kwargs(
                    request, self._endpoint.model, default_max_tokens=DEFAULT_MAX_TOKENS
                )
        except RequestTranslationError as exc:
            raise untranslatable(exc, redact_for(str(exc), call, self._secrets)) from exc
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
        detail = redact_for(failure.detail, call, self._secrets)
        return ProviderFailure(dataclasses.replace(failure, detail=detail))

    def _post_options(self, kwargs: dict[str, Any]) -> Any:
        """The options to post ``kwargs`` with (its timeout taken out of it), when it is
        a plain chat's, whose keywords are the body as it is; else ``None``."""
        if self._post is None or not kwargs.keys() <= _POSTED_AS_IS:
            return None
        timeout = kwargs.pop("timeout")
        return self._post if timeout is self._timeout else {**self._post, "timeout": timeout}

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Send the request and wait for the whole answer."""
        kwargs = self._kwargs(call)
        try:
            client = self.client()
            options = self._post_options(kwargs)
            if options is None:
                message = client.messages.create(**kwargs)
            else:
                message = client.post(_PATH, cast_to=Message, body=kwargs, options=options)
        except Exception as exc:
            raise self._failure(exc, call) from exc
        return _result(message)

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """The async twin of :meth:`complete`."""
        kwargs = self._kwargs(call)
        try:
            client = self.aclient()
            options = self._post_options(kwargs)
            if options is None:
                message = await client.messages.create(**kwargs)
            else:
                message = await client.post(_PATH, cast_to=Message, body=kwargs, options=options)
        except Exception as exc:
            raise self._failure(exc, call) from exc
        return _result(message)

    def stream(self, call: ProviderRequest) -> Iterator[str | ContentEvent | ProviderResult]:
        """Yield text deltas and content events, then the final :class:`ProviderResult`.

        Until the first delta (of text, thinking or a tool call) every wait, the response
        headers included, is bounded by the read timeout, as in :meth:`complete`; after
        it, by the router's stream_idle.
        """
        kwargs = self._kwargs(call, stream=True)
        items = _Items(call.read_timeout)
        try:
            manager = self.client().messages.stream(**kwargs)
            with items:
                stream = manager.__enter__()
            try:
                events = iter(stream)
                while True:
                    with items:
                        event = next(events, None)
                    if event is None:
                        break
                    if (item := items.item(event)) is not None:
                        yield item
                items.ended()
                result = _result(stream.get_final_message())
            finally:
                manager.__exit__(None, None, None)
        except ProviderFailure:
            raise
        except Exception as exc:
            raise self._failure(exc, call, streamed=items.streamed) from exc
        yield result

    async def astream(
        self, call: ProviderRequest
    ) -> AsyncIterator[str | ContentEvent | ProviderResult]:
        """The async twin of :meth:`stream`."""
        kwargs = self._kwargs(call, stream=True)
        items = _Items(call.read_timeout)
        try:
            manager = self.aclient().messages.stream(**kwargs)
            with items:
                stream = await manager.__aenter__()
            try:
                events = stream.__aiter__()
                while True:
                    with items:
                        event = await anext(events, None)
                    if event is None:
                        break
                    if (item := items.item(event)) is not None:
                        yield item
                items.ended()
                result = _result(await stream.get_final_message())
            finally:
                await manager.__aexit__(None, None, None)
        except ProviderFailure:
            raise
        except Exception as exc:
            raise self._failure(exc, call, streamed=items.streamed) from exc
        yield result

    def close(self) -> None:
        """Close the sync client, and quietly the async clients of loops no longer running."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the running loop's async client, then the rest as :meth:`close` does."""
        await self._clients.aclose()


_ENDED_EARLY = Failure("stream_cut", detail="the stream ended before its message_stop event")
