"""What ``Router.status()`` reports: each endpoint's breaker and recent health."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._clock import Clock
    from .breaker._breaker import Breaker
    from .instrumentation._stats import StatsListener

__all__ = ["EndpointStatus", "endpoint_statuses"]


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """One endpoint's breaker and recent health, as ``Router.status()`` reports it.

    Times are Unix timestamps (seconds); latencies are seconds. The ``recent_`` figures
    and latency percentiles cover the stats window (5 minutes by default; successful
    requests only for latency). ``shared`` says where the breaker's state lives:
    ``"local"`` (this process), ``"redis"`` (shared by the fleet), or ``"degraded"``
    (Redis is away; this process runs on its own breaker until it is back).
    """

    name: str
    provider: str
    model: str
    state: str
    consecutive_failures: int
    window_calls: int
    window_failures: int
    total_successes: int
    total_failures: int
    opened_at: float | None
    retry_at: float | None
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None = None
    recent_calls: int = 0
    recent_errors: Mapping[str, int] = field(default_factory=dict)
    recent_skipped: int = 0
    shared: str = "local"


def endpoint_statuses(
    breakers: Mapping[tuple[str, Any], Breaker],
    policy: Any,
    stats: StatsListener,
    clock: Clock,
) -> list[EndpointStatus]:
    """One :class:`EndpointStatus` per breaker, times on the clock's wall time."""
    wall = getattr(clock, "time", None)
    now_wall = wall() if callable(wall) else time.time()
    now_mono = clock.monotonic()
    recent = stats.snapshot()
    out = []
    for (name, _), breaker in breakers.items():
        ep = policy.endpoints[name]
        snap = breaker.snapshot()
        figures = recent.get(name)
        out.append(
            EndpointStatus(
                name=breaker.name,
                provider=ep.provider,
                model=ep.model,
                state=snap.state,
                consecutive_failures=snap.consecutive_failures,
                window_calls=snap.window_calls,
                window_failures=snap.window_failures,
                total_successes=snap.total_successes,
                total_failures=snap.total_failures,
                opened_at=_wall(snap.opened_at, now_wall, now_mono),
                retry_at=_wall(snap.retry_at, now_wall, now_mono),
                latency_p50=figures.p50 if figures else None,
                latency_p95=figures.p95 if figures else None,
                latency_p99=figures.p99 if figures else None,
                recent_calls=figures.calls if figures else 0,
                recent_errors=dict(figures.errors) if figures else {},
                recent_skipped=figures.skipped if figures else 0,
                shared=breaker.shared,
            )
        )
    return out


def _wall(mono: float | None, now_wall: float, now_mono: float) -> float | None:
    return None if mono is None else now_wall - (now_mono - mono)
