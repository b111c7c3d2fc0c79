"""Throughput with 50 concurrent asyncio callers: failover vs the SDK and vs LiteLLM's Router.

Fifty tasks on one event loop call as fast as they can for a fixed window, against the
async fake (``bench/fake_async_server.py``) in a process of its own; the fake's own CPU use
is reported so it can be seen not to be the bottleneck. Sides, each in its own window,
the order rotated every repetition, medians over the repetitions:

- ``AsyncAnthropic.messages.create`` (the SDK called directly);
- ``router.acomplete`` on an anthropic endpoint (default listeners);
- ``litellm.Router.acompletion``;
- ``router.acomplete`` on a litellm endpoint.

    python bench/throughput.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import (
    MSG,
    anthropic_endpoint,
    async_anthropic_client,
    async_fake,
    cli,
    fake_cpu,
    litellm_endpoint,
    litellm_router,
    median,
    out,
    policy,
    quiet_litellm,
)

from failover import Router

CONCURRENCY = 50


async def window(
    call: Callable[[], Awaitable[object]], seconds: float, url: str
) -> tuple[float, float, float]:
    """Calls/s, client CPU ms per call, and the fake's CPU share over one window."""
    done = 0
    end = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await call()
            done += 1

    fake0 = fake_cpu(url)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    fake = fake_cpu(url) - fake0
    return done / elapsed, cpu / done * 1000, fake / elapsed


async def measure(url: str, quick: bool) -> dict[str, Any]:
    quiet_litellm()
    direct = async_anthropic_client(url)
    ours = Router.from_dict(policy(primary=anthropic_endpoint(url)))
    ours_litellm = Router.from_dict(policy(gpt=litellm_endpoint(url)))
    theirs = litellm_router(url)
    sides: dict[str, Callable[[], Awaitable[object]]] = {
        "direct AsyncAnthropic": lambda: direct.messages.create(
            model="claude-bench", messages=MSG, max_tokens=64
        ),
        "failover acomplete": lambda: ours.acomplete(MSG, max_tokens=64),
        "litellm.Router acompletion": lambda: theirs.acompletion(
            model="chat", messages=MSG, max_tokens=64
        ),
        "failover acomplete (litellm endpoint)": lambda: ours_litellm.acomplete(MSG, max_tokens=64),
    }
    seconds, reps = (1.0, 2) if quick else (2.0, 4)
    for call in sides.values():  # warm: connections (50 each), imports, caches
        await window(call, 0.3, url)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    cpus: dict[str, list[float]] = {name: [] for name in sides}
    fakes: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            rate, cpu, fake = await window(sides[name], seconds, url)
            rates[name].append(rate)
            cpus[name].append(cpu)
            fakes[name].append(fake)
    await direct.close()
    await ours.aclose()
    await ours_litellm.aclose()
    figures = {
        name: {
            "calls_per_s": median(rates[name]),
            "all_calls_per_s": rates[name],
            "client_cpu_ms_per_call": median(cpus[name]),
            "fake_cpu_share": median(fakes[name]),
        }
        for name in sides
    }
    direct_rate = figures["direct AsyncAnthropic"]["calls_per_s"]
    litellm_rate = figures["litellm.Router acompletion"]["calls_per_s"]
    return {
        "quick": quick,
        "concurrency": CONCURRENCY,
        "window_s": seconds,
        "repetitions": reps,
        "sides": figures,
        "vs_direct": figures["failover acomplete"]["calls_per_s"] / direct_rate,
        "vs_litellm_router": figures["failover acomplete"]["calls_per_s"] / litellm_rate,
        "litellm_endpoint_vs_litellm_router": (
            figures["failover acomplete (litellm endpoint)"]["calls_per_s"] / litellm_rate
        ),
    }


def run(quick: bool) -> dict[str, Any]:
    with async_fake() as url:
        result = asyncio.run(measure(url, quick))
    out(
        f"{CONCURRENCY} concurrent callers, {result['repetitions']} windows of"
        f" {result['window_s']:g} s per side, async fake in its own process"
    )
    out(f"{'':40}{'calls/s':>9}{'cpu ms/call':>13}{'fake cpu':>10}")
    for name, s in result["sides"].items():
        out(
            f"{name:40}{s['calls_per_s']:9.0f}{s['client_cpu_ms_per_call']:13.3f}"
            f"{s['fake_cpu_share']:10.0%}"
        )
    out(
        f"failover / direct SDK: {result['vs_direct']:.3f}x;"
        f" failover / litellm.Router: {result['vs_litellm_router']:.2f}x;"
        f" failover (litellm endpoint) / litellm.Router:"
        f" {result['litellm_endpoint_vs_litellm_router']:.2f}x"
    )
    return result


if __name__ == "__main__":
    cli(run, __doc__)
