"""Import time of ``failover`` vs ``anthropic`` vs ``litellm``, each in fresh processes.

Each import is timed inside a new interpreter (``perf_counter`` around the ``import``, so
interpreter start-up is left out), several times, interleaved; medians are reported.
Also checked in a fresh process: ``import failover`` leaves ``anthropic``, ``litellm``,
``redis``, ``pybreaker`` and ``httpx2`` unimported (the contract), and what a
Router's first use costs in a fresh process (the imports deferred to it).
``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set, so litellm does not fetch its cost map.

    python bench/imports.py [--quick] [--json]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from _common import cli, median, out

MODULES = ("failover", "anthropic", "litellm")
HEAVY = ("anthropic", "litellm", "redis", "pybreaker", "httpx2", "pydantic")

_TIME_IMPORT = """
import sys, time
t0 = time.perf_counter()
import {module}
print(time.perf_counter() - t0)
"""

_LEFT_OUT = """
import json, sys
import failover
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""

_FIRST_USE = """
import json, sys, time
HEAVY = {heavy!r}
stages = {{}}
seen = set()
def stage(name, t0):
    new = [m for m in HEAVY if m in sys.modules and m not in seen]
    seen.update(new)
    stages[name] = {{"ms": (time.perf_counter() - t0) * 1000, "imported": new}}
t0 = time.perf_counter()
import failover
stage("import failover", t0)
from failover.testing import FakeProvider
with FakeProvider() as fake:
    t0 = time.perf_counter()
    router = failover.Router.from_dict({{
        "version": 1,
        "endpoints": {{"a": {{"provider": "anthropic", "model": "m", "api_key": "k",
                             "base_url": fake.url}}}},
        "routes": {{"chat": {{"endpoints": ["a"]}}}},
    }})
    stage("Router.from_dict", t0)
    t0 = time.perf_counter()
    router.status()  # builds the routes: breakers and provider adapters
    stage("first status(): routes built", t0)
    t0 = time.perf_counter()
    router.complete([{{"role": "user", "content": "hi"}}], max_tokens=8)
    stage("first complete()", t0)
    t0 = time.perf_counter()
    router.complete([{{"role": "user", "content": "hi"}}], max_tokens=8)
    stage("second complete()", t0)
print(json.dumps(stages))
"""


def child(code: str) -> str:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return done.stdout.strip().splitlines()[-1]


def importtime_top(module: str, count: int = 8) -> list[tuple[str, float]]:
    """The slowest imports (cumulative µs) under ``python -X importtime -c 'import module'``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        rows.append((name.strip(), int(cumulative) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:count]


def run(quick: bool) -> dict[str, Any]:
    runs = 2 if quick else 4
    times: dict[str, list[float]] = {m: [] for m in MODULES}
    for i in range(runs):
        for module in MODULES[i % 3 :] + MODULES[: i % 3]:
            times[module].append(float(child(_TIME_IMPORT.format(module=module))) * 1000)
    left_out = json.loads(child(_LEFT_OUT.format(heavy=HEAVY)))
    first = [json.loads(child(_FIRST_USE.format(heavy=HEAVY))) for _ in range(runs)]
    first_use = {
        stage: {"ms": median([f[stage]["ms"] for f in first]), "imported": info["imported"]}
        for stage, info in first[0].items()
    }
    result = {
        "quick": quick,
        "runs": runs,
        "median_ms": {m: median(t) for m, t in times.items()},
        "all_ms": times,
        "heavy_imported_by_import_failover": left_out,
        "first_use_ms": first_use,
        "importtime_failover_top_ms": importtime_top("failover"),
    }
    result["goal_met"] = not left_out and (
        result["median_ms"]["failover"] < result["median_ms"]["anthropic"]
    )
    out(f"import time in a fresh process, median of {runs} (interleaved):")
    for module, ms in result["median_ms"].items():
        each = ", ".join(f"{t:.0f}" for t in times[module])
        out(f"  import {module:10} {ms:8.1f} ms   (runs: {each})")
    out(f"heavy modules imported by `import failover`: {left_out or 'none'}")
    out("a Router's first use in a fresh process (median ms; heavy modules it imported):")
    for stage, info in first_use.items():
        out(f"  {stage:30} {info['ms']:8.1f}   {', '.join(info['imported']) or '-'}")
    out("slowest imports under `import failover` (cumulative ms, one run of -X importtime):")
    for name, ms in result["importtime_failover_top_ms"]:
        out(f"  {name:40} {ms:7.1f}")
    return result


if __name__ == "__main__":
    cli(run, __doc__)
