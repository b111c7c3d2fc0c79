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
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .. import _deadline
from .._failures import Failure, failure_from_status
from .._policy import EndpointPolicy
from .._response import Usage
from ._base import Call, ProviderFailure, Result

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
        return Failure("stream_cut", detail="stream broke")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        message = str(getattr(exc, "message", "") or "")
        # litellm prefixes messages with the class name; keep it short and key-free.
        return failure_from_status(status, headers=_headers(exc), detail=message[:200])
    return Failure("unknown", detail=type(exc).__name__)


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


def _result(response: Any) -> Result:
    choice = response.choices[0]
    text = choice.message.content or ""
    usage = getattr(response, "usage", None)
    return Result(
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

    def _kwargs(self, call: Call, *, stream: bool = False) -> dict[str, Any]:
        ep = self._endpoint
        kwargs: dict[str, Any] = dict(call.params)
        kwargs.update(
            model=ep.model,
            messages=[dict(m) for m in call.messages],
            timeout=call.read_timeout,
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

    def complete(self, call: Call) -> Result:
        """Send the request and wait for the whole answer, within the call's deadline."""
        budget = _deadline.remaining()
        context = contextvars.copy_context()
        send = functools.partial(litellm.completion, **self._kwargs(call))
        future = _worker_pool().submit(context.run, send)
        try:
            response = future.result(timeout=budget)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise ProviderFailure(Failure("timeout", detail="deadline reached")) from exc
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        return _result(response)

    async def acomplete(self, call: Call) -> Result:
        """The async twin of :meth:`complete`."""
        budget = _deadline.remaining()
        try:
            response = await asyncio.wait_for(
                litellm.acompletion(**self._kwargs(call)), timeout=budget
            )
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        return _result(response)

    def stream(self, call: Call) -> Iterator[str | Result]:
        """Yield text deltas, then the final :class:`Result`."""
        chunks: list[Any] = []
        try:
            for chunk in litellm.completion(**self._kwargs(call, stream=True)):
                chunks.append(chunk)
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    yield delta
            final = litellm.stream_chunk_builder(chunks)
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        yield _result(final)

    async def astream(self, call: Call) -> AsyncIterator[str | Result]:
        """The async twin of :meth:`stream`."""
        chunks: list[Any] = []
        try:
            response = await litellm.acompletion(**self._kwargs(call, stream=True))
            async for chunk in response:
                chunks.append(chunk)
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    yield delta
            final = litellm.stream_chunk_builder(chunks)
        except Exception as exc:
            raise ProviderFailure(classify(exc)) from exc
        yield _result(final)

    def close(self) -> None:
        """Nothing to close: litellm owns its clients."""

    async def aclose(self) -> None:
        """Nothing to close: litellm owns its clients."""
