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
import functools
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from .. import _deadline
from .._failures import Failure, failure_from_status, status_for_error_type
from .._response import Usage
from ..policy._model import EndpointPolicy
from ._base import ProviderFailure, ProviderRequest, ProviderResult

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

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


_END = object()
_DEADLINE_REACHED = Failure("timeout", detail="deadline reached")
T = TypeVar("T")


def _bounded(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a worker thread, waiting at most until the current deadline.

    At the deadline the worker is abandoned (it ends at its own read timeout) and the
    caller gets a timeout at once: litellm's clients are not ours to bound from inside.
    """
    budget = _deadline.remaining()
    if budget is None:
        return fn()
    future = _worker_pool().submit(contextvars.copy_context().run, fn)
    try:
        return future.result(timeout=max(budget, 0.0))
    except concurrent.futures.TimeoutError as exc:
        future.cancel()
        raise ProviderFailure(_DEADLINE_REACHED) from exc


async def _abounded(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, at most until the current deadline."""
    budget = _deadline.remaining()
    if budget is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, timeout=max(budget, 0.0))
    except asyncio.TimeoutError as exc:
        raise ProviderFailure(_DEADLINE_REACHED) from exc


def _headers(exc: BaseException) -> dict[str, str]:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    try:
        return {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    except (TypeError, ValueError):
        return {}


def classify(exc: BaseException) -> Failure:
    """Map an exception from litellm to a :class:`Failure`.

    litellm reports a refused connection as ``APIConnectionError`` with status 500, and a
    timeout as ``Timeout`` with status 408: both are mapped back to "no response came".
    """
    if isinstance(exc, (litellm.exceptions.Timeout, TimeoutError, asyncio.TimeoutError)):
        return Failure("timeout", detail="timed out")
    if isinstance(exc, litellm.exceptions.APIConnectionError) or _no_response(exc):
        return Failure("connect", detail="connection error")
    if isinstance(exc, litellm.exceptions.MidStreamFallbackError):
        # An error event inside the stream: its type says what it stands for
        # (overloaded_error = 529...), as for Anthropic's own SDK.
        status = status_for_error_type(_error_type(exc))
        if status is not None:
            return failure_from_status(status, detail=f"error event: {_error_type(exc)}")
        return Failure("stream_cut", detail="stream broke")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        message = str(getattr(exc, "message", "") or "")
        # litellm prefixes messages with the class name; keep it short and key-free.
        return failure_from_status(status, headers=_headers(exc), detail=message[:200])
    return Failure("unknown", detail=type(exc).__name__)


def _error_type(exc: BaseException) -> str | None:
    """The provider's error ``type`` somewhere in the exception chain, if it gave one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "original_exception", None)):
            kind = getattr(candidate, "type", None)
            if isinstance(kind, str) and kind.endswith("_error"):
                return kind
            body = getattr(candidate, "body", None)
            if isinstance(body, dict):
                nested = body.get("error", body)
                kind = nested.get("type") if isinstance(nested, dict) else None
                if isinstance(kind, str):
                    return kind
        current = current.__cause__ or current.__context__
    return None


def _no_response(exc: BaseException) -> bool:
    """Whether a litellm error stands for "no response came" (refused, reset, DNS).

    litellm wraps openai's ``APIConnectionError`` as ``InternalServerError`` with status
    500; only the exception chain tells it from a real 500.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in ("APIConnectionError", "ConnectError", "ReadError"):
            return True
        if isinstance(current, (ConnectionError, OSError)) and not isinstance(
            current, TimeoutError
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _result(response: Any) -> ProviderResult:
    choice = response.choices[0]
    text = choice.message.content or ""
    usage = getattr(response, "usage", None)
    return ProviderResult(
        text=text,
        model=str(response.model),
        usage=Usage(
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
        ),
        stop_reason=choice.finish_reason,
        request_id=getattr(response, "id", None),
        raw=response,
    )


class LiteLLMProvider:
    """One endpoint called through litellm."""

    name = "litellm"

    def __init__(self, endpoint: EndpointPolicy) -> None:
        self._endpoint = endpoint

    def _kwargs(self, call: ProviderRequest, *, stream: bool = False) -> dict[str, Any]:
        ep = self._endpoint
        kwargs: dict[str, Any] = dict(call.params)
        kwargs.update(
            model=ep.model,
            messages=[dict(m) for m in call.messages],
            # For a stream the router bounds each step itself (deadline, then
            # stream_idle); the per-read timeout must not cut a slower but live stream.
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
        return kwargs

    def complete(self, call: ProviderRequest) -> ProviderResult:
        """Send the request and wait for the whole answer, within the call's deadline."""
        try:
            response = _bounded(functools.partial(litellm.completion, **self._kwargs(call)))
        except ProviderFailure:
            raise
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        return _result(response)

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        """The async twin of :meth:`complete`."""
        try:
            response = await _abounded(litellm.acompletion(**self._kwargs(call)))
        except ProviderFailure:
            raise
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        return _result(response)

    def stream(self, call: ProviderRequest) -> Iterator[str | ProviderResult]:
        """Yield text deltas, then the final :class:`Result`.

        Each step (the request, then every chunk) is bounded by the router's current
        deadline: the route's before the first delta, ``stream_idle`` after it.
        """
        chunks: list[Any] = []
        try:
            send = functools.partial(litellm.completion, **self._kwargs(call, stream=True))
            iterator = iter(_bounded(send))
            while (chunk := _bounded(functools.partial(next, iterator, _END))) is not _END:
                chunks.append(chunk)
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    yield delta
            final = litellm.stream_chunk_builder(chunks)
        except ProviderFailure:
            raise
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        yield _result(final)

    async def astream(self, call: ProviderRequest) -> AsyncIterator[str | ProviderResult]:
        """The async twin of :meth:`stream`."""
        chunks: list[Any] = []
        try:
            response = await _abounded(litellm.acompletion(**self._kwargs(call, stream=True)))
            iterator = response.__aiter__()
            while True:
                try:
                    chunk = await _abounded(iterator.__anext__())
                except StopAsyncIteration:
                    break
                chunks.append(chunk)
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    yield delta
            final = litellm.stream_chunk_builder(chunks)
        except ProviderFailure:
            raise
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        yield _result(final)

    def close(self) -> None:
        """Nothing to close: litellm owns its clients."""

    async def aclose(self) -> None:
        """Nothing to close: litellm owns its clients."""
