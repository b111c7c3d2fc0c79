"""Per-call overhead of breaker state in Redis vs in memory, and Redis round trips per call.

Two Routers on one FakeProvider (in a process of its own), identical but for ``state:``;
calls are interleaved (memory, redis, redis, memory, ...) so both see the same machine
state. Round trips are
counted on the store's own Redis client (every command it sends is one round trip: it
never pipelines), so the count is exact even on a shared Redis. A closed breaker's
successes are batched into the store's next script run (the refresh of its 100 ms local
copy), so a healthy endpoint costs about one round trip per 100 ms, not one per call.

    python bench/redis_state.py [--calls 3000] [--url redis://127.0.0.1:6379/0] [--json]

Without ``--url`` it starts a private ``redis-server`` on a free loopback port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from failover import Router
from failover.breaker._breaker import Breaker
from failover.breaker._redis import RedisBreakerStore

MSG = [{"role": "user", "content": "hello"}]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_FAKE = """
import sys
from failover.testing import FakeProvider
fake = FakeProvider(name="bench").start()
print(fake.url, flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def fake_provider() -> Iterator[str]:
    """A FakeProvider in a process of its own; its URL.

    In this process its server threads would compete for the GIL with the Redis round
    trip being measured, inflating it; a real provider is on another machine anyway.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", _FAKE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway redis-server on a free port; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: install it, or pass --url")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(500):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
            time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def count_round_trips(breakers: list[Breaker]) -> Callable[[], int]:
    """Wrap the stores' Redis client so every command it sends is counted."""
    stores = [b._store for b in breakers]
    assert all(isinstance(s, RedisBreakerStore) for s in stores)
    client = stores[0]._conn.client  # type: ignore[union-attr]  # one per URL and timeout
    sent = [0]
    inner = client.execute_command

    def counting(*args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return inner(*args, **kwargs)

    client.execute_command = counting
    return lambda: sent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--url", help="an existing Redis (default: start a private one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(private_redis())
        fake_url = stack.enter_context(fake_provider())
        policy: dict[str, Any] = {
            "version": 1,
            "endpoints": {
                "primary": {
                    "provider": "anthropic",
                    "model": "claude-bench",
                    "api_key": "bench-key",
                    "base_url": fake_url,
                },
            },
            "routes": {"chat": {"endpoints": ["primary"]}},
        }
        memory = Router.from_dict(policy, listeners=[])
        # A namespace of its own, so a run against a shared Redis touches nothing else.
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        shared = Router.from_dict(
            {**policy, "state": {"backend": url}}, listeners=[], namespace=namespace
        )
        for _ in range(300):  # warm both paths: connections, imports, the script's SHA
            memory.complete(MSG, max_tokens=64)
            shared.complete(MSG, max_tokens=64)
        sent = count_round_trips([shared.breaker("primary")])
        mem: list[float] = []
        red: list[float] = []
        before = sent()
        for i in range(args.calls):
            # ABBA order: the second call of a pair runs slower (the fake is still busy
            # with the first), so each side takes each place equally often.
            pair = ((memory, mem), (shared, red))
            for router, samples in pair if i % 2 else pair[::-1]:
                t0 = time.perf_counter()
                router.complete(MSG, max_tokens=64)
                samples.append(time.perf_counter() - t0)
        closed_trips = sent() - before

        # An open breaker: calls are refused from the local copy.
        shared.breaker("primary").force_open()
        store = shared.breaker("primary")._store
        refused = []
        before = sent()
        for _ in range(args.calls):
            t0 = time.perf_counter()
            admitted = store.acquire().admitted
            refused.append(time.perf_counter() - t0)
            assert not admitted
        open_trips = sent() - before

        # The floor: one PING between calls, spaced like the calls above (a Redis that
        # slept through a call answers slower than one pinged back to back).
        client = store._conn.client
        pings = []
        for _ in range(args.calls):
            memory.complete(MSG, max_tokens=64)
            t0 = time.perf_counter()
            client.ping()
            pings.append(time.perf_counter() - t0)

        # One script run back to back: the script's own cost over a warm round trip.
        scripts, hot_pings = [], []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            store.snapshot()
            t1 = time.perf_counter()
            client.ping()
            scripts.append(t1 - t0)
            hot_pings.append(time.perf_counter() - t1)
        shared.breaker("primary").reset()
        memory.close()
        shared.close()

    result = {
        "calls": args.calls,
        "memory_p50_ms": percentile(mem, 0.5) * 1000,
        "redis_p50_ms": percentile(red, 0.5) * 1000,
        "memory_p99_ms": percentile(mem, 0.99) * 1000,
        "redis_p99_ms": percentile(red, 0.99) * 1000,
        "memory_mean_ms": statistics.fmean(mem) * 1000,
        "redis_mean_ms": statistics.fmean(red) * 1000,
        "round_trips_per_call": closed_trips / args.calls,
        "round_trips_per_refused_call": open_trips / args.calls,
        "refused_acquire_p50_us": percentile(refused, 0.5) * 1e6,
        "ping_between_calls_p50_ms": percentile(pings, 0.5) * 1000,
        "script_back_to_back_p50_ms": percentile(scripts, 0.5) * 1000,
        "ping_back_to_back_p50_ms": percentile(hot_pings, 0.5) * 1000,
    }
    result["p50_added_ms"] = result["redis_p50_ms"] - result["memory_p50_ms"]
    result["p99_added_ms"] = result["redis_p99_ms"] - result["memory_p99_ms"]
    result["p50_ratio"] = result["redis_p50_ms"] / result["memory_p50_ms"]
    result["p99_ratio"] = result["redis_p99_ms"] / result["memory_p99_ms"]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{args.calls} calls each, interleaved, against one FakeProvider (own process);"
        f" Redis at {url}"
    )
    print(f"{'':8}{'memory':>12}{'redis':>12}{'added':>12}{'ratio':>8}")
    for q in ("p50", "p99"):
        m, r = result[f"memory_{q}_ms"], result[f"redis_{q}_ms"]
        print(f"{q:8}{m:10.3f}ms{r:10.3f}ms{r - m:+10.3f}ms{r / m:8.3f}")
    print(f"round trips per call (closed breaker): {result['round_trips_per_call']:.3f}")
    print(
        f"round trips per refused call (open breaker): {result['round_trips_per_refused_call']:.3f}"
        f" (acquire p50 {result['refused_acquire_p50_us']:.1f} µs)"
    )
    print(
        f"one PING between calls: p50 {result['ping_between_calls_p50_ms']:.3f} ms;"
        f" back to back: script {result['script_back_to_back_p50_ms']:.3f} ms,"
        f" PING {result['ping_back_to_back_p50_ms']:.3f} ms"
    )


if __name__ == "__main__":
    main()
