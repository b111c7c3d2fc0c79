"""Per-endpoint health over a sliding window: counts by outcome, latency percentiles.

Memory is bounded whatever the traffic, and each event costs a lock and a few
increments, because the router calls every listener on every attempt:

- Counts (calls, ok, errors by kind, skipped) go in time buckets: the window is cut into
  60 slices and each endpoint keeps at most the 60 newest, so they are exact at any rate
  and age out one slice (window / 60) at a time.
- Latencies go in a ring of the newest ``max_samples`` ``(time, latency)`` pairs. Below
  ``max_samples`` calls per window the percentiles are exact over the whole window; above
  it they are over the newest ``max_samples`` calls within it, which leans towards now —
  what an operator asking "how slow is it?" wants. Buckets of latencies would need
  either a histogram (percentiles only to a bucket's width) or sampling (random).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from .._events import AttemptFinished, Event

__all__ = ["EndpointStats", "StatsListener"]

_SLICES = 60


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint's traffic over the last ``window`` seconds.

    Attributes:
        calls: requests that reached the endpoint (``ok`` plus failed ones).
        ok: requests that succeeded.
        errors: failed requests by failure kind (``timeout``, ``rate_limited``...).
        p50: median latency of successful requests (seconds), None without any.
        p95: 95th percentile latency of successful requests (seconds).
        p99: 99th percentile latency of successful requests (seconds).
        skipped: calls its open breaker turned away (no request made).
    """

    calls: int
    ok: int
    errors: Mapping[str, int]
    p50: float | None
    p95: float | None
    p99: float | None
    skipped: int = 0

    @property
    def error_rate(self) -> float | None:
        """Failed requests over requests made, None when none were made."""
        return (self.calls - self.ok) / self.calls if self.calls else None


@dataclass(slots=True)
class _Slice:
    index: int
    calls: int = 0
    ok: int = 0
    skipped: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class _Endpoint:
    """One endpoint's slices, and its latencies in a ring of ``max_samples`` slots.

    The ring is two preallocated arrays (when, how long) written in turn: recording a
    latency allocates nothing and frees nothing. (A deque of ``(time, latency)`` tuples
    freed the tuple made ``max_samples`` calls before on every call: memory long out of
    the CPU's caches, which cost more than the rest of the listener's work.)
    """

    __slots__ = ("at", "latency", "next", "slices")

    def __init__(self, max_samples: int) -> None:
        self.at = array("d", [-math.inf]) * max_samples  # -inf: a slot never written
        self.latency = array("d", [0.0]) * max_samples
        self.next = 0  # the slot the next latency goes in
        self.slices: deque[_Slice] = deque()

    def add_latency(self, now: float, latency: float) -> None:
        i = self.next
        self.at[i] = now
        self.latency[i] = latency
        self.next = 0 if i + 1 == len(self.at) else i + 1

    def latencies_since(self, oldest: float) -> list[float]:
        return [latency for at, latency in zip(self.at, self.latency, strict=True) if at > oldest]


def _earlier_slice(slices: deque[_Slice], index: int) -> _Slice:
    """The slice for a time before the newest slice's: a success that waited in a
    breaker's ledger while a later attempt was counted (or a clock that stepped back).

    It counts in its own slice, made where it belongs if it has none; a time already out
    of the window is counted in a slice that is kept nowhere.
    """
    if index <= slices[-1].index - _SLICES:
        return _Slice(index)
    position = len(slices)
    while position and slices[position - 1].index > index:
        position -= 1
    if position and slices[position - 1].index == index:
        return slices[position - 1]
    made = _Slice(index)
    slices.insert(position, made)
    return made


class _Flushable(Protocol):
    def flush(self) -> None: ...


class StatsListener:
    """Keep per-endpoint counts and latency percentiles over a sliding time window.

    Thread-safe; one listener may serve several routers (endpoints are counted by
    name). Read it with :meth:`snapshot`.

    Args:
        window: how far back the figures reach, in seconds.
        max_samples: latencies kept per endpoint (the newest ones).
        clock: where time comes from (seconds, monotonic); tests and the simulator
            pass a virtual one.

    Raises:
        ValueError: ``window`` is not positive or ``max_samples`` is below 1.
    """

    wants = frozenset({AttemptFinished})  # the only event it reads

    def __init__(
        self,
        window: float = 300.0,
        max_samples: int = 2048,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not window > 0 or not math.isfinite(window):
            raise ValueError(f"window must be a positive number of seconds, got {window!r}")
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples!r}")
        self.window = float(window)
        self.max_samples = max_samples
        self._clock = clock
        self._width = self.window / _SLICES
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self._sources: weakref.WeakSet[_Flushable] = weakref.WeakSet()

    def __call__(self, event: Event) -> None:
        if isinstance(event, AttemptFinished):
            self.attempt(event.endpoint, event.outcome, event.latency, event.error)

    def attempt(self, endpoint: str, outcome: str, latency: float, error: str | None) -> None:
        """Count one attempt (the Router calls this directly, building no event)."""
        with self._lock:
            now = self._clock()
            ep = self._endpoint(endpoint)
            if outcome == "ok":
                self._ok(ep, now, latency)
                return
            counts = self._slice(ep, now)
            if outcome == "skipped":
                counts.skipped += 1
                return
            counts.calls += 1
            kind = error or "unknown"
            counts.errors[kind] = counts.errors.get(kind, 0) + 1

    def successes(
        self, endpoint: str, items: Iterable[tuple[float, float, int]], at: float
    ) -> None:
        """Count successes that waited in a breaker's ledger.

        Each item is ``(time, latency, generation)`` with times on the clock that gave
        ``at`` (the breaker's, read as they were handed over); they are placed at their
        own age on this listener's clock.
        """
        with self._lock:
            shift = self._clock() - at
            ep = self._endpoint(endpoint)
            for when, latency, _ in items:
                self._ok(ep, when + shift, latency)

    def follow(self, source: _Flushable) -> None:
        """Call ``source.flush()`` before each :meth:`snapshot`, so successes waiting in
        its ledger (a breaker's) are counted. Held weakly: a Router that is gone is not
        kept alive by its listener."""
        self._sources.add(source)

    def _endpoint(self, name: str) -> _Endpoint:
        ep = self._endpoints.get(name)
        if ep is None:
            ep = self._endpoints[name] = _Endpoint(self.max_samples)
        return ep

    def _ok(self, ep: _Endpoint, now: float, latency: float) -> None:
        counts = self._slice(ep, now)
        counts.calls += 1
        counts.ok += 1
        ep.add_latency(now, latency)

    def _slice(self, ep: _Endpoint, now: float) -> _Slice:
        index = int(now // self._width)
        slices = ep.slices
        if not slices or slices[-1].index < index:
            slices.append(_Slice(index))
            while slices[0].index <= index - _SLICES:
                slices.popleft()
            return slices[-1]
        if slices[-1].index == index:
            return slices[-1]
        return _earlier_slice(slices, index)

    def snapshot(self) -> dict[str, EndpointStats]:
        """Each endpoint's figures over the last ``window`` seconds, by endpoint name.

        Every endpoint heard of since the listener was made is present, with zero counts
        and ``None`` percentiles when nothing happened within the window.
        """
        for source in list(self._sources):
            source.flush()
        with self._lock:
            now = self._clock()
            first = math.floor(now / self._width) - _SLICES + 1
            oldest = now - self.window
            raw = {
                name: (
                    [s for s in ep.slices if s.index >= first],
                    ep.latencies_since(oldest),
                )
                for name, ep in self._endpoints.items()
            }
            # Copy the slices' error dicts while the lock holds writers off.
            frozen = {
                name: (
                    sum(s.calls for s in slices),
                    sum(s.ok for s in slices),
                    sum(s.skipped for s in slices),
                    _merge(s.errors for s in slices),
                    latencies,
                )
                for name, (slices, latencies) in raw.items()
            }
        out = {}
        for name, (calls, ok, skipped, errors, latencies) in frozen.items():
            latencies.sort()
            out[name] = EndpointStats(
                calls=calls,
                ok=ok,
                errors=MappingProxyType(errors),
                p50=percentile(latencies, 0.50),
                p95=percentile(latencies, 0.95),
                p99=percentile(latencies, 0.99),
                skipped=skipped,
            )
        return out

    def __repr__(self) -> str:
        return f"StatsListener(window={self.window!r}, max_samples={self.max_samples!r})"


def _merge(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for kind, n in d.items():
            total[kind] = total.get(kind, 0) + n
    return dict(sorted(total.items()))


def percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of ascending ``ordered`` (None when empty).

    The smallest sample with at least ``q`` of all samples at or below it: of 1..100,
    p50 is 50, p95 is 95 and p99 is 99. Always one of the samples, never interpolated.
    """
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]
