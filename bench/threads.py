"""32 threads, one shared Router, against a 300 ms endpoint: wall time for all to finish.

A ``FakeProvider`` with ``Latency(0.3)`` (thread per connection, so 32 requests are
served side by side) answers every request 300 ms late. 32 threads released together each
make one call; the figure is the time from release until the last one returns. The same
is done with one shared ``anthropic.Anthropic`` client as the baseline. The first round
uses a fresh Router and client: it opens 32 connections, and the Router does its one-time
set-up on first use (imports, breakers, the SDK client), which is also timed on its own.
Later rounds reuse everything. Goal: under 1 s, every warm round (the first round is
reported beside it).

    python bench/threads.py [--quick] [--json]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from _common import MSG, anthropic_client, anthropic_endpoint, cli, median, out, policy

from failover import Router
from failover.testing import FakeProvider, Latency

THREADS = 32
LATENCY = 0.3


def together(call: Callable[[], object]) -> float:
    """Release THREADS threads at once, each making one call; seconds until the last returns."""
    start = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:  # reported below: a failed call must not look fast
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} of {THREADS} calls failed: {errors[0]!r}")
    return elapsed


def first_use(url: str) -> dict[str, float]:
    """A fresh Router's one-time set-up on its first call, single-threaded (ms)."""
    router = Router.from_dict(policy(primary=anthropic_endpoint(url)))
    t0 = time.perf_counter()
    router.complete(MSG, max_tokens=64)
    t1 = time.perf_counter()
    router.complete(MSG, max_tokens=64)
    t2 = time.perf_counter()
    router.close()
    return {"first_call_ms": (t1 - t0) * 1000, "second_call_ms": (t2 - t1) * 1000}


def run(quick: bool) -> dict[str, Any]:
    rounds = 3 if quick else 6
    with FakeProvider(name="slow", mode=Latency(LATENCY)) as fake:
        router = Router.from_dict(policy(primary=anthropic_endpoint(fake.url)))
        client = anthropic_client(fake.url)
        sides: dict[str, Callable[[], object]] = {
            "failover": lambda: router.complete(MSG, max_tokens=64),
            "direct SDK": lambda: client.messages.create(
                model="claude-bench", messages=MSG, max_tokens=64
            ),
        }
        walls: dict[str, list[float]] = {name: [] for name in sides}
        for i in range(rounds):
            for name in list(sides)[i % 2 :] + list(sides)[: i % 2]:
                before = fake.request_count
                walls[name].append(together(sides[name]))
                assert fake.request_count - before == THREADS
        router.close()
        client.close()
        setup = first_use(fake.url)  # the imports are done by now: this is the rest
    figures = {
        name: {
            "first_round_s": w[0],
            "warm_median_s": median(w[1:]),
            "warm_max_s": max(w[1:]),
            "all_s": w,
        }
        for name, w in walls.items()
    }
    result = {
        "quick": quick,
        "threads": THREADS,
        "latency_s": LATENCY,
        "rounds": rounds,
        "sides": figures,
        "worst_warm_s": figures["failover"]["warm_max_s"],
        "first_round_s": figures["failover"]["first_round_s"],
        "goal_met": figures["failover"]["warm_max_s"] < 1.0,
        "fresh_router_after_imports": setup,
    }
    out(f"{THREADS} threads, one call each, endpoint answers after {LATENCY * 1000:.0f} ms")
    out(f"{'':12}{'first round':>13}{'warm median':>13}{'warm worst':>12}")
    for name, f in figures.items():
        out(
            f"{name:12}{f['first_round_s']:12.3f}s{f['warm_median_s']:12.3f}s"
            f"{f['warm_max_s']:11.3f}s"
        )
    out(
        f"a fresh Router, imports already done: first call {setup['first_call_ms']:.0f} ms,"
        f" second {setup['second_call_ms']:.0f} ms (300 ms of it the endpoint's latency)"
    )
    out(f"goal < 1 s (every warm round): {'met' if result['goal_met'] else 'MISSED'}")
    return result


if __name__ == "__main__":
    cli(run, __doc__)
