"""Per-call overhead: the Router vs the anthropic SDK called directly, same fake, one run.

Calls are interleaved (direct, router, direct, router, ...) so both see the same machine
state; the figures that matter are the ratios of router to direct at p50 and p99.

    python bench/overhead.py [--calls 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import anthropic

from failover import Router
from failover.testing import FakeProvider

MSG = [{"role": "user", "content": "hello"}]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with FakeProvider(name="bench") as fake:
        policy = {
            "version": 1,
            "endpoints": {
                "primary": {
                    "provider": "anthropic",
                    "model": "claude-bench",
                    "api_key": "bench-key",
                    "base_url": fake.url,
                },
            },
            "routes": {"chat": {"endpoints": ["primary"]}},
        }
        router = Router.from_dict(policy)  # default listeners: what users run
        client = anthropic.Anthropic(
            api_key="bench-key",
            base_url=fake.url,
            max_retries=0,
            timeout=anthropic.Timeout(60, connect=3),
        )
        for _ in range(200):  # warm both paths: connections, imports, caches
            client.messages.create(model="claude-bench", messages=MSG, max_tokens=64)
            router.complete(MSG, max_tokens=64)
        direct: list[float] = []
        routed: list[float] = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            client.messages.create(model="claude-bench", messages=MSG, max_tokens=64)
            t1 = time.perf_counter()
            router.complete(MSG, max_tokens=64)
            t2 = time.perf_counter()
            direct.append(t1 - t0)
            routed.append(t2 - t1)
        router.close()
        client.close()

    result = {
        "calls": args.calls,
        "direct_p50_ms": percentile(direct, 0.5) * 1000,
        "router_p50_ms": percentile(routed, 0.5) * 1000,
        "direct_p99_ms": percentile(direct, 0.99) * 1000,
        "router_p99_ms": percentile(routed, 0.99) * 1000,
        "direct_mean_ms": statistics.fmean(direct) * 1000,
        "router_mean_ms": statistics.fmean(routed) * 1000,
    }
    result["p50_ratio"] = result["router_p50_ms"] / result["direct_p50_ms"]
    result["p99_ratio"] = result["router_p99_ms"] / result["direct_p99_ms"]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.calls} calls each, interleaved, against one FakeProvider")
    print(f"{'':8}{'direct SDK':>12}{'router':>12}{'ratio':>8}")
    for q in ("p50", "p99"):
        d, r = result[f"direct_{q}_ms"], result[f"router_{q}_ms"]
        print(f"{q:8}{d:10.3f}ms{r:10.3f}ms{r / d:8.3f}")


if __name__ == "__main__":
    main()
