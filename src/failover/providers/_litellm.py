"""The LiteLLM adapter: ``litellm.completion`` / ``acompletion`` with its retries off.

litellm reads its model cost map over the network at import unless told not to, so this
module sets ``LITELLM_LOCAL_MODEL_COST_MAP`` before importing it (unless the user set it).
LiteLLM's clients are not ours to wrap, so the call's deadline is enforced around them:
the async call under ``asyncio.wait_for``, the sync call on a worker thread that is
abandoned (and left to its own read timeout) when the deadline passes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import functools
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from .. import _deadline, _fork
from .._failures import Failure
from .._stream_events import ContentEvent, ThinkingDelta, ToolCallDelta, ToolCallStart
from ..conversation import (
    RequestTranslationError,
    answer_from_openai,
    parse_request,
    to_openai_kwargs,
)
from ..policy._model import EndpointPolicy
from ._base import (
    ProviderFailure,
    ProviderRequest,
    ProviderResult,
    result_from_answer,
    untranslatable,
)
from ._malformed import EVENT_COUNTS
from ._openai_clients import OpenAIClients
from ._quiet import install as install_quiet
from ._quiet import quiet, quiet_token, reset_quiet
from ._redact import redact_for

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

from ._litellm_failures import classify

__all__ = ["LiteLLMProvider", "classify"]

_EXECUTOR_LOCK = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _worker_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _executor  # noqa: PLW0603 - one pool per process, made on first sync call
    with _EXECUTOR_LOCK:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=64, thread_name_prefix="failover-litellm"
            )
        return _executor


def _after_fork_in_child() -> None:
    """The parent's worker threads, lock and litellm's pooled clients are not the child's."""
    global _executor, _EXECUTOR_LOCK  # noqa: PLW0603
    _EXECUTOR_LOCK = threading.Lock()
    _fork.abandon(_executor)
    _executor = None
    # litellm caches its HTTP clients (and so their pooled connections) per process;
    # the child must build its own. Replaced, not closed: the parent still uses them.
    state = vars(litellm)
    cache = state.get("in_memory_llm_clients_cache")
    if cache is not None:
        _fork.abandon(cache)
        state["in_memory_llm_clients_cache"] = type(cache)()
    for name in ("module_level_client", "module_level_aclient"):
        if name in state:
            _fork.abandon(state.pop(name))


_fork.register_hook(_after_fork_in_child)

_END = object()
_DEADLINE_REACHED = Failure("deadline", detail="deadline reached")
T = TypeVar("T")


def _bounded(fn: Callable[[], T], limit: float | None = None, counts: list[int] | None = None) -> T:
    """Run ``fn`` on a worker thread, waiting at most until the current deadline.

    ``limit`` bounds the wait further (a stream's wait for its headers, by ``read``).
    At the deadline the worker is abandoned (it ends at its own read timeout) and the
    caller gets a timeout at once: litellm's clients are not ours to bound from inside.
    """
    budget = _deadline.remaining()
    if limit is not None and (budget is None or limit < budget):
        budget, failure = limit, _READ_TIMED_OUT
    else:
        failure = _DEADLINE_REACHED
    counting = EVENT_COUNTS.set(counts)
    try:
        context = contextvars.copy_context()
    finally:
        EVENT_COUNTS.reset(counting)
    if budget is None:
        return context.run(quiet, fn)
    future = _worker_pool().submit(context.run, quiet, fn)
    try:
        return future.result(timeout=max(budget, 0.0))
    except concurrent.futures.TimeoutError as exc:
        future.cancel()
        raise ProviderFailure(failure) from exc


async def _abounded(
    awaitable: Awaitable[T], limit: float | None = None, counts: list[int] | None = None
) -> T:
    """Await ``awaitable``, at most until the current deadline (or ``limit``)."""
    budget = _deadline.remaining()
    if limit is not None and (budget is None or limit < budget):
        budget, failure = limit, _READ_TIMED_OUT
    else:
        failure = _DEADLINE_REACHED
    token = quiet_token()
    counting = EVENT_COUNTS.set(counts)
    try:
        if budget is None:
            return await awaitable
        return await asyncio.wait_for(awaitable, timeout=max(budget, 0.0))
    except asyncio.TimeoutError as exc:
        raise ProviderFailure(failure) from exc
    finally:
        EVENT_COUNTS.reset(counting)
        reset_quiet(token)


_READ_TIMED_OUT = Failure("timeout", detail="no response within the read timeout")


def _items(chunk: Any, started: set[int]) -> list[str | ContentEvent]:
    """What one chunk holds for the caller: reasoning, text, tool call starts and deltas.

    ``started`` holds the indexes of the tool calls already announced.
    """
    if not chunk.choices:
        return []
    delta = chunk.choices[0].delta
    out: list[str | ContentEvent] = []
    reasoning = getattr(delta, "reasoning_content", None)
    if reasoning:
        out.append(ThinkingDelta(reasoning))
    if delta.content:
        out.append(delta.content)
    for call in getattr(delta, "tool_calls", None) or ():
        index = call.index or 0
        function = call.function
        if index not in started:
            started.add(index)
            name = getattr(function, "name", None) if function is not None else None
            out.append(ToolCallStart(index, call.id or "", name or ""))
        fragment = getattr(function, "arguments", None) if function is not None else None
        if fragment:
            out.append(ToolCallDelta(index, fragment))
    return out


# What litellm 1.110 imports inside its first ``completion()`` (measured with
# sys.modules before and after); importing them at construction moves ~0.4 s out of the
# first call. A name another version lacks is skipped.
_FIRST_COMPLETION_MODULES = (
    "litellm.proxy._types",
    "litellm.proxy.spend_tracking.savings",
    "litellm.proxy.mcp_server.stdio_gate",
    "litellm.proxy.openai_files_endpoints.common_utils",
    "litellm.llms.github_copilot.authenticator",
    "litellm.llms.github_copilot.github_host",
    "litellm.llms.github_copilot.per_user_auth",
    "litellm.llms.litellm_proxy.chat.transformation",
    "litellm.llms.openai_like.dynamic_config",
    "litellm.llms.openai.chat.gpt_audio_transformation",
    "litellm.integrations.generic_api.generic_api_callback",
    "litellm.litellm_core_utils.logging_callback_manager",
    "litellm.litellm_core_utils.duration_parser",
    "litellm._service_logger",
    "litellm.integrations.prometheus_services",
)


class LiteLLMProvider:
    """One endpoint called through litellm."""

    name = "litellm"

    def __init__(self, endpoint: EndpointPolicy) -> None:
        self._endpoint = endpoint
        self._secrets = (endpoint.api_key.reveal(),) if endpoint.api_key is not None else ()
        served_by = _served_by(endpoint)
        self._clients = OpenAIClients(endpoint) if served_by == "openai" else None
        # Thinking from Claude (through LiteLLM) carries Anthropic's signature: the native
        # path may replay it. Any other provider's stays with LiteLLM.
        self._thinking_by = "anthropic" if served_by == "anthropic" else "litellm"
        install_quiet()

    def prepare(self) -> None:
        """Import what litellm imports on its first completion (about 40 modules: proxy
        types, callback managers...), so the first call pays no set-up."""
        from ._anthropic import _warm_imports

        _warm_imports(_FIRST_COMPLETION_MODULES)
        if self._clients is not None:
            self._clients.sync()

    def _translated(self, call: ProviderRequest) -> dict[str, Any]:
        """The request as valid OpenAI input; one this endpoint cannot take fails here.

        Any other exception (a bug in the translation) propagates as it is: it is not
        the endpoint's failure and must not count against its breaker.
        """
        try:
            return to_openai_kwargs(parse_request(call.messages, call.params))
        except RequestTranslationError as exc:
            raise untranslatable(exc, redact_for(str(exc), call, self._secrets)) from exc

    def _kwargs(
        self,
        call: ProviderRequest,
        kwargs: dict[str, Any],
        *,
        stream: bool = False,
        is_async: bool = False,
    ) -> dict[str, Any]:
        ep = self._endpoint
        kwargs.update(
            model=ep.model,
            # For a stream the router bounds each gap after the first delta by
            # stream_idle; the per-read timeout must not cut a slower but live stream.
            # Until the first delta, read bounds each wait (see _bounded's limit).
            timeout=max(call.read_timeout, call.idle_timeout) if stream else call.read_timeout,
            max_retries=0,
            num_retries=0,
        )
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        if ep.api_key is not None:
            kwargs["api_key"] = ep.api_key.reveal()
        if ep.base_url is not None:
            kwargs["api_base"] = ep.base_url
        if self._clients is not None:
            clients = self._clients
            kwargs["client"] = clients.current_loop() if is_async else clients.sync()
        return kwargs

    def _failure(
        self, exc: BaseException, call: ProviderRequest, *, streamed: bool = False
    ) -> ProviderFailure:
        """``exc`` classified, its timing named, its detail cleaned of keys and prompt."""
        failure = exc.failure if isinstance(exc, ProviderFailure) else classify(exc, call)
        if streamed and failure.kind in ("timeout", "deadline"):
            # After the first delta the router's deadline is the stream_idle gap.
            failure = dataclasses.replace(failure, kind="stream_idle", detail="stream went silent")
        detail = redact_for(failure.detail, call, self._secrets)
        return ProviderFailure(dataclasses.replace(failure, detail=detail))

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Send the request and wait for the whole answer, within the call's deadline."""
        translated = self._translated(call)
        try:
            kwargs = self._kwargs(call, translated)
            response = _bounded(functools.partial(litellm.completion, **kwargs))
        except Exception as exc:
            raise self._failure(exc, call) from _cause(exc)
        return self._result(response)

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """The async twin of :meth:`complete`."""
        translated = self._translated(call)
        try:
            kwargs = self._kwargs(call, translated, is_async=True)
            response = await _abounded(litellm.acompletion(**kwargs))
        except Exception as exc:
            raise self._failure(exc, call) from _cause(exc)
        return self._result(response)

    def _result(self, response: Any) -> ProviderResult:
        answer = answer_from_openai(response, thinking_provider=self._thinking_by)
        return result_from_answer(answer, response)

    def stream(self, call: ProviderRequest) -> Iterator[str | ContentEvent | ProviderResult]:
        """Yield text deltas and content events, then the final :class:`ProviderResult`.

        Until the first delta (of text, reasoning or a tool call) each step (the request
        and its headers, then every chunk) waits at most the read timeout; after it, the
        router's deadline (``stream_idle``) bounds each chunk.
        """
        chunks: list[Any] = []
        started: set[int] = set()
        streamed = False
        counts = [0, 0]  # good and malformed events, counted by the decoder
        translated = self._translated(call)
        try:
            kwargs = self._kwargs(call, translated, stream=True)
            send = functools.partial(litellm.completion, **kwargs)
            iterator = iter(_bounded(send, call.read_timeout, counts))
            step = functools.partial(next, iterator, _END)
            while (
                chunk := _bounded(step, None if streamed else call.read_timeout, counts)
            ) is not _END:
                chunks.append(chunk)
                for item in _items(chunk, started):
                    streamed = True
                    yield item
            final = self._final(chunks, counts)
        except Exception as exc:
            raise self._failure(exc, call, streamed=streamed) from _cause(exc)
        yield self._result(final)

    async def astream(
        self, call: ProviderRequest
    ) -> AsyncIterator[str | ContentEvent | ProviderResult]:
        """The async twin of :meth:`stream`."""
        chunks: list[Any] = []
        started: set[int] = set()
        streamed = False
        counts = [0, 0]  # good and malformed events, counted by the decoder
        translated = self._translated(call)
        try:
            kwargs = self._kwargs(call, translated, stream=True, is_async=True)
            response = await _abounded(litellm.acompletion(**kwargs), call.read_timeout, counts)
            iterator = response.__aiter__()
            while True:
                try:
                    limit = None if streamed else call.read_timeout
                    chunk = await _abounded(iterator.__anext__(), limit, counts)
                except StopAsyncIteration:
                    break
                chunks.append(chunk)
                for item in _items(chunk, started):
                    streamed = True
                    yield item
            final = self._final(chunks, counts)
        except Exception as exc:
            raise self._failure(exc, call, streamed=streamed) from _cause(exc)
        yield self._result(final)

    def _final(self, chunks: list[Any], counts: list[int] | None) -> Any:
        """The whole answer from the chunks; a stream that never finished is a cut."""
        if counts is not None and counts[1] and not counts[0]:
            # litellm makes up a final chunk even when every event was dropped.
            raise ProviderFailure(_ONLY_MALFORMED)
        if not any(chunk.choices and chunk.choices[0].finish_reason for chunk in chunks):
            raise ProviderFailure(_ENDED_EARLY)
        return quiet(functools.partial(litellm.stream_chunk_builder, chunks))

    def close(self) -> None:
        """Close the router's own openai clients (litellm owns any others)."""
        if self._clients is not None:
            self._clients.close()

    async def aclose(self) -> None:
        """Close this loop's client and the rest, as :meth:`close` does."""
        if self._clients is not None:
            await self._clients.aclose()


_ENDED_EARLY = Failure("stream_cut", detail="the stream ended without a finish reason")
_ONLY_MALFORMED = Failure("server", detail="the stream sent only malformed events")


def _cause(exc: BaseException) -> BaseException | None:
    """What a ProviderFailure is raised ``from``: the SDK's exception, never our wrapper."""
    return exc.__cause__ if isinstance(exc, ProviderFailure) else exc


def _served_by(endpoint: EndpointPolicy) -> str | None:
    """The litellm provider this model goes to (``openai`` takes our own ``client=``)."""
    try:
        _, provider, _, _ = litellm.get_llm_provider(endpoint.model, api_base=endpoint.base_url)
    except Exception:
        return None
    return str(provider)
