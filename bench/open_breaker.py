"""A call whose primary's breaker is open vs a direct call to the secondary.

The primary is a ``FakeProvider`` in this process whose breaker is forced open
(``router.breaker("primary").force_open()``, with a 1 h ``reset_timeout`` so it stays
open); the secondary is the async fake in a process of its own. Interleaved, order
rotated each round:

- the anthropic SDK calling the secondary directly (the goal's baseline);
- the router on route ``[primary, secondary]``: primary skipped, secondary answers;
- the router on route ``[secondary]`` alone, to separate the cost of skipping an open
  breaker from the router's per-call cost.

Checked: the primary received no request (its ``request_count`` stays 0) and its SDK
client was never even created, so no socket to it was opened; every answer came from
the secondary with the primary's attempt recorded as ``skipped``.
Goal: + ≤ 0.1 ms over the direct call at p50.

    python bench/open_breaker.py [--quick] [--json]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _common import (
    MSG,
    anthropic_client,
    anthropic_endpoint,
    async_fake,
    best_us,
    cli,
    interleave,
    out,
    percentile,
    stub_provider,
)

from failover import Router
from failover.testing import FakeProvider


def open_connections(provider: Any) -> int:
    """Connections in an anthropic adapter's sync client pool (the client is built when the
    Router is; a connection exists only once a request went out)."""
    return len(provider.client()._client._transport._pool.connections)


def skip_cost_stub(pol: dict[str, Any], quick: bool) -> float:
    """µs a call spends skipping an open breaker, with stub providers (back to back, best)."""
    router = Router.from_dict(pol)
    for route in pol["routes"]:
        for endpoint in router._routes[route]:
            endpoint.provider = stub_provider()
    router.breaker("primary").force_open()
    number = 2000 if quick else 10000

    def best(fn: Callable[[], object]) -> float:
        return best_us(fn, number)

    skipping = best(lambda: router.complete(MSG, max_tokens=64))
    alone = best(lambda: router.complete(MSG, route="secondary_only", max_tokens=64))
    return skipping - alone


def run(quick: bool) -> dict[str, Any]:
    rounds = 300 if quick else 1500
    with FakeProvider(name="primary") as primary, async_fake() as secondary_url:
        endpoints = {
            "primary": {**anthropic_endpoint(primary.url), "breaker": {"reset_timeout": "1h"}},
            "secondary": anthropic_endpoint(secondary_url),
        }
        pol = {
            "version": 1,
            "endpoints": endpoints,
            "routes": {
                "chat": {"endpoints": ["primary", "secondary"]},
                "secondary_only": {"endpoints": ["secondary"]},
            },
            "default_route": "chat",
        }
        router = Router.from_dict(pol)
        router.breaker("primary").force_open()
        client = anthropic_client(secondary_url)
        last: dict[str, Any] = {}

        def failover() -> None:
            last["response"] = router.complete(MSG, max_tokens=64)

        sides: dict[str, Callable[[], object]] = {
            "direct SDK -> secondary": lambda: client.messages.create(
                model="claude-bench", messages=MSG, max_tokens=64
            ),
            "failover, primary open": failover,
            "failover, secondary-only route": lambda: router.complete(
                MSG, route="secondary_only", max_tokens=64
            ),
        }
        for _ in range(20 if quick else 100):
            for call in sides.values():
                call()
        samples: dict[str, list[float]] = {name: [] for name in sides}
        interleave(sides, rounds, samples)
        response = last["response"]
        checks = {
            "primary_request_count": primary.request_count,
            "primary_connections": open_connections(router._providers["primary"]),
            "primary_state": router.breaker("primary").state,
            "last_attempts": [(a.endpoint, a.outcome) for a in response.attempts],
            "last_endpoint": response.endpoint,
        }
        router.close()
        client.close()
        stub_us = skip_cost_stub(pol, quick)
    figures = {
        name: {"p50_ms": percentile(s, 0.5) * 1000, "p99_ms": percentile(s, 0.99) * 1000}
        for name, s in samples.items()
    }
    base = figures["direct SDK -> secondary"]
    skipped = figures["failover, primary open"]
    alone = figures["failover, secondary-only route"]
    result = {
        "quick": quick,
        "rounds": rounds,
        "sides": figures,
        "added_vs_direct_p50_ms": skipped["p50_ms"] - base["p50_ms"],
        "added_vs_direct_p99_ms": skipped["p99_ms"] - base["p99_ms"],
        "skip_cost_p50_ms": skipped["p50_ms"] - alone["p50_ms"],
        "skip_cost_stub_us": stub_us,
        "checks": checks,
        "no_request_to_primary": checks["primary_request_count"] == 0
        and checks["primary_connections"] == 0,
    }
    result["goal_met"] = result["added_vs_direct_p50_ms"] <= 0.1
    out(f"{rounds} calls per side, interleaved; primary's breaker forced open")
    out(f"{'':34}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}")
    for name, f in figures.items():
        out(f"{name:34}{f['p50_ms']:9.3f}{f['p99_ms']:9.3f}{f['p50_ms'] - base['p50_ms']:+9.3f}")
    out(
        f"skipping the open breaker itself: {result['skip_cost_p50_ms'] * 1000:+.0f} µs at p50"
        f" (primary-open route vs secondary-only route); {stub_us:.0f} µs with stub providers,"
        " back to back"
    )
    out(
        f"primary: {checks['primary_request_count']} requests, connections in its client's"
        f" pool: {checks['primary_connections']}, breaker {checks['primary_state']};"
        f" last attempts {checks['last_attempts']}"
    )
    out(f"goal + <= 0.1 ms at p50: {'met' if result['goal_met'] else 'MISSED'}")
    return result


if __name__ == "__main__":
    cli(run, __doc__)
