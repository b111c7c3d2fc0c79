"""Breaker state shared across processes through Redis.

Each breaker lives in one Redis hash, ``failover:{namespace}:breaker:{name}``, and every
transition is one run of the Lua script in :mod:`failover.breaker._redis_lua`: atomic, timed by
the Redis server's clock in milliseconds, and applying the same rules as
:class:`~failover.breaker._core.BreakerCore`. The key's expiry is refreshed on each write
(at least an hour, and ten times the longer of ``window`` and ``reset_timeout``), so
nothing outlives a deployment.

The hot path costs at most one round trip per call. Every script reply refreshes a
short-lived local copy of the state (100 ms by default), and :meth:`acquire` answers from
it when it can: closed admits, open refuses until ``retry_at``. So a call against a
closed breaker pays one round trip, the script that records its outcome; a half-open
trial pays two (the permit must be taken atomically); a refused call pays none, except
for one refresh per copy lifetime. :meth:`snapshot` always reads Redis.

When Redis is down or slower than ``timeout`` (50 ms by default), the store falls back
to a process-local :class:`~failover.breaker._breaker.MemoryBreakerStore`, seeded with the last
state it saw, so calls neither fail nor wait more than ``timeout``. It tries Redis again
at most once a second (one probing call, not every call), logs one WARNING on logger
``failover`` per change of mode, and once Redis answers the shared state wins again.

This module imports redis and pybreaker; the router imports it only for a Redis policy.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import NamedTuple

import pybreaker
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._clock import Clock
from ..policy._fields import redact_url
from ..policy._model import BreakerPolicy
from ._breaker import _TO_PYBREAKER, MemoryBreakerStore
from ._core import BreakerSnapshot, State, Transition
from ._redis_lua import SCRIPT, Reply, parse_reply

__all__ = ["RedisBreakerStore"]

_log = logging.getLogger("failover")

# After Redis failed, one call tries it again this often (seconds of real time: this
# paces network I/O, whatever clock the breakers run on).
_PROBE_EVERY = 1.0
# Keys live at least this long after their last write (seconds), and this many times the
# longer of window and reset_timeout.
_KEY_TTL_MIN = 3600.0
_KEY_TTL_FACTOR = 10
# Permits carry positive generations from Redis and negative ones (-1 - g) from the local
# store, so an outcome finds its way back. A shared permit's outcome recorded while Redis
# is away goes to the local store under this generation, which never matches: it counts
# in the totals only, as the core does with any outcome from an earlier generation.
_STALE = -1


def _ms(seconds: float) -> str:
    return repr(round(seconds * 1000, 3))


class _Connection:
    """One Redis client per URL and timeout, shared by every store of the process.

    It also holds the mode (Redis reachable or not), so that a process logs one line per
    change of mode however many breakers it has, and probes Redis once per
    ``_PROBE_EVERY``, not once per breaker per call.
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url = redact_url(url)
        # No retries inside redis-py (its default since 6.0 is three, with backoff): a retry
        # would multiply the time a call can lose to a dead Redis, and the local fallback
        # answers at once anyway.
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self.script = self.client.register_script(SCRIPT)
        self.healthy = True
        self._probe_at = 0.0
        self._lock = threading.Lock()

    def claim_probe(self) -> bool:
        """Whether this caller is the one to try Redis again now (one per interval)."""
        now = time.monotonic()
        with self._lock:
            if now < self._probe_at:
                return False
            self._probe_at = now + _PROBE_EVERY
            return True

    def failed(self, exc: Exception) -> None:
        """Redis did not answer: fall back, and say so if this changes the mode."""
        with self._lock:
            self._probe_at = time.monotonic() + _PROBE_EVERY
            if not self.healthy:
                return
            self.healthy = False
        _log.warning(
            "failover: breaker state in Redis at %s unreachable (%s: %s); "
            "using process-local breakers, retrying every %g s",
            self.url,
            type(exc).__name__,
            exc,
            _PROBE_EVERY,
        )

    def recovered(self) -> None:
        """A probe got through: shared state again, said once."""
        with self._lock:
            if self.healthy:
                return
            self.healthy = True
        _log.warning("failover: breaker state in Redis at %s reachable again; shared", self.url)


_connections: weakref.WeakValueDictionary[tuple[str, float], _Connection] = (
    weakref.WeakValueDictionary()
)
_connections_lock = threading.Lock()


def _connection(url: str, timeout: float) -> _Connection:
    with _connections_lock:
        conn = _connections.get((url, timeout))
        if conn is None:
            conn = _connections[url, timeout] = _Connection(url, timeout)
        return conn


class _Copy(NamedTuple):
    """The state as the last script reply told it, and until when to trust it."""

    reply: Reply
    fresh_until: float  # injected-clock reading
    refuse_until: float  # injected-clock reading; meaningful when open


class RedisBreakerStore(pybreaker.CircuitBreakerStorage):
    """One breaker's state in Redis, shared by every process and thread using the key.

    Args:
        url: ``redis://host:port/db`` (or ``rediss://``).
        namespace: the policy's namespace (``Router.namespace``).
        name: the breaker's name (the endpoint, or ``endpoint@route``).
        policy: the breaker settings.
        clock: the router's clock; the local copy and snapshot times use it.
        timeout: seconds to wait for Redis (connect and each reply) before falling back.
        local_ttl: seconds a script reply may answer ``acquire`` without Redis; 0 sends
            every acquire to Redis.
        trial_lease: seconds after which trial permits never returned are taken back by
            reopening the breaker (a process died mid-trial).
    """

    def __init__(
        self,
        url: str,
        namespace: str,
        name: str,
        policy: BreakerPolicy,
        clock: Clock,
        *,
        timeout: float = 0.05,
        local_ttl: float = 0.1,
        trial_lease: float = 300.0,
    ) -> None:
        super().__init__(name)
        self.key = f"failover:{namespace}:breaker:{name}"
        self.policy = policy
        self._clock = clock
        self._local_ttl = local_ttl
        self._lease = trial_lease
        self._conn = _connection(url, timeout)
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
        self._local = MemoryBreakerStore(policy, clock)
        self._local_active = False
        self._mode_lock = threading.Lock()

    # --- the atomic operations the Breaker uses ---
    def acquire(self) -> tuple[bool, bool, int, Transition | None]:
        """(admitted, trial, generation, transition): from the local copy when it can."""
        copy = self._copy
        if copy is not None and self._conn.healthy and not self._local_active:
            now = self._clock.monotonic()
            if now < copy.fresh_until:
                state = copy.reply.state
                if state == "closed":
                    return True, False, copy.reply.generation, None
                if state == "open" and now < copy.refuse_until:
                    return False, False, copy.reply.generation, None
        reply = self._shared("acquire")
        if reply is None:
            admitted, trial, generation, transition = self._local.acquire()
            return admitted, trial, -1 - generation, transition
        return reply.admitted, reply.trial, reply.generation, reply.transition

    def record(self, generation: int, trial: bool, failed: bool) -> Transition | None:
        """Record one outcome in one script run; the transition it caused, if any."""
        if generation < 0:  # given out by the local store while Redis was away
            transition = self._local.record(-1 - generation, trial, failed)
            return transition if self._local_active else None
        reply = self._shared("record", str(generation), _flag(trial), _flag(failed))
        if reply is None:
            # Counted in the totals only: it speaks for a shared generation, not a local one.
            return self._local.record(_STALE, trial, failed)
        return reply.transition

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
        reply = self._shared("snapshot")
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

    @property
    def current(self) -> State:
        """The state as last seen (no round trip)."""
        if self._local_active:
            return self._local.current
        copy = self._copy
        return "closed" if copy is None else copy.reply.state

    @property
    def shared(self) -> bool:
        """Whether the state comes from Redis now (``False``: process-local fallback)."""
        return self._conn.healthy and not self._local_active

    # --- Redis, the local copy and the fallback ---
    def _shared(self, op: str, *extra: str, reason: str = "") -> Reply | None:
        """Run ``op`` in Redis; ``None`` when Redis is away (the caller uses the local store)."""
        conn = self._conn
        probing = not conn.healthy
        if probing and not conn.claim_probe():
            self._go_local()
            return None
        try:
            raw = conn.script(keys=[self.key], args=[self._policy, " ".join((op, *extra))])
        except (redis.RedisError, OSError) as exc:
            conn.failed(exc)
            self._go_local()
            return None
        if probing:
            conn.recovered()
        reply = parse_reply(
            raw, rate=self.policy.failure_rate, lease=self._lease, forced_reason=reason
        )
        self._remember(reply)
        # A call sent before Redis failed may still come back; only a probe's answer (or
        # any once another store's probe succeeded) says Redis is back for this breaker.
        if self._local_active and (probing or conn.healthy):
            reply = self._resync(reply)
        return reply

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
    def state(self) -> str:
        return _TO_PYBREAKER[self.current]

    @state.setter
    def state(self, state: str) -> None:
        """Transitions happen in Redis; pybreaker's writes are ignored."""

    def increment_counter(self) -> None:
        """Counting happens in Redis."""

    def reset_counter(self) -> None:
        """Counting happens in Redis."""

    def increment_success_counter(self) -> None:
        """Counting happens in Redis."""

    def reset_success_counter(self) -> None:
        """Counting happens in Redis."""

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
        mode = "shared" if self.shared else "local"
        return f"RedisBreakerStore({self.key!r}, {self._conn.url!r}, {mode})"


def _flag(value: bool) -> str:
    return "1" if value else "0"
