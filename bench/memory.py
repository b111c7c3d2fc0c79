"""Resident memory as calls accumulate: is it flat?

One Router (default listeners, as users run it) calls the async fake (own process) with
``acomplete`` from 50 concurrent tasks; at each checkpoint the process's ``VmRSS`` (from
/proc/self/status) and the number of objects the garbage collector tracks are read, after
a ``gc.collect()`` so garbage awaiting collection does not blur the picture. The full run
makes 100k real HTTP calls (about five minutes on two cores; 5k with ``--quick``); the
slope after the first few thousand calls is what tells a leak.

Goal: flat. Met when RSS grows by under 2 MiB and the tracked objects by under 1% from
the 5k checkpoint (2k with ``--quick``) to the last: the first calls fill pools, caches
and the bounded latency ring of the stats listener.

    python bench/memory.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from _common import MSG, anthropic_endpoint, async_fake, cli, out, policy, rss_kib

from failover import Router

CONCURRENCY = 50


async def measure(url: str, checkpoints: list[int]) -> list[dict[str, int]]:
    router = Router.from_dict(policy(primary=anthropic_endpoint(url)))
    readings = []
    done = 0
    for target in checkpoints:
        todo = target - done

        async def caller(share: int) -> None:
            for _ in range(share):
                await router.acomplete(MSG, max_tokens=64)

        shares = [todo // CONCURRENCY + (i < todo % CONCURRENCY) for i in range(CONCURRENCY)]
        await asyncio.gather(*(caller(n) for n in shares if n))
        done = target
        gc.collect()
        readings.append({"calls": done, "rss_kib": rss_kib(), "gc_objects": len(gc.get_objects())})
        out(
            f"  {done:7d} calls: VmRSS {readings[-1]['rss_kib'] / 1024:7.1f} MiB,"
            f" {readings[-1]['gc_objects']} gc-tracked objects"
        )
    await router.aclose()
    return readings


def run(quick: bool) -> dict[str, Any]:
    checkpoints = [1000, 2000, 5000] if quick else [1000, 2000, 5000, 10000, 25000, 50000, 100000]
    out(f"router.acomplete, {CONCURRENCY} concurrent tasks, async fake in its own process")
    with async_fake() as url:
        readings = asyncio.run(measure(url, checkpoints))
    by_calls = {r["calls"]: r for r in readings}
    base_at = 2000 if quick else 5000
    first, base, last = readings[0], by_calls[base_at], readings[-1]
    span = last["calls"] - base["calls"]
    result = {
        "quick": quick,
        "readings": readings,
        "rss_growth_from_1k_kib": last["rss_kib"] - first["rss_kib"],
        "base_calls": base_at,
        "rss_growth_after_base_kib": last["rss_kib"] - base["rss_kib"],
        "objects_growth_after_base": last["gc_objects"] - base["gc_objects"],
        "rss_kib_per_1k_calls_after_base": (last["rss_kib"] - base["rss_kib"]) / span * 1000,
    }
    result["goal_met"] = (
        result["rss_growth_after_base_kib"] < 2048
        and result["objects_growth_after_base"] < 0.01 * base["gc_objects"]
    )
    out(
        f"RSS {first['rss_kib'] / 1024:.1f} MiB at {first['calls']} calls,"
        f" {last['rss_kib'] / 1024:.1f} MiB at {last['calls']}"
        f" ({result['rss_growth_after_base_kib']:+d} KiB after {base['calls']});"
        f" gc-tracked objects {result['objects_growth_after_base']:+d} after {base['calls']}"
    )
    out(f"goal flat: {'met' if result['goal_met'] else 'MISSED'}")
    return result


if __name__ == "__main__":
    cli(run, __doc__)
