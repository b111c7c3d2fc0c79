"""Throughput with 50 concurrent asyncio callers: failover vs the SDK and vs LiteLLM's Router.

Fifty tasks on one event loop call as fast as they can for a fixed window, against the
async fake (``bench/fake_async_server.py``) in a process of its own; the fake's own CPU use
is reported so it can be seen not to be the bottleneck. Two groups, each in a fresh
process (litellm's import and background work would otherwise weigh on the windows that
follow its own), each side in its own short windows, the order alternated every repetition. Within a
group the ratio is the median of the ratios between neighbouring windows (the machine's
speed drifts over a run); the ratio of failover to litellm.Router compares the two
groups' median rates:

- ``AsyncAnthropic.messages.create`` (the SDK called directly);
- ``router.acomplete`` on an anthropic endpoint (default listeners);
- ``litellm.Router.acompletion``;
- ``router.acomplete`` on a litellm endpoint.

    python bench/throughput.py [--quick] [--json]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
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


async def measure(url: str, quick: bool, group: str) -> dict[str, Any]:
    """One group's sides, windows rotated: ``anthropic`` (the SDK direct vs failover) or
    ``litellm`` (litellm.Router vs failover on a litellm endpoint)."""
    sides: dict[str, Callable[[], Awaitable[object]]]
    if group == "anthropic":
        direct = async_anthropic_client(url)
        ours = Router.from_dict(policy(primary=anthropic_endpoint(url)))
        sides = {
            "direct AsyncAnthropic": lambda: direct.messages.create(
                model="claude-bench", messages=MSG, max_tokens=64
            ),
            "failover acomplete": lambda: ours.acomplete(MSG, max_tokens=64),
        }
    else:
        quiet_litellm()
        ours = Router.from_dict(policy(gpt=litellm_endpoint(url)))
        theirs = litellm_router(url)
        sides = {
            "litellm.Router acompletion": lambda: theirs.acompletion(
                model="chat", messages=MSG, max_tokens=64
            ),
            "failover acomplete (litellm endpoint)": lambda: ours.acomplete(MSG, max_tokens=64),
        }
    # Short windows, alternated: the machine's speed drifts over a run (seen here: by 20 %
    # within a minute), so ratios are taken between neighbouring windows, not overall.
    seconds, reps = (0.5, 4) if quick else (0.5, 24)
    for call in sides.values():  # warm: connections (50 each), imports, caches
        await window(call, 0.5, url)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    cpus: dict[str, list[float]] = {name: [] for name in sides}
    fakes: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            rate, cpu, fake = await window(sides[name], seconds, url)
            rates[name].append(rate)
            cpus[name].append(cpu)
            fakes[name].append(fake)
    if group == "anthropic":
        await direct.close()
    await ours.aclose()
    return {
        "window_s": seconds,
        "repetitions": reps,
        "sides": {
            name: {
                "calls_per_s": median(rates[name]),
                "all_calls_per_s": rates[name],
                "client_cpu_ms_per_call": median(cpus[name]),
                "fake_cpu_share": median(fakes[name]),
            }
            for name in sides
        },
    }


def _group(group: str, quick: bool) -> dict[str, Any]:
    """Run one group in a fresh process: litellm's import and its background work must
    not weigh on the anthropic group's windows (interleaved in one process, they did)."""
    cmd = [sys.executable, __file__, "--json", *(["--quick"] if quick else [])]
    env = {**os.environ, _GROUP_ENV: group}
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


_GROUP_ENV = "FAILOVER_BENCH_THROUGHPUT_GROUP"


def _paired(figures: dict[str, Any], side: str, base: str) -> float:
    """The median over repetitions of each repetition's ratio of ``side`` to ``base``
    (neighbouring windows, so the machine's drift cancels)."""
    rates = zip(figures[side]["all_calls_per_s"], figures[base]["all_calls_per_s"], strict=True)
    return median([ours / theirs for ours, theirs in rates])


def run(quick: bool) -> dict[str, Any]:
    group = os.environ.get(_GROUP_ENV)
    if group:  # the child process of one group
        with async_fake() as url:
            return asyncio.run(measure(url, quick, group))
    first, second = _group("anthropic", quick), _group("litellm", quick)
    figures = {**first["sides"], **second["sides"]}
    rate = {name: f["calls_per_s"] for name, f in figures.items()}
    result = {
        "quick": quick,
        "concurrency": CONCURRENCY,
        "window_s": first["window_s"],
        "repetitions": first["repetitions"],
        "sides": figures,
        "vs_direct": _paired(figures, "failover acomplete", "direct AsyncAnthropic"),
        "vs_litellm_router": rate["failover acomplete"] / rate["litellm.Router acompletion"],
        "litellm_endpoint_vs_litellm_router": _paired(
            figures, "failover acomplete (litellm endpoint)", "litellm.Router acompletion"
        ),
    }
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
