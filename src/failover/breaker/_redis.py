"""Breaker state shared across processes through Redis.

Each breaker lives in one Redis hash (its key from :func:`~failover.breaker._keys.breaker_key`)
and every transition is one run of the Lua script ``breaker.lua``: atomic, timed by the
Redis server's clock in milliseconds, and applying the same rules as
:class:`~failover.breaker._core.BreakerCore`. The key's expiry is refreshed on each write
(at least an hour, and ten times the longer of ``window`` and ``reset_timeout``), so
nothing outlives a deployment.

The hot path costs at most one round trip per call, and usually none. Every script reply
refreshes a short-lived local copy of the state (100 ms by default), and :meth:`acquire`
answers from it when it can: closed admits, open refuses until ``retry_at``. A success in
the closed state is counted locally and sent with the store's next script run (the
refresh of the copy, a failure, a snapshot), ahead of that run's own operation, so it
reaches Redis within about ``local_ttl``. Failures, trials and releases go to Redis at
once: a failure count is never held back. So a closed breaker costs one round trip per
``local_ttl`` plus one per failure; a half-open trial pays two (its permit must be taken
atomically); a refused call pays none, except for one refresh per copy lifetime.
:meth:`snapshot` always reads Redis.

When Redis is down or slower than ``timeout`` (50 ms by default), the store falls back
to a process-local :class:`~failover.breaker._breaker.MemoryBreakerStore`, seeded with the last
state it saw, so calls neither fail nor wait more than ``timeout``. It tries Redis again
at most once a second (one probing call, not every call), logs one WARNING on logger
``failover`` per change of mode, and once Redis answers the shared state wins again.
:attr:`RedisBreakerStore.shared` says which: ``"redis"`` or ``"degraded"``.

:attr:`RedisBreakerStore.aio` is the same store for coroutines
(:class:`~failover.breaker._redis_async.AsyncRedisBreakerStore`): same local copy, batch
and fallback, with ``redis.asyncio`` for the I/O.

This module imports redis and pybreaker; the router imports it only for a Redis policy.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, NamedTuple

import redis

from .._clock import Clock
from ..policy._model import BreakerPolicy
from ._breaker import MemoryBreakerStore, StorageView
from ._core import Admission, BreakerSnapshot, State, Transition
from ._redis_connect import Mode, connection
from ._redis_lua import SCRIPT, Reply, parse_reply

if TYPE_CHECKING:
    from ._redis_async import AsyncRedisBreakerStore

__all__ = ["RedisBreakerStore"]

# Keys live at least this long after their last write (seconds), and this many times the
# longer of window and reset_timeout.
_KEY_TTL_MIN = 3600.0
_KEY_TTL_FACTOR = 10
# Permits carry positive generations from Redis and negative ones (-1 - g) from the local
# store, so an outcome finds its way back. A shared permit's outcome recorded while Redis
# is away goes to the local store under this generation, which never matches: it counts
# in the totals only, as the core does with any outcome from an earlier generation.
_STALE = -1
# Errors that mean "Redis did not answer"; the store falls back on any of them.
REDIS_ERRORS = (redis.RedisError, OSError, TimeoutError)


def _ms(seconds: float) -> str:
    return repr(round(seconds * 1000, 3))


class _Copy(NamedTuple):
    """The state as the last script reply told it, and until when to trust it."""

    reply: Reply
    fresh_until: float  # injected-clock reading
    refuse_until: float  # injected-clock reading; meaningful when open


class _Plan(NamedTuple):
    """One script run about to go out: its arguments, and whether it probes Redis."""

    args: list[str | bytes]
    probing: bool
    reason: str


class RedisBreakerStore(StorageView):
    """One breaker's state in Redis, shared by every process and thread using the key.

    Args:
        url: ``redis://host:port/db`` (or ``rediss://``, ``redis+sentinel://``,
            ``redis+cluster://``: see :mod:`failover.breaker._redis_connect`).
        namespace: used only when ``key`` is not given (the old key layout).
        name: the breaker's name (the endpoint, or ``endpoint@route``), for display.
        policy: the breaker settings.
        clock: the router's clock; the local copy and snapshot times use it.
        key: the Redis key, from :func:`~failover.breaker._keys.breaker_key`.
        timeout: seconds to wait for Redis (connect and each reply) before falling back.
        local_ttl: seconds a script reply may answer ``acquire`` without Redis, and about
            how long a closed-state success may wait to be sent; 0 sends every acquire
            and every outcome to Redis.
        trial_lease: seconds after which trial permits never returned are taken back by
            reopening the breaker (a process died mid-trial).
    """

    def __init__(
        self,
        url: str,
        namespace: str | None,
        name: str,
        policy: BreakerPolicy,
        clock: Clock,
        *,
        key: str | None = None,
        timeout: float = 0.05,
        local_ttl: float = 0.1,
        trial_lease: float = 300.0,
    ) -> None:
        super().__init__(name)
        self.key = key if key is not None else f"failover:{namespace}:breaker:{name}"
        self.policy = policy
        self._clock = clock
        self._local_ttl = local_ttl
        self._lease = trial_lease
        self._conn = connection(url, timeout, SCRIPT)
        ttl = max(_KEY_TTL_MIN, _KEY_TTL_FACTOR * max(policy.window, policy.reset_timeout))
        rate = policy.failure_rate
        # The policy as the script reads it: one word per setting, encoded once.
        self._policy = " ".join(
            (
                str(policy.failure_threshold),
                "-1" if rate is None else repr(rate),
                str(policy.minimum_calls),
                _ms(policy.window),
                _ms(policy.reset_timeout),
                str(policy.half_open_max_calls),
                str(int(ttl * 1000)),
                _ms(trial_lease),
            )
        ).encode()
        self._copy: _Copy | None = None
        self._copy_lock = threading.Lock()
        # Closed-state successes not yet sent: [generation, count, count of older ones].
        self._batch = [0, 0, 0]
        self._batch_lock = threading.Lock()
        self._local = MemoryBreakerStore(policy, clock)
        self._local_active = False
        self._mode_lock = threading.Lock()
        self._aio: AsyncRedisBreakerStore | None = None

    @property
    def aio(self) -> AsyncRedisBreakerStore:
        """This store for coroutines: ``await store.aio.acquire()`` and so on."""
        if self._aio is None:
            from ._redis_async import AsyncRedisBreakerStore

            self._aio = AsyncRedisBreakerStore(self)
        return self._aio

    # --- the atomic operations the Breaker uses ---
    def acquire(self) -> Admission:
        """(admitted, trial, generation, transition): from the local copy when it can."""
        answer = self._acquire_locally()
        if answer is not None:
            return answer
        return self._admission(self._shared("acquire"))

    def record(self, generation: int, trial: bool, failed: bool) -> Transition | None:
        """Record one outcome (a closed-state success is batched); the transition caused."""
        if generation < 0 or self._batched(generation, trial, failed):
            return self._record_locally(generation, trial, failed)
        reply = self._shared("record", str(generation), _flag(trial), _flag(failed))
        return self._recorded(reply, trial, failed)

    def release(self, generation: int, trial: bool) -> None:
        """Give back a trial permit whose call ended without an outcome."""
        if not trial:
            return  # only a trial permit holds anything to give back
        if generation < 0:
            self._local.release(-1 - generation, trial)
            return
        # If Redis is away the permit stays taken there until the trial lease runs out.
        self._shared("release", str(generation), _flag(trial))

    def force(self, state: State, reason: str) -> Transition | None:
        """Move to ``state`` by hand, for every process."""
        reply = self._shared("force", state, reason=reason)
        if reply is None:
            return self._local.force(state, reason)
        return reply.transition

    def snapshot(self) -> BreakerSnapshot:
        """The shared state, read from Redis now (the local one when Redis is away).

        ``opened_at`` and ``retry_at`` are on the injected clock's scale, like the memory
        store's: the Redis server's times are shifted by its distance from ``now``.
        """
        return self._snapshot_of(self._shared("snapshot"))

    def flush(self) -> None:
        """Send the batched successes now (the router calls it on ``close()``)."""
        if self._batch[1] or self._batch[2]:
            self._shared("snapshot")

    @property
    def current(self) -> State:
        """The state as last seen (no round trip)."""
        if self._local_active:
            return self._local.current
        copy = self._copy
        return "closed" if copy is None else copy.reply.state

    @property
    def shared(self) -> Mode:
        """``"redis"`` while the state comes from Redis, ``"degraded"`` on local breakers."""
        return "redis" if self._conn.healthy and not self._local_active else "degraded"

    # --- the decisions the sync and async paths share (no I/O) ---
    def acquire_locally(self) -> Admission | None:
        """:meth:`acquire` when the local copy (or the fallback) can answer, else ``None``."""
        return self._acquire_locally()

    def _acquire_locally(self) -> Admission | None:
        """The answer the local copy (or the fallback) gives, ``None`` to ask Redis."""
        copy = self._copy
        if copy is not None and self._conn.healthy and not self._local_active:
            now = self._clock.monotonic()
            if now < copy.fresh_until:
                state = copy.reply.state
                if state == "closed":
                    return Admission(True, False, copy.reply.generation, None)
                if state == "open" and now < copy.refuse_until:
                    return Admission(False, False, copy.reply.generation, None)
        return None

    def _admission(self, reply: Reply | None) -> Admission:
        if reply is None:
            admitted, trial, generation, transition = self._local.acquire()
            return Admission(admitted, trial, -1 - generation, transition)
        return Admission(reply.admitted, reply.trial, reply.generation, reply.transition)

    def _batched(self, generation: int, trial: bool, failed: bool) -> bool:
        """Count a closed-state success for the next script run, if it may wait."""
        if trial or failed or self._local_ttl <= 0 or generation < 0:
            return False
        copy = self._copy
        if copy is None or copy.reply.state != "closed" or not self._conn.healthy:
            return False
        with self._batch_lock:
            batch = self._batch
            if batch[0] != generation:
                batch[2] += batch[1]  # older successes count in the totals only
                batch[0], batch[1] = generation, 0
            batch[1] += 1
        return True

    def _record_locally(self, generation: int, trial: bool, failed: bool) -> Transition | None:
        if generation >= 0:
            return None  # batched
        transition = self._local.record(-1 - generation, trial, failed)
        return transition if self._local_active else None

    def _recorded(self, reply: Reply | None, trial: bool, failed: bool) -> Transition | None:
        if reply is None:
            # Counted in the totals only: it speaks for a shared generation, not a local one.
            return self._local.record(_STALE, trial, failed)
        return reply.transition

    def _plan(self, op: str, extra: tuple[str, ...], reason: str) -> _Plan | None:
        """The script's arguments, or ``None`` when Redis is away and not due a probe."""
        conn = self._conn
        probing = not conn.healthy
        if probing and not conn.claim_probe():
            self._go_local()
            return None
        args: list[str | bytes] = [self._policy, " ".join((op, *extra))]
        with self._batch_lock:
            gen, count, stale = self._batch
            if count or stale:
                args.append(f"{gen} {count} {stale}")
                self._batch = [gen, 0, 0]
        return _Plan(args, probing, reason)

    def _failed(self, exc: BaseException) -> None:
        # Batched successes of the failed run are lost to the shared totals; the local
        # fallback does not need them (it starts from the last shared state).
        self._conn.failed(exc)
        self._go_local()

    def _finish(self, raw: str, plan: _Plan) -> Reply:
        conn = self._conn
        if plan.probing:
            conn.recovered()
        reply = parse_reply(
            raw, rate=self.policy.failure_rate, lease=self._lease, forced_reason=plan.reason
        )
        self._remember(reply)
        # A call sent before Redis failed may still come back; only a probe's answer (or
        # any once another store's probe succeeded) says Redis is back for this breaker.
        if self._local_active and (plan.probing or conn.healthy):
            reply = self._resync(reply)
        return reply

    def _snapshot_of(self, reply: Reply | None) -> BreakerSnapshot:
        if reply is None:
            return self._local.snapshot()
        opened_at = retry_at = None
        if reply.opened_ms >= 0:
            opened_at = self._clock.monotonic() - (reply.server_ms - reply.opened_ms) / 1000
            if reply.state == "open":
                retry_at = opened_at + self.policy.reset_timeout
        return BreakerSnapshot(
            state=reply.state,
            consecutive_failures=reply.consecutive_failures,
            window_calls=reply.window_calls,
            window_failures=reply.window_failures,
            opened_at=opened_at,
            retry_at=retry_at,
            trials_in_flight=reply.trials_in_flight,
            total_successes=reply.total_successes,
            total_failures=reply.total_failures,
        )

    # --- Redis, the local copy and the fallback ---
    def _shared(self, op: str, *extra: str, reason: str = "") -> Reply | None:
        """Run ``op`` in Redis; ``None`` when Redis is away (the caller uses the local store)."""
        plan = self._plan(op, extra, reason)
        if plan is None:
            return None
        try:
            raw = self._conn.script(keys=[self.key], args=plan.args)
        except REDIS_ERRORS as exc:
            self._failed(exc)
            return None
        return self._finish(raw, plan)

    def _remember(self, reply: Reply) -> None:
        now = self._clock.monotonic()
        refuse_until = now
        if reply.state == "open":
            retry_ms = reply.opened_ms + self.policy.reset_timeout * 1000
            refuse_until = now + (retry_ms - reply.server_ms) / 1000
        copy = _Copy(reply, now + self._local_ttl, refuse_until)
        with self._copy_lock:
            old = self._copy
            # Replies from concurrent threads arrive in any order: keep the newest.
            if (
                old is None
                or (reply.server_ms, reply.generation)
                >= (old.reply.server_ms, old.reply.generation)
                or now >= old.fresh_until
            ):
                self._copy = copy

    def _go_local(self) -> None:
        """Switch this breaker to the local store, seeded with the last shared state."""
        with self._mode_lock:
            if self._local_active:
                return
            copy = self._copy
            seed: State = "closed" if copy is None else copy.reply.state
            self._local.force(seed, "seeded from the last shared state")
            self._local_active = True

    def _resync(self, reply: Reply) -> Reply:
        """Redis is back: its state wins; report the change if the breaker's state moved."""
        with self._mode_lock:
            if not self._local_active:
                return reply
            self._local_active = False
            old = self._local.current
        if reply.transition is None and old != reply.state:
            moved = Transition(old, reply.state, "resynced with the shared state in Redis")
            return reply._replace(transition=moved)
        return reply

    # --- pybreaker's storage interface (read-only: transitions happen in the script) ---
    @property
    def counter(self) -> int:
        if self._local_active:
            return self._local.counter
        copy = self._copy
        return 0 if copy is None else copy.reply.consecutive_failures

    @property
    def success_counter(self) -> int:
        if self._local_active:
            return self._local.success_counter
        copy = self._copy
        return 0 if copy is None else copy.reply.trial_successes

    @property
    def opened_at(self) -> datetime | None:
        if self._local_active:
            return self._local.opened_at
        copy = self._copy
        if copy is None or copy.reply.opened_ms < 0:
            return None
        # Redis TIME is Unix time: no conversion needed.
        return datetime.fromtimestamp(copy.reply.opened_ms / 1000, tz=timezone.utc)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        """The script stamps opening times from the Redis server's clock."""

    def __repr__(self) -> str:
        return f"RedisBreakerStore({self.key!r}, {self._conn.url!r}, {self.shared})"


def _flag(value: bool) -> str:
    return "1" if value else "0"
