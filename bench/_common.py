"""What the benchmarks share: the async fake as a subprocess, policies, statistics, output.

Every benchmark script runs on its own (``python bench/NAME.py [--quick] [--json]``) and
has a ``run(quick) -> dict`` that ``bench/run_all.py`` calls through ``--json`` in a fresh
process. With ``--json`` the figures a person reads go to stderr and the dict to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before anything imports litellm: no network fetch of the model cost map.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

BENCH = Path(__file__).resolve().parent
MSG = [{"role": "user", "content": "hello"}]
KEY = "bench-key"  # the fakes accept any key; nothing leaves loopback


def out(*args: Any) -> None:
    """Print figures for a person: to stderr under ``--json`` (stdout carries the dict)."""
    print(*args, file=sys.stderr if _JSON[0] else sys.stdout, flush=True)


_JSON = [False]


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


@contextlib.contextmanager
def async_fake(latency: float = 0.0) -> Iterator[str]:
    """``bench/fake_async_server.py`` in a process of its own; its base URL."""
    cmd = [sys.executable, str(BENCH / "fake_async_server.py")]
    if latency:
        cmd += ["--latency", str(latency)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def _get(url: str, path: str) -> str:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def served(url: str) -> int:
    """How many API requests the async fake at ``url`` has answered."""
    return int(_get(url, "/count"))


def fake_cpu(url: str) -> float:
    """CPU seconds the async fake at ``url`` has used so far."""
    return float(_get(url, "/cpu"))


def anthropic_endpoint(url: str, model: str = "claude-bench") -> dict[str, Any]:
    return {"provider": "anthropic", "model": model, "api_key": KEY, "base_url": url}


def litellm_endpoint(url: str, model: str = "openai/gpt-bench") -> dict[str, Any]:
    return {"provider": "litellm", "model": model, "api_key": KEY, "base_url": url + "/v1"}


def policy(**endpoints: dict[str, Any]) -> dict[str, Any]:
    """A one-route policy over ``endpoints`` in the order given."""
    return {
        "version": 1,
        "endpoints": endpoints,
        "routes": {"chat": {"endpoints": list(endpoints)}},
    }


def anthropic_client(url: str) -> Any:
    import anthropic

    return anthropic.Anthropic(
        api_key=KEY, base_url=url, max_retries=0, timeout=anthropic.Timeout(60, connect=3)
    )


def async_anthropic_client(url: str) -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(
        api_key=KEY, base_url=url, max_retries=0, timeout=anthropic.Timeout(60, connect=3)
    )


def litellm_router(url: str) -> Any:
    """LiteLLM's own Router with one deployment on the fake, its retries off."""
    import litellm

    return litellm.Router(
        model_list=[
            {
                "model_name": "chat",
                "litellm_params": {
                    "model": "openai/gpt-bench",
                    "api_key": KEY,
                    "api_base": url + "/v1",
                    "max_retries": 0,
                },
            }
        ],
        num_retries=0,
    )


def quiet_litellm() -> None:
    import logging

    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.WARNING)


def stub_provider() -> Any:
    """A provider that answers at once without I/O: the router's own code, timed alone."""
    from failover._response import Usage
    from failover.providers import ProviderResult

    result = ProviderResult(text="hi", model="m", usage=Usage(1, 2))

    class Stub:
        name = "anthropic"

        def complete(self, call: Any) -> Any:
            return result

        def close(self) -> None:
            pass

    return Stub()


def best_us(fn: Callable[[], object], number: int) -> float:
    """µs per call of ``fn``, back to back: the best of 5 runs of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def rss_kib() -> int:
    """This process's resident set size in KiB (``VmRSS`` in /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def interleave(
    sides: dict[str, Callable[[], object]], rounds: int, samples: dict[str, list[float]]
) -> None:
    """Time one call of each side per round, rotating the order every round.

    The side that goes right after another can be slower or faster (a still-busy fake,
    warm caches), so each side takes each place equally often.
    """
    import time

    names = list(sides)
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            call = sides[name]
            t0 = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - t0)


def cli(run: Callable[[bool], dict[str, Any]], doc: str | None) -> None:
    """The command line every benchmark shares: ``[--quick] [--json]``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print the result dict as JSON")
    args = parser.parse_args()
    _JSON[0] = args.json
    result = run(args.quick)
    if args.json:
        print(json.dumps(result))
