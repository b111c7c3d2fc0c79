"""One endpoint's SDK clients: a sync one, and an async one per event loop.

An async client's connection pool belongs to the event loop that made it; a Router may be
shared between loops, so each loop gets its own client, kept (strongly) until
``close()``: dropped with its loop, it would try to close itself on the next loop. A
forked child forgets the parent's clients (never closing them: that would shut the
parent's connections) and builds its own.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .. import _fork
from ._aclose import close_async_quietly

__all__ = ["ClientPool"]


class ClientPool:
    """Clients made on first use by ``make(is_async)``.

    Args:
        make: builds a client, sync (``False``) or async (``True``).
    """

    def __init__(self, make: Callable[[bool], Any]) -> None:
        self._make = make
        self._reset()
        _fork.register(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None
        self._aclients: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], Any]] = {}

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's clients (never close them) and locks."""
        _fork.abandon(self._client, *(client for _, client in self._aclients.values()))
        self._reset()

    def sync(self) -> Any:
        """The sync client."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make(False)
        return self._client

    def current_loop(self) -> Any:
        """The async client of the running event loop."""
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(id(loop))
        if entry is not None and entry[0]() is loop:
            return entry[1]
        client = self._make(True)
        with self._lock:
            if entry is not None:  # a dead loop's id reused: its client is stale
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
            # Its sockets closed directly and the client marked closed, so it neither
            # warns nor schedules its own close on whichever loop runs next.
            close_async_quietly(aclient._client)

    async def aclose(self) -> None:
        """Close the running loop's async client, then the rest as :meth:`close` does."""
        entry = self._aclients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].close()
        self.close()
