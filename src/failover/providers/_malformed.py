"""Skipping a malformed event in an otherwise healthy stream, and saying so.

A proxy that mangles one SSE event (a truncated JSON line, a stray byte) should not end
a stream that is otherwise fine: the event is dropped, a WARNING goes to logger
``failover`` with ``failover_event="malformed_event"`` (so metrics can count it), and the
stream goes on. A stream that never completes (only malformed events) still fails:
the adapters check that the final event came.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["EVENT_COUNTS", "SKIPPED", "TolerantDecoder", "log_malformed"]

_log = logging.getLogger("failover")

EVENT_COUNTS: ContextVar[list[int] | None] = ContextVar("failover_event_counts", default=None)
"""Set to ``[0, 0]`` around a stream: the decoders count good and malformed events into it
(a list, so counts made on a worker thread's copy of the context are seen by the caller)."""


SKIPPED: collections.Counter[tuple[str, str]] = collections.Counter()
"""Malformed events skipped in this process, by (endpoint, provider): what the Prometheus
listener exports as ``failover_stream_events_skipped_total``."""


def log_malformed(endpoint: str, provider: str, model: str, what: str) -> None:
    """Count and log one skipped malformed stream event (WARNING, logger ``failover``)."""
    SKIPPED[endpoint, provider] += 1
    _log.warning(
        "%s: skipped a malformed stream event (%s)",
        endpoint,
        what,
        extra={
            "failover_event": "malformed_event",
            "failover_endpoint": endpoint,
            "failover_provider": provider,
            "failover_model": model,
            "failover_error": "malformed_event",
            "failover_detail": what,
        },
    )


def _malformed(sse: Any, dialect: str) -> str | None:
    """Why an SSE event cannot be decoded, or ``None`` when it is fine (or not ours).

    ``dialect`` is ``"anthropic"`` (named events, each an object with a ``type``) or
    ``"openai"`` (unnamed ``data:`` lines ending with ``[DONE]``).
    """
    if not sse.data or sse.event in ("ping", "error"):
        return None  # the SDKs skip these themselves, or report them as errors
    if dialect == "anthropic" and sse.event is None:
        return None
    if dialect == "openai" and (sse.event is not None or sse.data.startswith("[DONE]")):
        return None
    try:
        value = json.loads(sse.data)
    except ValueError as exc:
        return f"invalid JSON at char {getattr(exc, 'pos', '?')}"
    if not isinstance(value, dict):
        return "not a JSON object"
    if dialect == "anthropic" and not isinstance(value.get("type"), str):
        return "an event without a type"
    return None


class TolerantDecoder:
    """Wraps an SDK's SSE decoder (anthropic, openai): drops and logs events it cannot decode."""

    def __init__(self, inner: Any, endpoint: str, model: str, provider: str = "anthropic") -> None:
        self._inner = inner
        self._endpoint = endpoint
        self._model = model
        self._provider = provider
        self._dialect = "anthropic" if provider == "anthropic" else "openai"

    def _good(self, sse: Any) -> bool:
        problem = _malformed(sse, self._dialect)
        counts = EVENT_COUNTS.get()
        if counts is not None:
            counts[0 if problem is None else 1] += 1
        if problem is not None:
            log_malformed(self._endpoint, self._provider, self._model, problem)
        return problem is None

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[Any]:
        """The inner decoder's events, malformed ones left out."""
        for sse in self._inner.iter_bytes(iterator):
            if self._good(sse):
                yield sse

    async def aiter_bytes(self, iterator: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        """The async twin of :meth:`iter_bytes`."""
        async for sse in self._inner.aiter_bytes(iterator):
            if self._good(sse):
                yield sse
