"""Per-call work in instructions and bytecodes: the router vs the anthropic SDK direct.

Timings move with the machine; counts do not. Two counts, each for one call after a
warm-up, against the async fake in a process of its own:

- CPU instructions, with ``valgrind --tool=callgrind`` (the client process only): the
  difference between a run with N calls and a run with none, divided by N;
- Python bytecodes executed (``sys.settrace`` with opcode events), by function, to show
  where the router's extra work goes.

    python bench/instructions.py [--calls 300] [--json]

Needs valgrind for the first count (skipped without it); callgrind runs the calls about
50 times slower, so this takes about five minutes.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import MSG, anthropic_client, anthropic_endpoint, async_fake, policy

from failover import Router

HERE = Path(__file__).resolve()


def _sides(url: str) -> dict[str, Any]:
    router = Router.from_dict(policy(primary=anthropic_endpoint(url)))
    client = anthropic_client(url)
    return {
        "direct": lambda: client.messages.create(model="claude-bench", messages=MSG, max_tokens=64),
        "router": lambda: router.complete(MSG, max_tokens=64),
    }


def child(side: str, calls: int, url: str) -> None:
    """Run in a process of its own under callgrind: warm up, then ``calls`` calls."""
    call = _sides(url)[side]
    for _ in range(50 + calls):
        call()


def instructions(url: str, calls: int) -> dict[str, float] | None:
    if shutil.which("valgrind") is None:
        return None
    counts: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side in ("direct", "router"):
            for n in (0, calls):
                out = Path(tmp) / f"cg.{side}.{n}"
                cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
                cmd += [sys.executable, str(HERE), "--child", side, str(n), url]
                # From bench/ (as run_all.py's cwd is the repository root, the child
                # failed there); a failing child's stderr is shown, not swallowed.
                done = subprocess.run(
                    cmd, check=False, capture_output=True, text=True, cwd=HERE.parent
                )
                if done.returncode:
                    sys.exit(f"callgrind child {side} {n} failed:\n{done.stderr[-2000:]}")
                line = next(x for x in done.stderr.splitlines() if "Collected" in x)
                counts[side, n] = int(line.split()[-1])
    return {side: (counts[side, calls] - counts[side, 0]) / calls for side in ("direct", "router")}


def bytecodes(url: str) -> dict[str, collections.Counter[str]]:
    sides = _sides(url)
    for call in sides.values():
        for _ in range(50):
            call()
    counted = {}
    for side, call in sides.items():
        counter: collections.Counter[str] = collections.Counter()

        def trace(frame: Any, event: str, arg: Any, counter: Any = counter) -> Any:
            frame.f_trace_opcodes = True
            if event == "opcode":
                code = frame.f_code
                name = code.co_name
                if code.co_filename == "<string>":  # a dataclass's generated __init__
                    name = f"{type(frame.f_locals.get('self')).__name__}.{name}"
                counter[f"{os.path.basename(code.co_filename)}:{name}"] += 1
            return trace

        sys.settrace(trace)
        call()
        sys.settrace(None)
        counted[side] = counter
    return counted


def summary(
    counts: dict[str, float] | None,
    ops: dict[str, collections.Counter[str]],
    extra: collections.Counter[str],
) -> dict[str, Any]:
    """The result as run_all.py reads it."""
    d, r = sum(ops["direct"].values()), sum(ops["router"].values())
    result: dict[str, Any] = {
        "bytecodes": {"direct": d, "router": r, "ratio": r / d},
        "top_extra_bytecodes": dict(extra.most_common(20)),
    }
    if counts is not None:
        result["instructions"] = {**counts, "ratio": counts["router"] / counts["direct"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print the result dict as JSON")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, calls, url = args.child
        child(side, int(calls), url)
        return
    with async_fake() as url:
        counts = instructions(url, args.calls)
        ops = bytecodes(url)
    extra = ops["router"].copy()
    extra.subtract(ops["direct"])
    if args.json:
        print(json.dumps(summary(counts, ops, extra)))
        return
    if counts is None:
        print("valgrind not found: instruction counts skipped")
    else:
        d, r = counts["direct"], counts["router"]
        print(f"instructions per call: direct SDK {d:,.0f}, router {r:,.0f} ({r / d - 1:+.1%})")
    d, r = sum(ops["direct"].values()), sum(ops["router"].values())
    print(f"Python bytecodes per call: direct SDK {d:,}, router {r:,} ({r / d - 1:+.1%})")
    print("where the router's extra bytecodes go (top 20):")
    for name, count in extra.most_common(20):
        print(f"  {count:6d}  {name}")


if __name__ == "__main__":
    main()
