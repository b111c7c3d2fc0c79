"""The Redis breaker store for coroutines: the same store, with ``redis.asyncio`` for I/O.

``acomplete`` and ``astream`` must never block their event loop on Redis. This view of a
:class:`~failover.breaker._redis.RedisBreakerStore` shares everything with it (the local
copy, the batched successes, the fallback to local breakers and the up/down mode), so
sync and async callers of one Router count into one breaker. Only the script run differs:
it is awaited on the running loop's own ``redis.asyncio`` client, and bounded by
``asyncio.wait_for`` as well as by the socket timeouts, so that a Redis which accepts
connections and never answers costs a call at most about the store's ``timeout``, and the
loop serves other tasks meanwhile.

Answers that need no I/O (a fresh local copy, the fallback) come back without suspending.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._core import Admission, BreakerSnapshot, State, Transition
from ._redis_lua import Reply

if TYPE_CHECKING:
    from ._redis import RedisBreakerStore

__all__ = ["AsyncRedisBreakerStore"]

# The whole script run (connect, send, reply) may take this many times the socket
# timeout before it is abandoned: a Sentinel lookup or a cluster redirect adds steps.
_WAIT_FACTOR = 2.0


class AsyncRedisBreakerStore:
    """``await``-able twin of a :class:`RedisBreakerStore`; get it as ``store.aio``.

    Args:
        store: the sync store whose state this view shares.
    """

    __slots__ = ("_store",)

    def __init__(self, store: RedisBreakerStore) -> None:
        self._store = store

    async def acquire(self) -> Admission:
        """As :meth:`RedisBreakerStore.acquire`."""
        store = self._store
        answer = store._acquire_locally()
        if answer is not None:
            return answer
        return store._admission(await self._shared("acquire"))

    def record_locally(
        self, generation: int, trial: bool, failed: bool
    ) -> tuple[bool, Transition | None]:
        """Record an outcome that needs no round trip (a batched closed-state success, or
        one on the local fallback): (recorded, the transition it caused). Not recorded:
        :meth:`record` must send it."""
        store = self._store
        if generation < 0 or store._batched(generation, trial, failed):
            return True, store._record_locally(generation, trial, failed)
        return False, None

    async def record(self, generation: int, trial: bool, failed: bool) -> Transition | None:
        """As :meth:`RedisBreakerStore.record`."""
        store = self._store
        if generation < 0 or store._batched(generation, trial, failed):
            return store._record_locally(generation, trial, failed)
        reply = await self._shared("record", str(generation), _flag(trial), _flag(failed))
        return store._recorded(reply, trial, failed)

    async def release(self, generation: int, trial: bool) -> None:
        """As :meth:`RedisBreakerStore.release`."""
        if not trial:
            return
        if generation < 0:
            self._store._local.release(-1 - generation, trial)
            return
        await self._shared("release", str(generation), _flag(trial))

    async def force(self, state: State, reason: str) -> Transition | None:
        """As :meth:`RedisBreakerStore.force`."""
        reply = await self._shared("force", state, reason=reason)
        if reply is None:
            return self._store._local.force(state, reason)
        return reply.transition

    async def snapshot(self) -> BreakerSnapshot:
        """As :meth:`RedisBreakerStore.snapshot`."""
        return self._store._snapshot_of(await self._shared("snapshot"))

    async def flush(self) -> None:
        """As :meth:`RedisBreakerStore.flush`."""
        batch = self._store._batch
        if batch[1] or batch[2]:
            await self._shared("snapshot")

    async def _shared(self, op: str, *extra: str, reason: str = "") -> Reply | None:
        from ._redis import REDIS_ERRORS

        store = self._store
        plan = store._plan(op, extra, reason)
        if plan is None:
            return None
        conn = store._conn
        try:
            _, script = conn.aio()
            raw = await asyncio.wait_for(
                script(keys=[store.key], args=plan.args), conn.timeout * _WAIT_FACTOR
            )
        except REDIS_ERRORS as exc:  # asyncio.TimeoutError is TimeoutError from 3.11
            store._failed(exc)
            return None
        except asyncio.TimeoutError as exc:
            store._failed(exc)
            return None
        return store._finish(raw, plan)


def _flag(value: bool) -> str:
    return "1" if value else "0"
