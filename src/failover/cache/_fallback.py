"""The fallback cache as the router uses it: settings, backend, clock and error reports.

An answer is written on success with its time. Within a route's ``ttl`` it is fresh (served
without a call only where the route sets ``serve: fresh``); within ``stale_if_error`` it
may be served when every endpoint failed. Entries are kept for the longer of the two.
A backend error never fails a call: it is logged (at most once a minute) and the call
goes on as if the cache had missed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from asyncio import _get_running_loop as _running_loop
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import _fork
from .._response import Response
from ._backends import MAX_ENTRY_BYTES, CacheBackend, CacheEntry, cache_key, open_cache

__all__ = ["FallbackCache"]

# A failing backend is reported at most this often (seconds), not on every call.
_ERROR_LOG_EVERY = 60.0

_log = logging.getLogger("failover")


class FallbackCache:
    """One Router's fallback cache.

    Args:
        kind: the backend (``memory``, ``sqlite``, ``redis``).
        location: the SQLite path or Redis URL.
        max_entries: the memory and SQLite backends' bound.
        namespace: the policy's ``namespace:`` for shared backends (``None``: the default).
        now: the wall clock (Unix seconds) ages are measured on; tests pass a virtual one.
    """

    def __init__(
        self,
        kind: str,
        location: str | None,
        max_entries: int,
        namespace: str | None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.kind = kind
        self._location = location
        self._max_entries = max_entries
        self._namespace = namespace
        self._now = now
        self._lock = threading.Lock()
        self._backend: CacheBackend | None = None
        self._error_logged = -_ERROR_LOG_EVERY
        self._tasks: set[asyncio.Task[None]] = set()
        _fork.register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    @staticmethod
    def key(route: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
        """The request's key: the route plus the normalized request."""
        return cache_key(route, messages, params)

    def backend(self) -> CacheBackend:
        """The backend, opened on first use."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = open_cache(
                        self.kind, self._location, self._max_entries, self._namespace, self._now
                    )
        return self._backend

    @property
    def is_async(self) -> bool:
        """Whether the backend has coroutine methods (Redis): an event loop must use them."""
        return self.kind == "redis"

    def lookup(self, key: str, max_age: float) -> tuple[CacheEntry, float] | None:
        """The entry under ``key`` and its age, if it is at most ``max_age`` old."""
        try:
            entry = self.backend().get(key)
        except Exception as exc:
            self._error("read", exc)
            return None
        return self._fresh(entry, max_age)

    async def alookup(self, key: str, max_age: float) -> tuple[CacheEntry, float] | None:
        """:meth:`lookup` for coroutines: the event loop never waits on the backend."""
        try:
            backend: Any = self.backend()
            entry = await backend.aget(key)
        except Exception as exc:
            self._error("read", exc)
            return None
        return self._fresh(entry, max_age)

    def _fresh(self, entry: CacheEntry | None, max_age: float) -> tuple[CacheEntry, float] | None:
        if entry is None:
            return None
        age = max(self._now() - entry.created_at, 0.0)
        return None if age > max_age else (entry, age)

    def store(self, key: str, response: Response, keep_for: float) -> None:
        """Keep ``response`` under ``key`` for ``keep_for`` seconds (too large: skipped).

        On an event loop with a coroutine backend (Redis) the write is a task: the call
        that produced the answer does not wait for it.
        """
        if len(response.text.encode("utf-8")) > MAX_ENTRY_BYTES:
            return
        usage = response.usage
        entry = CacheEntry(
            text=response.text,
            endpoint=response.endpoint,
            provider=response.provider,
            model=response.model,
            created_at=self._now(),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            stop_reason=response.stop_reason,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason,
            thinking=response.thinking,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )
        if self.is_async and _running_loop() is not None:
            task = asyncio.get_running_loop().create_task(self._aput(key, entry, keep_for))
            self._tasks.add(task)  # a task nobody holds may be collected before it runs
            task.add_done_callback(self._tasks.discard)
            return
        try:
            self.backend().put(key, entry, keep_for)
        except Exception as exc:
            self._error("write", exc)

    async def _aput(self, key: str, entry: CacheEntry, keep_for: float) -> None:
        try:
            backend: Any = self.backend()
            await backend.aput(key, entry, keep_for)
        except Exception as exc:
            self._error("write", exc)

    def _error(self, action: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._error_logged >= _ERROR_LOG_EVERY:
            self._error_logged = now
            _log.warning(
                "failover: cache %s failed (%s: %s); calls go on without it",
                action,
                type(exc).__name__,
                exc,
                extra={"failover_cache_backend": self.kind},
            )

    def close(self) -> None:
        """Close the backend (it reopens on next use)."""
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()
