"""Per-call overhead of this checkout against an earlier revision, in one interleaved run.

On a shared machine the speed drifts by tens of percent within minutes, so two runs of
``overhead.py`` cannot tell a 30 µs change from noise. This runs both versions side by
side instead: ``git archive REV`` puts that revision's ``src/failover`` in a temporary
directory as the package ``failover_rev``, and the two routers take turns (order swapped
every round) against one fake, each call right after a direct SDK call, as in
``overhead.py``. Besides the difference of medians it reports the median of each pair's
difference (router call minus the direct call before it), which is steadier.

    python bench/versus.py REV [--calls 3000] [--inproc] [--json]

``--inproc`` uses the in-process ``FakeProvider`` (as ``overhead.py`` does); by default
the async fake runs in a process of its own. Needs git and a REV whose package imports
only itself relatively (true of every revision since the package layout).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import BENCH, MSG, anthropic_client, anthropic_endpoint, async_fake, median, policy

from failover import Router


def _revision(rev: str, into: Path) -> Any:
    """The ``Router`` class of revision ``rev``, imported as ``failover_rev``."""
    archive = subprocess.run(
        ["git", "archive", rev, "src/failover"],
        cwd=BENCH.parent,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "src" / "failover").rename(into / "failover_rev")
    sys.path.insert(0, str(into))
    return importlib.import_module("failover_rev").Router


@contextlib.contextmanager
def _fake(inproc: bool) -> Iterator[str]:
    if not inproc:
        with async_fake() as url:
            yield url
        return
    from failover.testing import FakeProvider

    with FakeProvider(name="bench") as fake:
        yield fake.url


def run(rev: str, calls: int, inproc: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _fake(inproc) as url:
        old_router = _revision(rev, Path(tmp))
        pol = policy(primary=anthropic_endpoint(url))
        client = anthropic_client(url)
        old, new = old_router.from_dict(pol), Router.from_dict(pol)

        def direct() -> object:
            return client.messages.create(model="claude-bench", messages=MSG, max_tokens=64)

        routers: dict[str, Callable[[], object]] = {
            rev: lambda: old.complete(MSG, max_tokens=64),
            "this checkout": lambda: new.complete(MSG, max_tokens=64),
        }
        for _ in range(200):  # connections, imports, caches
            direct()
            for call in routers.values():
                call()
        # Each router call follows a direct SDK call, as in overhead.py: both routers then
        # run with the caches as the SDK leaves them (a router that followed the other
        # router would find the shared code warm, and look cheaper than it is).
        samples: dict[str, list[float]] = {name: [] for name in ("direct", *routers)}
        added: dict[str, list[float]] = {name: [] for name in routers}
        order = list(routers)
        clock = time.perf_counter
        for _ in range(calls):
            order.reverse()
            for name in order:
                t0 = clock()
                direct()
                t1 = clock()
                routers[name]()
                t2 = clock()
                samples["direct"].append(t1 - t0)
                samples[name].append(t2 - t1)
                added[name].append((t2 - t1) - (t1 - t0))
        old.close()
        new.close()
        client.close()
    base = median(samples["direct"])
    return {
        "calls": calls,
        "fake": "in-process FakeProvider" if inproc else "async fake, own process",
        "direct_p50_ms": base * 1000,
        "p50_ratio": {name: median(samples[name]) / base for name in routers},
        "p50_added_us": {name: (median(samples[name]) - base) * 1e6 for name in routers},
        # The median of each pair's difference: steadier than a difference of medians.
        "paired_added_us": {name: median(added[name]) * 1e6 for name in routers},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="a git revision, e.g. HEAD~3 or a commit id")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--inproc", action="store_true", help="in-process FakeProvider")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.rev, args.calls, args.inproc)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.calls} rounds, {result['fake']}; direct SDK p50 {result['direct_p50_ms']:.3f} ms")
    for name, ratio in result["p50_ratio"].items():
        added, paired = result["p50_added_us"][name], result["paired_added_us"][name]
        print(f"  {name:>14}: {ratio:.4f}x  ({added:+.0f} µs at p50; {paired:+.0f} µs paired)")


if __name__ == "__main__":
    main()
