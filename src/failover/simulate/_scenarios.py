"""What the endpoints do during a ``failover simulate`` run: built-in scenarios and traces.

A scenario gives each endpoint a *behaviour*: a function of the virtual time at which a
request is sent (and a seeded random generator) returning the request's outcome, a
:class:`~failover._failures.Failure` or ``None`` for an answer, and how long it takes.
The outcome is decided when the request is sent: a request that reached a healthy server
gets its answer even if the server fails a moment later. Endpoints a scenario does not
mention answer every request after the healthy latency.

Built-ins are written ``NAME[:key=value,...]`` (``outage:start=600,length=300``); a trace
is a JSONL file of observed outcomes, replayed by sample and hold (see :func:`load_trace`).
"""

from __future__ import annotations

import json
import math
import random
import statistics
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast, get_args

from .._failures import Failure, FailureKind, failure_from_status
from ..policy._durations import format_duration, parse_duration
from ..policy._fields import did_you_mean

__all__ = [
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "SCENARIOS",
    "Behaviour",
    "Outcome",
    "Scenario",
    "Spec",
    "build_scenario",
    "load_trace",
    "parse_spec",
]

#: The outcome of one request: the failure (``None``: answered) and its latency in seconds.
Outcome = tuple[Failure | None, float]
Behaviour = Callable[[float, random.Random], Outcome]

#: Failures that cost the policy's own timeout rather than a latency of their own.
READ_TIMEOUT: Final = Failure("timeout", detail="read timeout (simulated)")
CONNECT_TIMEOUT: Final = Failure("timeout", detail="connect timeout (simulated)")

_COMMON = ("endpoint", "start", "length")
_FAILING = ("error", "error_latency", "retry_after")
#: Each built-in scenario and the parameters it accepts.
SCENARIOS: Final[Mapping[str, tuple[str, ...]]] = {
    "outage": (*_COMMON, *_FAILING),
    "flapping": (*_COMMON, *_FAILING, "period", "down"),
    "brownout": (*_COMMON, *_FAILING, "errors"),
    "slow": (*_COMMON, "latency"),
    "healthy": ("endpoint", "latency"),
}
_DEFAULTS: Final[Mapping[str, float | str]] = {
    "start": 600.0,
    "length": 300.0,
    "error": "connect",
    "error_latency": 0.1,
    "period": 60.0,
    "down": 20.0,
    "errors": 0.3,
    "latency": 8.0,
}
_ERROR_WORDS = {"connect": "connection refused", "timeout": "read timeout",
                "connect_timeout": "connect timeout"}  # fmt: skip
_KINDS: Final = frozenset(get_args(FailureKind))
# Runs of fewer consecutive errors in a trace are noise, not an incident to measure.
_TRACE_INCIDENT_ERRORS = 3


@dataclass(frozen=True, slots=True)
class Spec:
    """A parsed built-in scenario: its name, its parameters (defaults filled in), as written."""

    name: str
    params: Mapping[str, Any]
    text: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """Behaviours per endpoint, and the incidents on the watched endpoint.

    Attributes:
        description: one line for people.
        behaviours: by endpoint name, for every endpoint of the route.
        watched: the endpoint whose breaker and waste the report measures.
        incidents: ``(start, end)`` windows of trouble on the watched endpoint, in order.
        baseline_p95: the p95 call latency if the watched endpoint answered every call.
        duration: the span of a trace, the default length of its run; ``None`` otherwise.
    """

    description: str
    behaviours: Mapping[str, Behaviour]
    watched: str
    incidents: tuple[tuple[float, float], ...]
    baseline_p95: float
    duration: float | None = None


def parse_spec(text: str) -> Spec:
    """Read ``NAME[:key=value,...]``; raise ``ValueError`` naming what is wrong."""
    name, _, rest = text.partition(":")
    if name not in SCENARIOS:
        hint = did_you_mean(name, SCENARIOS) or f"; scenarios: {', '.join(SCENARIOS)}"
        raise ValueError(f"unknown scenario {name!r}{hint}")
    allowed = SCENARIOS[name]
    params: dict[str, Any] = {k: v for k, v in _DEFAULTS.items() if k in allowed}
    if name == "flapping":
        params["length"] = math.inf  # to the end of the run unless given
    if name == "healthy":
        del params["latency"]  # the run's healthy latency unless given
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"{name}: expected key=value, got {item!r}")
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"; {name} takes {', '.join(allowed)}"
            raise ValueError(f"{name}: unknown parameter {key!r}{hint}")
        try:
            params[key] = _value(key, value)
        except ValueError as exc:
            raise ValueError(f"{name}: {key}: {exc}") from None
    if name == "flapping" and params["down"] >= params["period"]:
        raise ValueError("flapping: down must be shorter than period")
    if "retry_after" in params and not isinstance(params["error"], int):
        raise ValueError(f"{name}: retry_after needs an HTTP status as error (429, 503...)")
    return Spec(name, params, text)


def _value(key: str, text: str) -> Any:
    if key == "endpoint":
        return text
    if key == "error":
        if text in _ERROR_WORDS:
            return text
        if text.isdigit() and 400 <= int(text) <= 599:
            return int(text)
        raise ValueError(f"expected connect, timeout, connect_timeout or a 4xx/5xx status, got "
                         f"{text!r}")  # fmt: skip
    if key == "errors":
        ratio = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        if not 0 <= ratio <= 1:
            raise ValueError(f"must be a ratio in [0, 1] or a percentage, got {text!r}")
        return ratio
    if key in ("start", "retry_after") and text in ("0", "0s"):
        return 0.0
    return parse_duration(text)


def build_scenario(
    specs: Sequence[Spec], endpoints: Sequence[str], latency: float, duration: float
) -> Scenario:
    """Turn parsed specs into behaviours for a route's ``endpoints``.

    Each spec applies to its ``endpoint=`` (default: the route's first endpoint); the
    watched endpoint is that of the first spec other than ``healthy``.

    Args:
        specs: the scenarios, at most one per endpoint.
        endpoints: the route's endpoints, in order.
        latency: how long a healthy endpoint takes to answer.
        duration: the length of the run (incidents must start before it ends).
    """
    behaviours: dict[str, Behaviour] = {}
    watched: tuple[str, tuple[tuple[float, float], ...]] | None = None
    words = []
    for spec in specs:
        target = spec.params.get("endpoint", endpoints[0])
        if target not in endpoints:
            hint = did_you_mean(target, endpoints) or f" (route: {', '.join(endpoints)})"
            raise ValueError(f"{spec.text}: {target!r} is not on the route{hint}")
        if target in behaviours:
            raise ValueError(f"{spec.text}: {target} already has a scenario; one per endpoint")
        behaviour, windows, description = _built_in(spec, target, latency, duration)
        behaviours[target] = behaviour
        words.append(description)
        if watched is None and spec.name != "healthy":
            watched = (target, windows)
    answer: Outcome = (None, latency)
    for other in endpoints:
        behaviours.setdefault(other, lambda t, rng: answer)
    name, incidents = watched or (endpoints[0], ())
    baseline = next((float(s.params.get("latency", latency)) for s in specs
                     if s.name == "healthy" and s.params.get("endpoint", endpoints[0]) == name),
                    latency)  # fmt: skip
    return Scenario("; ".join(words) or "healthy", behaviours, name, incidents, baseline)


def _built_in(
    spec: Spec, target: str, latency: float, duration: float
) -> tuple[Behaviour, tuple[tuple[float, float], ...], str]:
    p = spec.params
    if spec.name == "healthy":
        answer: Outcome = (None, p.get("latency", latency))
        return (lambda t, rng: answer), (), f"{target} healthy ({format_duration(answer[1])})"
    start, length = p["start"], p["length"]
    if start >= duration:
        raise ValueError(f"{spec.text}: starts at {_t(start)}, not before the end of the run"
                         f" ({_t(duration)}): set start= or --duration")  # fmt: skip
    end = min(start + length, duration)
    windows: tuple[tuple[float, float], ...] = ((start, end),)
    if spec.name == "flapping":
        period, down = p["period"], p["down"]
        count = math.ceil((end - start) / period)
        windows = tuple((start + i * period, min(start + i * period + down, end))
                        for i in range(count))  # fmt: skip
    ok: Outcome = (None, latency)
    when = f"from {_t(start)} to {_t(end)}"
    if spec.name == "slow":
        failed: Outcome = (None, p["latency"])
    else:
        failed = (_failure(p), p["error_latency"])
    ratio = p.get("errors", 1.0)

    def inside(rng: random.Random) -> Outcome:
        # brownout draws for each request; the others fail (or are slow) every time
        return failed if ratio >= 1.0 or rng.random() < ratio else ok

    error = p.get("error")
    shown = f"HTTP {error}" if isinstance(error, int) else _ERROR_WORDS.get(str(error), "")
    if spec.name == "slow":
        text = f"{target} answers in {format_duration(p['latency'])} {when}"
    elif spec.name == "brownout":
        text = f"{target} brownout, {ratio:.0%} {shown} {when}"
    else:
        text = f"{target} {spec.name} ({shown}) {when}"
        if spec.name == "flapping":
            text += f", down {_t(p['down'])} every {_t(p['period'])}"
    return _Windowed(windows, inside, ok), windows, text


def _failure(params: Mapping[str, Any]) -> Failure:
    error = params["error"]
    if error == "timeout":
        return READ_TIMEOUT
    if error == "connect_timeout":
        return CONNECT_TIMEOUT
    if error == "connect":
        return Failure("connect", detail="connection refused (simulated)")
    failure = failure_from_status(error, detail=f"HTTP {error} (simulated)")
    return replace(failure, retry_after=params.get("retry_after"))


def _t(seconds: float) -> str:
    return "0s" if seconds == 0 else format_duration(seconds)


class _Windowed:
    """Healthy outside a set of windows; ``inside`` decides each request within one."""

    __slots__ = ("_ends", "_inside", "_ok", "_starts")

    def __init__(
        self,
        windows: Sequence[tuple[float, float]],
        inside: Callable[[random.Random], Outcome],
        ok: Outcome,
    ) -> None:
        self._starts = [start for start, _ in windows]
        self._ends = [end for _, end in windows]
        self._inside = inside
        self._ok = ok

    def __call__(self, t: float, rng: random.Random) -> Outcome:
        i = bisect_right(self._starts, t) - 1
        if i >= 0 and t < self._ends[i]:
            return self._inside(rng)
        return self._ok


# --- traces -------------------------------------------------------------------------------


class _Replay:
    """Sample and hold: the outcome of the last record at or before ``t``."""

    __slots__ = ("_before", "_outcomes", "_times")

    def __init__(self, times: list[float], outcomes: list[Outcome], before: Outcome) -> None:
        self._times = times
        self._outcomes = outcomes
        self._before = before

    def __call__(self, t: float, rng: random.Random) -> Outcome:
        i = bisect_right(self._times, t) - 1
        return self._outcomes[i] if i >= 0 else self._before


def load_trace(path: str, endpoints: Sequence[str], latency: float) -> Scenario:
    """Replay a JSONL trace of observed outcomes.

    Each line is ``{"t": seconds, "endpoint": name, "outcome": "ok"|"error"|"skipped",
    "error": kind|null, "status": int|null, "latency": seconds}``, as
    :class:`~failover.instrumentation.JsonlTraceListener` writes it (other keys are
    ignored). ``t`` is when the attempt ended, so a record stands for a request *sent* at
    ``t - latency``; the replay keys records by that time, and time 0 of the run is the
    earliest of them. A request sent to endpoint E at time s gets the outcome of E's
    record sent last at or before s (sample and hold); ``skipped`` records say nothing
    about the endpoint and are ignored. Before E's first record, and for endpoints the
    trace never names, E answers after its median ``ok`` latency in the trace, else
    ``latency``. An error with a ``status`` is that HTTP failure; a ``timeout`` costs the
    policy's read timeout, other outcomes their recorded latency. Incidents are runs of
    three or more consecutive errors on the route's first endpoint.

    Raises:
        ValueError: the file cannot be read, or a line is not a valid record
            (``FILE:LINE: ...``), or no record names an endpoint of the route.
    """
    records: dict[str, list[tuple[float, Outcome]]] = {name: [] for name in endpoints}
    first = math.inf
    last = -math.inf
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    t, name, outcome = _record(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from None
                sent = t - outcome[1] if outcome is not None else t
                first, last = min(first, sent), max(last, t)
                if outcome is not None and name in records:
                    records[name].append((sent, outcome))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if not any(records.values()):
        raise ValueError(f"{path}: no ok/error record for the route's endpoints"
                         f" ({', '.join(endpoints)})")  # fmt: skip
    behaviours: dict[str, Behaviour] = {}
    for name, rows in records.items():
        rows.sort(key=lambda row: row[0])
        ok = [out[1] for _, out in rows if out[0] is None]
        healthy: Outcome = (None, statistics.median(ok) if ok else latency)
        behaviours[name] = _Replay([t - first for t, _ in rows], [o for _, o in rows], healthy)
    watched = endpoints[0]
    primary_ok = sorted(out[1] for _, out in records[watched] if out[0] is None)
    baseline = primary_ok[max(math.ceil(0.95 * len(primary_ok)) - 1, 0)] if primary_ok else latency
    count = sum(map(len, records.values()))
    return Scenario(
        f"replay of {path} ({count} records over {_t(last - first)})",
        behaviours,
        watched,
        _trace_incidents([(t - first, o) for t, o in records[watched]]),
        baseline,
        duration=max(last - first, 1.0),
    )


def _record(line: str) -> tuple[float, str, Outcome | None]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(row, dict):
        raise ValueError("expected a JSON object")
    t, name, outcome = row.get("t"), row.get("endpoint"), row.get("outcome")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ValueError(f"'t' must be a number of seconds, got {t!r}")
    if not isinstance(name, str):
        raise ValueError(f"'endpoint' must be a string, got {name!r}")
    if outcome not in ("ok", "error", "skipped"):
        raise ValueError(f"'outcome' must be ok, error or skipped, got {outcome!r}")
    if outcome == "skipped":
        return float(t), name, None
    latency = row.get("latency") or 0.0
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0:
        raise ValueError(f"'latency' must be a number of seconds >= 0, got {latency!r}")
    if outcome == "ok":
        return float(t), name, (None, float(latency))
    return float(t), name, (_trace_failure(row.get("error"), row.get("status")), float(latency))


def _trace_failure(kind: object, status: object) -> Failure:
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
        raise ValueError(f"'status' must be an integer or null, got {status!r}")
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"unknown error kind {kind!r}{did_you_mean(kind, sorted(_KINDS))}")
    code = status if isinstance(status, int) else None
    if kind == "timeout":
        return READ_TIMEOUT
    if kind is None:
        return failure_from_status(code) if code is not None else Failure("unknown")
    return Failure(cast("FailureKind", kind), status_code=code)


def _trace_incidents(rows: Sequence[tuple[float, Outcome]]) -> tuple[tuple[float, float], ...]:
    incidents = []
    run: list[float] = []
    for t, (failure, _) in [*rows, (math.inf, (None, 0.0))]:
        if failure is not None:
            run.append(t)
            continue
        if len(run) >= _TRACE_INCIDENT_ERRORS:
            # the incident lasts until the first answer seen after it
            incidents.append((run[0], t if math.isfinite(t) else run[-1]))
        run = []
    return tuple(incidents)
