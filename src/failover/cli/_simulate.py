"""``failover simulate``: compare breaker and retry settings against a failure scenario.

Declared like the other subcommands (``add_simulate`` and ``_run_simulate``). The engine
is in :mod:`failover.simulate._engine`; this module reads the arguments, prints the table (or
JSON), draws the plot (matplotlib is imported only for ``--plot``) and shows a progress
bar on a terminal when a run takes more than a moment.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .._errors import RouteNotFound
from ..policy._durations import format_duration, parse_duration
from ..policy._model import Policy
from ..simulate._candidates import MAX_CANDIDATES, Candidate, candidates
from ..simulate._engine import RunResult, RunSettings, simulate
from ..simulate._scenarios import SCENARIOS, Scenario, build_scenario, load_trace, parse_spec
from ._main import DEFAULT_POLICY, ENV_POLICY, Subparsers, load_policy

__all__ = ["add_simulate", "format_report", "report_json"]

# Past this a run is almost surely a typo (--duration 100h) rather than a wish to wait.
_MAX_CALLS = 10_000_000
_EPILOG = f"""\
scenarios (NAME[:key=value,...], one per endpoint; default endpoint: the route's first):
  outage:start=10m,length=5m        the endpoint fails every request
  flapping:period=60,down=20        down for `down` at the start of every `period`
  brownout:errors=0.3               that share of requests fail (or errors=30%)
  slow:latency=8s                   answers take `latency` (timeouts, slow_call)
  healthy:endpoint=NAME,latency=2s  an endpoint's own healthy latency
  failing ones also take error=connect|timeout|connect_timeout|STATUS (default connect),
  error_latency=100ms, retry_after=2s (with a 429/503 error); all take start= and length=
  (flapping: to the end of the run).

--set KEY=V1,V2,...  (repeatable; the cartesian product, at most {MAX_CANDIDATES} candidates)
  KEY is breaker.FIELD, retry.FIELD, retry.backoff.FIELD, timeout.FIELD or deadline,
  optionally after an endpoint name (claude.breaker.reset_timeout=10s,30s).

example:
  failover simulate outage:start=10m,length=5m \\
      --set breaker.failure_threshold=3,5,10 --set breaker.reset_timeout=10s,30s --plot out.png
"""


def add_simulate(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Declare ``failover simulate``."""
    parser = subparsers.add_parser(
        "simulate",
        help="compare breaker and retry settings against an outage, in virtual time",
        description="Run a route of the policy in virtual time against a failure scenario,\n"
        "once per candidate setting, with the router's own breaker and retry code, and\n"
        "report availability, waste, time to open and to recover, and added latency.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help=f"the policy file (default: ${ENV_POLICY}, else ./{DEFAULT_POLICY})",
    )
    parser.add_argument("-r", "--route", help="the route (default: the policy's default)")
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"{', '.join(SCENARIOS)} (default: outage)",
    )
    parser.add_argument("--trace", metavar="FILE", help="replay a JSONL trace of outcomes instead")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="candidate values of one setting (repeatable)",
    )
    parser.add_argument("--rate", type=_rate, default=50.0, help="calls per second (default 50)")
    parser.add_argument(
        "--duration", type=_duration, help="virtual time to run (default 1h; a trace: its span)"
    )
    parser.add_argument(
        "--latency", type=_duration, default=1.0, help="a healthy answer's latency (default 1s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--poisson", action="store_true", help="Poisson arrivals (default: evenly spaced)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--plot", metavar="PNG", help="draw breaker state and success rate (needs matplotlib)"
    )
    parser.set_defaults(run=_run_simulate)


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or rate <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return rate


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_simulate(args: argparse.Namespace) -> int:
    policy = load_policy(args.config)
    if isinstance(policy, int):
        return policy
    err = sys.stderr
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("failover simulate: --plot needs matplotlib: pip install 'failover[plot]'", file=err)
        return 1
    try:
        route, scenario, settings, chosen = _prepare(args, policy)
    except (ValueError, RouteNotFound) as exc:
        return _usage(str(exc), err)
    started = time.perf_counter()
    bar = _Progress(len(chosen), err)
    results = []
    for index, candidate in enumerate(chosen):
        results.append(simulate(candidate, scenario, settings, bar.step(index)))
        bar(index, 1.0)
    bar.close()
    elapsed = time.perf_counter() - started
    if args.json:
        print(json.dumps(report_json(route, scenario, settings, results), indent=2))
    else:
        print("\n".join(format_report(route, scenario, settings, results)))
    print(f"simulated {len(results)} candidate(s) x {results[0].calls} calls in {elapsed:.1f} s",
          file=err)  # fmt: skip
    if not args.plot:
        return 0
    from ..simulate._plot import plot

    try:
        plot(results, scenario, args.plot)
    except (OSError, ValueError) as exc:  # unwritable path, unknown image format
        print(f"failover simulate: cannot write {args.plot}: {exc}", file=err)
        return 1
    print(f"plot written to {args.plot}", file=err)
    return 0


def _prepare(
    args: argparse.Namespace, policy: Policy
) -> tuple[str, Scenario, RunSettings, list[Candidate]]:
    """The route's name, the scenario, the traffic and the candidates the arguments ask for."""
    route = policy.route(args.route)
    if args.trace and args.scenarios:
        raise ValueError("give a SCENARIO or --trace, not both")
    if args.trace:
        scenario = load_trace(args.trace, route.endpoints, args.latency)
        duration = args.duration or scenario.duration or 3600.0
    else:
        duration = args.duration or 3600.0
        specs = [parse_spec(text) for text in args.scenarios or ["outage"]]
        scenario = build_scenario(specs, route.endpoints, args.latency, duration)
    settings = RunSettings(args.rate, duration, args.seed, args.poisson)
    if settings.rate * settings.duration > _MAX_CALLS:
        raise ValueError(f"--rate x --duration makes more than {_MAX_CALLS} calls")
    return route.name, scenario, settings, candidates(policy, route.name, args.sets)


def _usage(message: str, err: TextIO) -> int:
    print(f"failover simulate: {message}", file=err)
    return 2


class _Progress:
    """A one-line bar on a terminal, shown once the run has taken a second."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total = total
        self._stream = stream
        self._tty = stream.isatty()
        self._start = time.monotonic()
        self._shown = False

    def step(self, index: int) -> Callable[[float], None]:
        """The progress callback for candidate number ``index``."""
        return lambda fraction: self(index, fraction)

    def __call__(self, index: int, fraction: float) -> None:
        if not self._tty or (not self._shown and time.monotonic() - self._start < 1.0):
            return
        self._shown = True
        done = (index + fraction) / self._total
        bar = "#" * round(done * 30)
        self._stream.write(f"\rsimulating {index + 1}/{self._total} [{bar:<30}] {done:4.0%}")
        self._stream.flush()

    def close(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * 60 + "\r")
            self._stream.flush()


# --- the report ---------------------------------------------------------------------------


def format_report(
    route: str, scenario: Scenario, settings: RunSettings, results: Sequence[RunResult]
) -> list[str]:
    """The text report: what was run, one row per candidate, and what the columns mean."""
    first = results[0]
    names = list(first.requests)
    arrivals = "Poisson arrivals" if settings.poisson else "evenly spaced"
    lines = [
        f"route {route}: {' -> '.join(names)}",
        f"scenario: {scenario.description}",
        f"traffic: {settings.rate:g} calls/s for {_span(settings.duration)} ({first.calls} calls,"
        f" {arrivals}), seed {settings.seed}; healthy p95 {_secs(scenario.baseline_p95)}",
        "",
    ]
    # recovery is measured only after incidents that end before the run does
    ended = [end < settings.duration for _, end in scenario.incidents]
    header = ["candidate", "answered", "wasted", "to open", "to recover", "+p95", *names]
    rows = [
        [
            r.candidate.label,
            f"{r.availability:.3%}",
            str(r.wasted),
            _worst(r.time_to_open),
            _worst([v for v, e in zip(r.time_to_recover, ended, strict=True) if e]),
            f"+{_secs(max(r.added_p95, 0.0))}",
            *(str(r.requests[name]) for name in names),
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    watched, count = first.watched, len(scenario.incidents)
    legend = (
        f"answered: calls that got an answer. wasted: failed requests sent to {watched},"
        " retries and half-open trials included. to open: from the start of trouble until"
        f" {watched}'s breaker was open. to recover: from the end of trouble until {watched}"
        " answered again. +p95: the p95 latency of "
        + ("the calls that arrived during trouble" if count else "all calls")
        + f", minus the healthy p95. {', '.join(names)}: requests sent to each."
    )
    if count > 1:
        legend += f" Times are the worst of {count} incidents; (k/n): only k of them had one."
    return [*lines, "", *textwrap.wrap(legend, width=92)]


def _worst(values: Sequence[float | None]) -> str:
    """The largest value; "never" if none; "(k/n)" when only k of n incidents had one."""
    if not values:
        return "-"
    known = [v for v in values if v is not None]
    if not known:
        return "never"
    shown = _secs(max(known))
    return shown if len(known) == len(values) else f"{shown} ({len(known)}/{len(values)})"


def _secs(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{seconds % 60:02.0f}s"


def _span(seconds: float) -> str:
    return format_duration(seconds) if seconds >= 1 else _secs(seconds)


def report_json(
    route: str, scenario: Scenario, settings: RunSettings, results: Sequence[RunResult]
) -> dict[str, Any]:
    """The results as plain data for ``--json``; times in seconds."""
    return {
        "route": route,
        "endpoints": list(results[0].requests),
        "scenario": scenario.description,
        "watched": scenario.watched,
        "incidents": [list(window) for window in scenario.incidents],
        "rate": settings.rate,
        "duration": settings.duration,
        "seed": settings.seed,
        "arrivals": "poisson" if settings.poisson else "even",
        "calls": results[0].calls,
        "baseline_p95": scenario.baseline_p95,
        "candidates": [result.to_dict() for result in results],
    }
