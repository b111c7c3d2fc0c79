"""Per-call overhead: failover vs the anthropic SDK called directly and vs LiteLLM's Router.

One async fake (``bench/fake_async_server.py``) in a process of its own answers both APIs,
so the client process runs nothing but the code being measured. Two comparisons, each
interleaved call by call with the order rotated every round:

- Anthropic: ``client.messages.create`` (SDK called directly) vs ``router.complete`` on an
  anthropic endpoint (default listeners, as users run it), plus two diagnostic sides:
  the router with ``listeners=[]`` and failover's provider adapter called alone;
- LiteLLM: ``litellm.Router(...).completion`` vs ``router.complete`` on a litellm endpoint.

Besides wall time, each call's CPU time is recorded (``time.process_time``: the process's
threads, so litellm's worker threads count too; the fake's CPU does not): on a loaded
machine wall time also holds scheduler delays, which grow with the CPU a call uses.

A breakdown follows, without the network: the router's own code with a stub provider
(hot in a loop, and cold: right after a real SDK call, as in real use), what each piece of
the happy path costs, and how much of a real call is spent inside vs outside the provider.

    python bench/litellm_router.py [--quick] [--json]
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from _common import (
    MSG,
    anthropic_client,
    anthropic_endpoint,
    async_fake,
    best_us,
    cli,
    litellm_endpoint,
    litellm_router,
    median,
    out,
    percentile,
    policy,
    quiet_litellm,
    stub_provider,
)

from failover import Router


class TimedProvider:
    """Wraps a provider and remembers how long its last ``complete`` took (diagnostics)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.last = 0.0

    def complete(self, call: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner.complete(call)
        finally:
            self.last = time.perf_counter() - t0

    def close(self) -> None:
        self.inner.close()


class GCWatch:
    """Counts collections, and the time they take, per side of an interleaved run."""

    def __init__(self) -> None:
        self.side = ""
        self.counts: dict[str, list[int]] = {}
        self.time: dict[str, float] = {}
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.side:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        self.counts.setdefault(self.side, [0, 0, 0])[info["generation"]] += 1
        self.time[self.side] = self.time.get(self.side, 0.0) + time.perf_counter() - self._t0


def interleaved(
    sides: dict[str, Callable[[], object]],
    rounds: int,
    warm: int,
    probes: dict[str, Callable[[], float]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]], GCWatch, dict[str, list[float]]]:
    """Wall and thread-CPU seconds per call for each side, order rotated every round.

    ``probes`` maps a side to a callable read right after each of its calls (e.g. how
    long was spent inside the provider); its readings are returned per side.
    """
    probes = probes or {}
    for _ in range(warm):
        for call in sides.values():
            call()
    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    readings: dict[str, list[float]] = {name: [] for name in probes}
    watch = GCWatch()
    gc.callbacks.append(watch)
    names = list(sides)
    try:
        for i in range(rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                call = sides[name]
                watch.side = name
                c0 = time.process_time()
                t0 = time.perf_counter()
                call()
                t1 = time.perf_counter()
                c1 = time.process_time()
                watch.side = ""
                wall[name].append(t1 - t0)
                cpu[name].append(c1 - c0)
                if name in probes:
                    readings[name].append(probes[name]())
    finally:
        gc.callbacks.remove(watch)
    return wall, cpu, watch, readings


def summarize(
    wall: dict[str, list[float]], cpu: dict[str, list[float]], watch: GCWatch
) -> dict[str, dict[str, float]]:
    figures = {}
    for name, samples in wall.items():
        n = len(samples)
        figures[name] = {
            "calls": n,
            "p50_ms": percentile(samples, 0.5) * 1000,
            "p99_ms": percentile(samples, 0.99) * 1000,
            "mean_ms": sum(samples) / n * 1000,
            "cpu_p50_ms": percentile(cpu[name], 0.5) * 1000,
            "cpu_mean_ms": sum(cpu[name]) / n * 1000,
            "gc_per_1k_calls": sum(watch.counts.get(name, [0, 0, 0])) * 1000 / n,
            "gc_full_per_1k_calls": watch.counts.get(name, [0, 0, 0])[2] * 1000 / n,
            "gc_us_per_call": watch.time.get(name, 0.0) / n * 1e6,
        }
    return figures


def ratios(figures: dict[str, dict[str, float]], side: str, base: str) -> dict[str, float]:
    s, b = figures[side], figures[base]
    return {
        "p50_ratio": s["p50_ms"] / b["p50_ms"],
        "p99_ratio": s["p99_ms"] / b["p99_ms"],
        "cpu_ratio": s["cpu_mean_ms"] / b["cpu_mean_ms"],
        "p50_added_us": (s["p50_ms"] - b["p50_ms"]) * 1000,
        "cpu_added_us": (s["cpu_mean_ms"] - b["cpu_mean_ms"]) * 1000,
    }


def anthropic_side(url: str, quick: bool) -> dict[str, Any]:
    from failover.providers import ProviderRequest

    client = anthropic_client(url)
    pol = policy(primary=anthropic_endpoint(url))
    router = Router.from_dict(pol)  # default listeners: what users run
    bare = Router.from_dict(pol, listeners=[])
    endpoint = bare._routes["chat"][0]
    timed = endpoint.provider = TimedProvider(endpoint.provider)
    adapter = Router.from_dict(pol, listeners=[])._routes["chat"][0].provider
    call = ProviderRequest(
        messages=MSG, params={"max_tokens": 64}, connect_timeout=3.0, read_timeout=60.0
    )
    sides: dict[str, Callable[[], object]] = {
        "direct SDK": lambda: client.messages.create(
            model="claude-bench", messages=MSG, max_tokens=64
        ),
        "failover": lambda: router.complete(MSG, max_tokens=64),
        "failover, listeners=[]": lambda: bare.complete(MSG, max_tokens=64),
        "provider adapter alone": lambda: adapter.complete(call),
    }
    probed = "failover, listeners=[]"
    rounds = 300 if quick else 2000
    wall, cpu, watch, readings = interleaved(
        sides, rounds, 20 if quick else 200, {probed: lambda: timed.last}
    )
    figures = summarize(wall, cpu, watch)
    inside = readings[probed]
    outside = [w - x for w, x in zip(wall[probed], inside, strict=True)]
    split = {
        "inside_provider_p50_ms": median(inside) * 1000,
        "outside_provider_p50_us": median(outside) * 1e6,
        "outside_provider_mean_us": sum(outside) / len(outside) * 1e6,
        "adapter_alone_p50_ms": figures["provider adapter alone"]["p50_ms"],
    }
    split["inside_minus_alone_p50_us"] = (
        split["inside_provider_p50_ms"] - split["adapter_alone_p50_ms"]
    ) * 1000
    for r in (router, bare):
        r.close()
    client.close()
    return {
        "sides": figures,
        "vs_direct": ratios(figures, "failover", "direct SDK"),
        "bare_vs_direct": ratios(figures, "failover, listeners=[]", "direct SDK"),
        "adapter_vs_direct": ratios(figures, "provider adapter alone", "direct SDK"),
        "split": split,
    }


def litellm_side(url: str, quick: bool) -> dict[str, Any]:
    quiet_litellm()
    theirs = litellm_router(url)
    ours = Router.from_dict(policy(gpt=litellm_endpoint(url)))
    sides: dict[str, Callable[[], object]] = {
        "litellm.Router": lambda: theirs.completion(model="chat", messages=MSG, max_tokens=64),
        "failover (litellm endpoint)": lambda: ours.complete(MSG, max_tokens=64),
    }
    wall, cpu, watch, _ = interleaved(sides, 60 if quick else 400, 10 if quick else 30)
    figures = summarize(wall, cpu, watch)
    ours.close()
    return {
        "sides": figures,
        "vs_litellm_router": ratios(figures, "failover (litellm endpoint)", "litellm.Router"),
    }


def breakdown(url: str, quick: bool) -> dict[str, Any]:
    """The router's own code with a stub provider, and what each happy-path piece costs."""
    from failover import _deadline
    from failover._events import AttemptFinished, AttemptStarted, CallFinished, CallStarted
    from failover._response import Attempt, Response, Usage
    from failover.instrumentation import StatsListener
    from failover.providers import ProviderRequest

    pol = policy(primary=anthropic_endpoint(url))
    stubbed = {}
    for label, kwargs in (("default listeners", {}), ("listeners=[]", {"listeners": []})):
        r = Router.from_dict(pol, **kwargs)
        r._routes["chat"][0].provider = stub_provider()
        stubbed[label] = r
    seen: list[str] = []
    counting = Router.from_dict(pol, listeners=[lambda e: seen.append(type(e).__name__)])
    counting._routes["chat"][0].provider = stub_provider()
    counting.complete(MSG, max_tokens=64)

    number = 2000 if quick else 10000

    def best(fn: Callable[[], object]) -> float:
        return best_us(fn, number)

    hot = {k: best(lambda r=r: r.complete(MSG, max_tokens=64)) for k, r in stubbed.items()}

    # Cold: right after a real SDK call, as in real use, or after a 2 ms sleep. Either way
    # the thread blocked, the core ran other work, and the router's code and data must
    # come back into the CPU caches.
    client = anthropic_client(url)
    befores: dict[str, Callable[[], object]] = {
        "after an SDK call": lambda: client.messages.create(
            model="claude-bench", messages=MSG, max_tokens=64
        ),
        "after sleep(2 ms)": lambda: time.sleep(0.002),
    }
    cold: dict[str, dict[str, list[float]]] = {
        before: {k: [] for k in stubbed} for before in befores
    }
    for _ in range(200 if quick else 1000):
        for before, wait in befores.items():
            for label, r in stubbed.items():
                wait()
                t0 = time.perf_counter()
                r.complete(MSG, max_tokens=64)
                cold[before][label].append(time.perf_counter() - t0)
    client.close()

    breaker = stubbed["listeners=[]"].breaker("primary")
    stats = StatsListener()
    finished = AttemptFinished(
        "chat", "primary", "m", 0, "ok", 0.1, 0.1, request_id="r", call_id=1, provider="anthropic"
    )

    def permit() -> None:
        p = breaker.acquire()
        assert p is not None
        p.success(0.001)

    def set_reset() -> None:
        _deadline.reset_deadline(_deadline.set_deadline(90.0))

    def lazy_import() -> None:
        from failover._route_call import RouteCall  # noqa: F401

    pieces = {
        "AttemptFinished(...) (frozen dataclass, 16 fields)": lambda: AttemptFinished(
            "chat",
            "primary",
            "m",
            0,
            "ok",
            0.1,
            0.1,
            request_id="r",
            call_id=1,
            provider="anthropic",
            input_tokens=1,
            output_tokens=2,
        ),
        "Response(...) (frozen dataclass, 11 fields)": lambda: Response(
            text="t",
            endpoint="e",
            provider="p",
            model="m",
            attempts=(),
            latency=0.1,
            usage=Usage(1, 2),
            stop_reason="end_turn",
            raw=None,
        ),
        "CallFinished(...) (frozen dataclass, 12 fields)": lambda: CallFinished(
            "chat", "primary", "ok", 0.1, 1, call_id=1, model="m", provider="anthropic"
        ),
        "Attempt(...)": lambda: Attempt("primary", "ok", latency=0.1, retry=0),
        "ProviderRequest(...)": lambda: ProviderRequest(MSG, {}, 3.0, 60.0, 30.0),
        "AttemptStarted(...)": lambda: AttemptStarted(
            "chat", "primary", "m", 0, 1, 60.0, 0.1, "anthropic", False
        ),
        "CallStarted(...)": lambda: CallStarted("chat", 1, 5, False),
        "set_deadline + reset_deadline (what an attempt now does)": set_reset,
        "function-level `from ._route_call import RouteCall` (one per call)": lazy_import,
        "breaker acquire + success": permit,
        "StatsListener(AttemptFinished)": lambda: stats(finished),
    }
    costs = {name: best(fn) for name, fn in pieces.items()}
    for r in (*stubbed.values(), counting):
        r.close()
    return {
        "events_per_ok_call": seen,
        # What a Router with default listeners builds: only the events some listener wants.
        "events_built_default_listeners": [
            kind
            for kind in ("call_started", "attempt_started", "attempt_finished", "call_finished")
            if getattr(stubbed["default listeners"]._hear, kind)
        ],
        "stub_router_hot_us": hot,
        "stub_router_cold_p50_us": {
            before: {k: median(v) * 1e6 for k, v in sides.items()} for before, sides in cold.items()
        },
        "pieces_us": costs,
    }


def run(quick: bool) -> dict[str, Any]:
    with async_fake() as url:
        anth = anthropic_side(url, quick)
        lite = litellm_side(url, quick)
        parts = breakdown(url, quick)
    result = {"quick": quick, "anthropic": anth, "litellm": lite, "breakdown": parts}
    report(result)
    return result


def report(result: dict[str, Any]) -> None:
    for key, base in (("anthropic", "direct SDK"), ("litellm", "litellm.Router")):
        sides = result[key]["sides"]
        calls = next(iter(sides.values()))["calls"]
        out(f"\n{key}: {calls} calls per side, interleaved, async fake in its own process")
        out(
            f"{'':30}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms':>9}{'p50 x':>8}{'p99 x':>8}"
            f"{'cpu x':>8}{'gc/1k':>7}"
        )
        b = sides[base]
        for name, s in sides.items():
            out(
                f"{name:30}{s['p50_ms']:9.3f}{s['p99_ms']:9.3f}{s['cpu_mean_ms']:9.3f}"
                f"{s['p50_ms'] / b['p50_ms']:8.3f}{s['p99_ms'] / b['p99_ms']:8.3f}"
                f"{s['cpu_mean_ms'] / b['cpu_mean_ms']:8.3f}{s['gc_per_1k_calls']:7.1f}"
            )
    split = result["anthropic"]["split"]
    out(
        f"\nrouter, listeners=[]: p50 {split['outside_provider_p50_us']:.0f} µs outside the"
        f" provider; inside, the SDK call took {split['inside_minus_alone_p50_us']:+.0f} µs"
        " vs the adapter called alone"
    )
    parts = result["breakdown"]
    out("stub provider, router's own code per call (µs):")
    for label, hot in parts["stub_router_hot_us"].items():
        cold = "   ".join(
            f"{before}, p50 {sides[label]:6.1f}"
            for before, sides in parts["stub_router_cold_p50_us"].items()
        )
        out(f"  {label:18} back to back, best {hot:6.1f}   {cold}")
    out(f"events built per successful call: {', '.join(parts['events_per_ok_call'])}")
    for name, cost in parts["pieces_us"].items():
        out(f"  {name:52} {cost:6.2f} µs")


if __name__ == "__main__":
    cli(run, __doc__)
