"""Per-endpoint circuit breakers: pybreaker's states, listeners and storage interface,
with what pybreaker lacks built around them.

pybreaker 1.4.1 holds an RLock across the wrapped call (so concurrent calls serialize),
admits unlimited half-open trials, counts ``asyncio.CancelledError`` as a failure and
times ``reset_timeout`` with ``datetime.now()``. So calls never go through
``CircuitBreaker.call()``. Instead a call asks :meth:`Breaker.acquire` for a
:class:`Permit` (no lock is held while the request runs), and reports back through it.
The transitions themselves run in a store (a ``pybreaker.CircuitBreakerStorage``) that
applies :class:`~failover.breaker._core.BreakerCore`'s rules atomically, with time from an
injected clock. Each transition is then announced through pybreaker's own state objects,
so any ``pybreaker.CircuitBreakerListener`` works unchanged.

This module imports pybreaker (which imports redis when installed), so it is imported on
first use, not by ``import failover``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from asyncio import _get_running_loop as _running_loop
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, cast

import pybreaker

from .. import _fork
from .._clock import Clock
from ..policy._model import BreakerPolicy
from ._core import Admission, BreakerCore, BreakerSnapshot, State, Transition

__all__ = ["Breaker", "BreakerStore", "MemoryBreakerStore", "Permit"]

_TO_PYBREAKER: dict[State, str] = {
    "closed": pybreaker.STATE_CLOSED,
    "open": pybreaker.STATE_OPEN,
    "half_open": pybreaker.STATE_HALF_OPEN,
}

TransitionHook = Callable[[str, Transition], None]
# A success waiting in a breaker's ledger: (clock time, latency, generation).
Success = tuple[float, float, int]
# More waiting than this and the call that adds one applies them all.
LEDGER_MAX = 64


class BreakerStore(Protocol):
    """Where a breaker's state lives; each method is one atomic transition.

    Implementations also subclass ``pybreaker.CircuitBreakerStorage`` so that pybreaker's
    state objects and listeners can read them. ``now`` comes from the store's own clock
    (the memory store: the injected clock; the Redis store: the Redis server's).
    """

    @property
    def current(self) -> State:
        """The state as last known."""

    def acquire(self) -> Admission:
        """Whether one call may go out: (admitted, trial, generation, transition caused)."""

    def record(self, generation: int, trial: bool, failed: bool) -> Transition | None:
        """Record one outcome; the transition it caused, if any."""

    def release(self, generation: int, trial: bool) -> None:
        """Give back a permit whose call ended without an outcome."""

    def force(self, state: State, reason: str) -> Transition | None:
        """Move to ``state`` by hand."""

    def snapshot(self) -> BreakerSnapshot:
        """The state and counters now."""


class StorageView(pybreaker.CircuitBreakerStorage):
    """pybreaker's storage interface over a store whose transitions happen elsewhere.

    pybreaker's state objects read the state and counters through it; their writes
    (which they make on every transition) are no-ops: the store already changed state and
    reset what each transition resets, atomically with the transition itself.
    """

    @property
    def current(self) -> State:
        """The state as last known (the store's own)."""
        raise NotImplementedError

    @property
    def state(self) -> str:
        return _TO_PYBREAKER[self.current]

    @state.setter
    def state(self, state: str) -> None:
        """Transitions happen in the store; pybreaker's writes are ignored."""

    def increment_counter(self) -> None:
        """Counting happens in the store."""

    def reset_counter(self) -> None:
        """Counting happens in the store."""

    def increment_success_counter(self) -> None:
        """Counting happens in the store."""

    def reset_success_counter(self) -> None:
        """Counting happens in the store."""


class MemoryBreakerStore(StorageView):
    """Process-local breaker state: :class:`BreakerCore` behind a lock.

    It implements pybreaker's storage interface for reading. pybreaker's own counter
    resets (which its state objects call on every transition) are no-ops here: the core
    already reset what each transition resets, atomically with the transition itself.

    Closed-state successes may wait in :attr:`successes` (the :class:`Breaker`'s ledger,
    see :meth:`Permit.succeeded`) while :attr:`batching` says none of them could change
    the state. Every other operation applies them first, at their own times, so the
    core sees every outcome in order; :meth:`flush` applies them now.
    """

    def __init__(self, policy: BreakerPolicy, clock: Clock) -> None:
        super().__init__("memory")
        self._core = BreakerCore(policy)
        self._clock = clock
        self._lock = threading.Lock()
        # Closed-state successes not yet applied: (time, latency, generation), oldest
        # first. Threads append without the lock; only a holder of the lock takes them.
        self.successes: deque[Success] = deque()
        # Whether a success may wait in it now (BreakerCore.success_can_wait), kept
        # current by every operation under the lock.
        self.batching = True
        # Told of the successes taken from the ledger, with the clock's time then.
        self.on_successes: Callable[[list[Success], float], None] | None = None
        _fork.register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    # --- the atomic operations the Breaker uses ---
    def acquire(self) -> Admission:
        core = self._core
        if core.state == "closed":  # a closed breaker admits every call: no lock needed
            return core.closed_admission
        with self._lock:
            return core.acquire(self._clock.monotonic())

    def record(self, generation: int, trial: bool, failed: bool) -> Transition | None:
        with self._lock:
            taken, earlier = self._take()
            transition = self._core.record(self._clock.monotonic(), generation, trial, failed)
            self.batching = self._core.success_can_wait()
        self._told(taken)
        return transition or earlier

    def release(self, generation: int, trial: bool) -> None:
        with self._lock:
            self._core.release(generation, trial)

    def force(self, state: State, reason: str) -> Transition | None:
        with self._lock:
            taken, earlier = self._take()
            transition = self._core.force(state, self._clock.monotonic(), reason)
            self.batching = self._core.success_can_wait()
        self._told(taken)
        return transition or earlier

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            taken, _ = self._take()
            snapshot = self._core.snapshot(self._clock.monotonic())
        self._told(taken)
        return snapshot

    def flush(self) -> Transition | None:
        """Apply the successes waiting in the ledger now; the transition they caused."""
        if not self.successes:
            return None
        with self._lock:
            taken, transition = self._take()
        self._told(taken)
        return transition

    def _take(self) -> tuple[list[Success], Transition | None]:
        """Apply the ledger's successes (under the lock); them, and any transition.

        Items are popped one by one, so one appended meanwhile is never lost: it is
        applied now or by the next taker. A transition comes of them only when a success
        was appended just as a failure made waiting unsafe (:attr:`batching`).
        """
        pending = self.successes
        if not pending:
            return [], None
        core = self._core
        taken = []
        transition = None
        while pending:
            item = pending.popleft()
            transition = core.record(item[0], item[2], False, False) or transition
            taken.append(item)
        self.batching = core.success_can_wait()
        return taken, transition

    def _told(self, taken: list[Success]) -> None:
        if taken and self.on_successes is not None:
            self.on_successes(taken, self._clock.monotonic())

    @property
    def current(self) -> State:
        return self._core.state

    # --- pybreaker's storage interface ---
    @property
    def counter(self) -> int:
        return self._core.consecutive_failures

    @property
    def success_counter(self) -> int:
        return self._core.trial_successes

    @property
    def opened_at(self) -> datetime | None:
        opened = self._core.opened_at
        if opened is None:
            return None
        wall = time.time() - (self._clock.monotonic() - opened)
        return datetime.fromtimestamp(wall, tz=timezone.utc)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        """The core stamps opening times from the injected clock."""


class Permit:
    """Leave to make one call through a breaker; report how it went exactly once.

    Call :meth:`success` or :meth:`failure`; if neither happens (the call was cancelled,
    or failed in a way that says nothing about the endpoint), :meth:`release` hands a
    half-open trial permit back. Later reports are ignored.
    """

    __slots__ = ("_breaker", "_done", "_generation", "trial")

    def __init__(self, breaker: Breaker, generation: int, trial: bool) -> None:
        self._breaker = breaker
        self._generation = generation
        self.trial = trial
        self._done = False

    def success(self, latency: float) -> None:
        """The call succeeded in ``latency`` seconds (a slow call counts as a failure)."""
        if self._done:
            return
        self._done = True
        breaker = self._breaker
        slow = breaker.slow_call
        breaker._record(self._generation, self.trial, slow is not None and latency > slow)

    def failure(self) -> None:
        """The call failed in a way that counts against the endpoint."""
        if self._done:
            return
        self._done = True
        self._breaker._record(self._generation, self.trial, True)

    def succeeded(self, now: float, latency: float) -> bool:
        """:meth:`success`, noted in the breaker's ledger when it may wait there.

        ``now`` is the clock's time at the end of the call. Returns ``True`` when the
        success went to the ledger: the breaker's ``on_successes`` hook is then told of
        it (with the others) when the ledger is applied, and the caller need not count it
        anywhere else. A trial, a slow call, or a breaker without a ledger records it now
        and returns ``False``.
        """
        breaker = self._breaker
        store = breaker._ledgered
        slow = breaker.slow_call
        if (
            store is None
            or self._done
            or self.trial
            or (slow is not None and latency > slow)
            or not store.batching
        ):
            self.success(latency)
            return False
        self._done = True
        ledger = store.successes
        ledger.append((now, latency, self._generation))
        if len(ledger) > LEDGER_MAX:
            breaker.flush()
        return True

    def release(self) -> None:
        """The call ended without an outcome: give the permit back, count nothing."""
        if self._done:
            return
        self._done = True
        self._breaker._release(self._generation, self.trial)


class Breaker:
    """One endpoint's circuit breaker.

    Args:
        name: the endpoint's name.
        policy: the breaker settings.
        clock: where time comes from.
        store: the state store (process-local by default).
        listeners: ``pybreaker.CircuitBreakerListener`` objects told of state changes.
        on_transition: called as ``on_transition(name, transition)`` after each change.
        on_successes: with a process-local store, closed-state successes reported
            through :meth:`Permit.succeeded` wait in a ledger and this is called as
            ``on_successes(successes, now)`` when they are applied (at the latest by the
            next failure, snapshot or :meth:`flush`), each a ``(time, latency,
            generation)``; the router counts them in its stats this way.
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Clock,
        *,
        store: BreakerStore | None = None,
        listeners: Iterable[Any] = (),
        on_transition: TransitionHook | None = None,
        on_successes: Callable[[list[Success], float], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.slow_call: float | None = policy.slow_call  # read on every success
        self._store: BreakerStore = (
            store if store is not None else MemoryBreakerStore(policy, clock)
        )
        self._on_transition = on_transition
        # Where closed-state successes wait (Permit.succeeded): only a memory store
        # keeps one, and only for a caller that takes them in batches.
        self._ledgered: MemoryBreakerStore | None = None
        if on_successes is not None and isinstance(self._store, MemoryBreakerStore):
            self._ledgered = self._store
            self._store.on_successes = on_successes
        # A shared store's asyncio twin, when it has one (the Redis store's ``aio``).
        self._aio: Any = getattr(self._store, "aio", None)
        self._tasks: set[asyncio.Task[None]] = set()
        self._cb = pybreaker.CircuitBreaker(
            fail_max=policy.failure_threshold,
            reset_timeout=policy.reset_timeout,
            success_threshold=policy.half_open_max_calls,
            state_storage=cast("pybreaker.CircuitBreakerStorage", self._store),
            listeners=list(listeners),
            name=name,
        )

    @property
    def state(self) -> State:
        """``"closed"``, ``"open"`` or ``"half_open"`` as last recorded."""
        return self._store.current

    @property
    def pybreaker(self) -> Any:
        """The underlying ``pybreaker.CircuitBreaker`` (for its listeners API)."""
        return self._cb

    @property
    def ledger(self) -> deque[Success] | None:
        """The closed-state successes waiting to be applied; ``None`` without a ledger."""
        return self._ledgered.successes if self._ledgered is not None else None

    def acquire(self) -> Permit | None:
        """A permit for one call, or ``None`` when the breaker turns the call away."""
        return self._permit(self._store.acquire())

    def acquire_nowait(self) -> Permit | Literal[False] | None:
        """:meth:`acquire` if it needs no I/O; ``False`` when the store must ask Redis
        (then ``await`` :meth:`aacquire`). Memory stores always answer."""
        local = getattr(self._store, "acquire_locally", None)
        if local is None:
            return self.acquire()
        admission = local()
        return False if admission is None else self._permit(admission)

    async def aacquire(self) -> Permit | None:
        """:meth:`acquire` for coroutines: a shared store is asked with ``redis.asyncio``."""
        if self._aio is None:
            return self.acquire()
        return self._permit(await self._aio.acquire())

    def _permit(self, admission: Admission) -> Permit | None:
        admitted, trial, generation, transition = admission
        if transition is not None:
            self._announce(transition)
        if not admitted:
            return None
        return Permit(self, generation, trial)

    def panic(self) -> Permit | None:
        """A half-open trial permit now, whatever ``reset_timeout`` says.

        A route's last resort when every one of its endpoints is open (Envoy's panic
        mode): the breaker half-opens at once, and the trial's outcome closes or reopens
        it as any trial's would. ``None`` when the half-open trials are all taken.
        """
        transition = self._store.force("half_open", "panic: every endpoint of a route was open")
        if transition is not None:
            self._announce(transition)
        return self.acquire()

    @property
    def shared(self) -> str:
        """Where the state lives: ``"local"``, ``"redis"``, or ``"degraded"`` (Redis away)."""
        return str(getattr(self._store, "shared", "local"))

    def flush(self) -> None:
        """Apply the closed-state successes that wait (in the ledger, or batched by a
        shared store for Redis) now."""
        flush = getattr(self._store, "flush", None)
        if flush is not None:
            transition = flush()
            if transition is not None:
                self._announce(transition)

    def snapshot(self) -> BreakerSnapshot:
        """The breaker's state and counters now."""
        if self.ledger:
            self.flush()
        return self._store.snapshot()

    def force_open(self, reason: str = "forced open") -> None:
        """Open the breaker by hand (it half-opens after ``reset_timeout`` as usual)."""
        transition = self._store.force("open", reason)
        if transition is not None:
            self._announce(transition)

    def reset(self, reason: str = "reset") -> None:
        """Close the breaker by hand and clear its counters."""
        transition = self._store.force("closed", reason)
        if transition is not None:
            self._announce(transition)

    def _record(self, generation: int, trial: bool, failed: bool) -> None:
        if self._aio is not None and _running_loop() is not None:
            # On an event loop a shared store is never waited on: what needs Redis is
            # sent by a task (a batched success needs nothing).
            recorded, transition = self._aio.record_locally(generation, trial, failed)
            if not recorded:
                self._soon(self._arecord(generation, trial, failed))
            elif transition is not None:
                self._announce(transition)
            return
        transition = self._store.record(generation, trial, failed)
        if transition is not None:
            self._announce(transition)

    async def _arecord(self, generation: int, trial: bool, failed: bool) -> None:
        assert self._aio is not None
        transition = await self._aio.record(generation, trial, failed)
        if transition is not None:
            self._announce(transition)

    def _release(self, generation: int, trial: bool) -> None:
        if self._aio is not None and trial and _running_loop() is not None:
            self._soon(self._aio.release(generation, trial))
            return
        self._store.release(generation, trial)

    def _soon(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # a task nobody holds may be collected before it runs
        task.add_done_callback(self._tasks.discard)

    def _announce(self, transition: Transition) -> None:
        # pybreaker's state objects notify its listeners; its storage calls are no-ops.
        self._cb.state = _TO_PYBREAKER[transition.new]
        if self._on_transition is not None:
            self._on_transition(self.name, transition)

    def __repr__(self) -> str:
        return f"Breaker({self.name!r}, state={self.state!r})"
