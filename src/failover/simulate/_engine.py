"""``failover simulate``: one route of a policy, run in virtual time against a scenario.

Calls arrive at a fixed rate (evenly spaced, or as a Poisson process). Each is the
router's own :class:`~failover._route_call.RouteCall` plan (breakers, retry decisions,
retry budget, deadline shares, panic trial), driven on the run's virtual clock: where the
router would send a request, the run draws the outcome from a
:class:`~failover.simulate._scenarios.Scenario`. So the simulator cannot disagree with the
router.

It is a discrete-event simulation: each call is a generator that yields how long it
waits (a request's latency, a backoff sleep), and one heap orders the wake-ups of every
call in flight, so breakers see outcomes in the order they would arrive.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .._call_record import RouteShared
from .._errors import FailoverError
from .._events import Audience
from .._failures import Failure
from .._retry import RetryBudget
from .._route_call import RouteCall
from .._steps import RouteEndpoint, Send, Sleep
from ..breaker._core import State, Transition
from ..providers._base import ProviderFailure, ProviderResult
from ._candidates import Candidate, EndpointSettings
from ._scenarios import CONNECT_TIMEOUT, Scenario

__all__ = ["RunResult", "RunSettings", "percentile", "simulate"]

_TIMED_OUT: Final = Failure("timeout", detail="timed out (simulated)")
_MESSAGES: Final = ({"role": "user", "content": "simulated"},)
_NOBODY: Final = Audience()


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The traffic: ``rate`` calls per second for ``duration`` seconds, and the seed."""

    rate: float = 50.0
    duration: float = 3600.0
    seed: int = 0
    poisson: bool = False


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one candidate did against the scenario.

    Attributes:
        candidate: the settings.
        calls: calls made; ``answered`` of them got an answer.
        requests: requests sent per endpoint (skipped attempts are not requests).
        failures: failed requests per endpoint.
        skipped: attempts an open breaker turned away, per endpoint.
        watched: the endpoint the scenario troubles.
        time_to_open: per incident, seconds from its start until the watched breaker was
            open (0 if it already was), ``None`` if it did not open before the next one.
        time_to_recover: per incident, seconds from its end until the first request the
            watched endpoint answered was sent, ``None`` if none before the next one (or
            the incident lasts to the end of the run).
        p95: the 95th percentile of call latency (arrival to answer or giving up) over
            every call.
        p95_trouble: the same over the calls that arrived during an incident, ``None``
            when the scenario has none.
        added_p95: ``p95_trouble`` (else ``p95``) minus the scenario's healthy baseline:
            over a long run a short incident would vanish from a whole-run percentile.
        transitions: the watched breaker's changes, as ``(time, new state)``.
        bin_width: seconds per bin of the time series below (by arrival time).
        arrived: calls per bin; ``answered_bins``: answered; ``by_watched``: answered by
            the watched endpoint.
    """

    candidate: Candidate
    calls: int
    answered: int
    requests: Mapping[str, int]
    failures: Mapping[str, int]
    skipped: Mapping[str, int]
    watched: str
    time_to_open: tuple[float | None, ...]
    time_to_recover: tuple[float | None, ...]
    p95: float
    p95_trouble: float | None
    added_p95: float
    transitions: tuple[tuple[float, State], ...]
    bin_width: float
    arrived: tuple[int, ...]
    answered_bins: tuple[int, ...]
    by_watched: tuple[int, ...]

    @property
    def availability(self) -> float:
        """The share of calls answered, in [0, 1]."""
        return self.answered / self.calls if self.calls else 1.0

    @property
    def wasted(self) -> int:
        """Requests sent to the watched endpoint that failed."""
        return self.failures[self.watched]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (the time series left out)."""
        return {
            "label": self.candidate.label,
            "settings": dict(self.candidate.settings),
            "calls": self.calls,
            "answered": self.answered,
            "availability": self.availability,
            "wasted": self.wasted,
            "time_to_open": [_round(t) for t in self.time_to_open],
            "time_to_recover": [_round(t) for t in self.time_to_recover],
            "p95": _round(self.p95),
            "p95_trouble": _round(self.p95_trouble),
            "added_p95": _round(self.added_p95),
            "requests": dict(self.requests),
            "failures": dict(self.failures),
            "skipped": dict(self.skipped),
            "transitions": [[_round(t), state] for t, state in self.transitions],
        }


def _round(seconds: float | None) -> float | None:
    """To the microsecond: float noise (0.45000000000000284) helps nobody reading JSON."""
    return None if seconds is None else round(seconds, 6)


# --- the engine ---------------------------------------------------------------------------


class _RunClock:
    """The run's virtual time, as the router's breakers and call loop read it."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:  # pragma: no cover - the run yields waits
        raise NotImplementedError

    async def asleep(self, seconds: float) -> None:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _Route:
    """What a RouteCall reads of a route: no cache, no streams, just the deadline."""

    name: str
    deadline: float
    on_interrupt: str = "raise"
    cache: None = None


@dataclass(slots=True, eq=False)
class _Endpoint:
    name: str
    route_endpoint: RouteEndpoint
    behaviour: Callable[[float, random.Random], tuple[Failure | None, float]]
    watched: bool
    sent: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(slots=True, eq=False)
class _Run:
    endpoints: list[_Endpoint]
    route: _Route
    clock: _RunClock
    scenario: Scenario
    outcomes: random.Random
    jitter: random.Random
    bin_width: float
    bins: int
    latencies: list[float] = field(default_factory=list)
    trouble: list[float] = field(default_factory=list)
    answered: list[int] = field(init=False)
    by_watched: list[int] = field(init=False)
    transitions: list[tuple[float, State]] = field(default_factory=list)
    recovered: list[float | None] = field(init=False)
    starts: list[float] = field(init=False)
    ends: list[float] = field(init=False)
    following: list[float] = field(init=False)
    first_end: float = field(init=False)
    by_name: dict[str, _Endpoint] = field(init=False)
    shared: RouteShared = field(init=False)

    def __post_init__(self) -> None:
        self.answered = [0] * self.bins
        self.by_watched = [0] * self.bins
        incidents = self.scenario.incidents
        self.recovered = [None] * len(incidents)
        self.starts = [start for start, _ in incidents]
        self.ends = [end for _, end in incidents]
        self.following = [start for start, _ in incidents[1:]] + [math.inf]
        self.first_end = self.ends[0] if self.ends else math.inf
        self.by_name = {ep.name: ep for ep in self.endpoints}
        self.shared = RouteCall.shared(
            self.route,
            [ep.route_endpoint for ep in self.endpoints],
            clock=self.clock,
            hear=_NOBODY,
            rand=self.jitter.random,
            cache=None,
        )

    @property
    def now(self) -> float:
        return self.clock.now

    def call(self, t0: float, index: int) -> Iterator[float]:
        """One call through the route: the router's own plan, driven in virtual time.

        Yields the waits (a request's latency, a backoff sleep); ``index`` is the
        time-series bin of its arrival.
        """
        call = RouteCall(self.shared, _MESSAGES, {}, 0)
        plan = call.plan()
        outcome: Any = None
        error: BaseException | None = None
        answered_by: _Endpoint | None = None
        while True:
            try:
                step = plan.send(outcome) if error is None else plan.throw(error)
            except StopIteration as done:
                answered_by = self.by_name[done.value.endpoint]
                break
            except FailoverError:
                break
            outcome = error = None
            if isinstance(step, Sleep):
                yield step.seconds
                continue
            assert isinstance(step, Send)
            ep, start = self.by_name[step.endpoint.name], self.now
            ep.sent += 1
            failure, latency = _bounded(step, *ep.behaviour(start, self.outcomes))
            yield latency
            if failure is None:
                outcome = ProviderResult("", ep.name)
                if ep.watched and start >= self.first_end:
                    self._answered_by_watched(start)
            else:
                ep.failed += 1
                error = ProviderFailure(failure)
        for attempt in call.attempts:
            if attempt.outcome == "skipped":
                self.by_name[attempt.endpoint].skipped += 1
        self._finish(t0, index, answered_by)

    def transition(self, name: str, change: Transition) -> None:
        if self.by_name[name].watched:
            self.transitions.append((self.now, change.new))

    def _answered_by_watched(self, sent: float) -> None:
        # Answers complete out of order (latencies differ), so keep the earliest sent.
        i = bisect_right(self.ends, sent) - 1
        if i >= 0 and sent < self.following[i]:
            best, waited = self.recovered[i], sent - self.ends[i]
            self.recovered[i] = waited if best is None else min(best, waited)

    def _finish(self, t0: float, index: int, ep: _Endpoint | None) -> None:
        latency = self.now - t0
        self.latencies.append(latency)
        i = bisect_right(self.starts, t0) - 1
        if i >= 0 and t0 < self.ends[i]:
            self.trouble.append(latency)
        if ep is not None:
            self.answered[index] += 1
            if ep.watched:
                self.by_watched[index] += 1


def _bounded(step: Send, failure: Failure | None, latency: float) -> tuple[Failure | None, float]:
    """What the router's timeouts make of an outcome.

    Each request is bounded by its timeouts and by the time the plan gave it (its share
    of the deadline); a timeout failure costs that bound, not a latency of its own.
    """
    request = step.request
    if failure is not None and failure.kind == "timeout":
        limit = request.connect_timeout if failure is CONNECT_TIMEOUT else request.read_timeout
        return failure, min(limit, step.budget)
    limit = min(request.read_timeout if failure is None else math.inf, step.budget)
    if latency > limit:
        return _TIMED_OUT, limit
    return failure, latency


def _route_endpoint(
    name: str, settings: EndpointSettings, clock: _RunClock, run: list[_Run]
) -> RouteEndpoint:
    """An endpoint as the router builds it, on the run's clock, with no provider."""
    from ..breaker._breaker import Breaker  # pybreaker: not for `failover check`

    breaker = Breaker(
        name,
        settings.breaker,
        clock,
        on_transition=lambda label, change: run[0].transition(label, change),  # noqa: PLW0108  # the run is made later
    )
    return RouteEndpoint(
        name=name,
        provider_name="simulated",
        model=name,
        params={},
        timeout=settings.timeout,
        retry=settings.retry,
        breaker=breaker,
        provider=None,  # type: ignore[arg-type]  # the run answers every Send itself
        budget=RetryBudget.of(settings.retry),
    )


def simulate(
    candidate: Candidate,
    scenario: Scenario,
    settings: RunSettings,
    progress: Callable[[float], None] | None = None,
) -> RunResult:
    """Run one candidate against a scenario and measure it.

    Args:
        candidate: the settings to run.
        scenario: what the endpoints do.
        settings: the traffic and the seed; every candidate run with the same seed sees
            the same arrivals and the same scenario draws.
        progress: called now and then with the share of arrivals done, in [0, 1].
    """
    bin_width = max(1.0, settings.duration / 1000)
    clock = _RunClock()
    holder: list[_Run] = []
    run = _Run(
        endpoints=[
            _Endpoint(
                name,
                _route_endpoint(name, ep, clock, holder),
                scenario.behaviours[name],
                name == scenario.watched,
            )
            for name, ep in candidate.endpoints.items()
        ],
        route=_Route("simulated", candidate.deadline),
        clock=clock,
        scenario=scenario,
        # Separate streams, so a candidate that retries more does not shift the draws
        # that decide the outcomes: every candidate meets the same scenario.
        outcomes=random.Random(f"{settings.seed}:outcomes"),  # noqa: S311  # not crypto
        jitter=random.Random(f"{settings.seed}:jitter"),  # noqa: S311
        bin_width=bin_width,
        bins=max(1, math.ceil(settings.duration / bin_width)),
    )
    holder.append(run)
    arrived = [0] * run.bins
    heap: list[tuple[float, int, Iterator[float]]] = []
    push, pop = heapq.heappush, heapq.heappop
    arrivals = _arrivals(settings)
    upcoming = next(arrivals, math.inf)
    seq = calls = 0
    while True:
        # Wake-ups due at the same moment as an arrival go first: an outcome recorded
        # at t is known to a call that asks the breaker at t.
        if heap and heap[0][0] <= upcoming:
            t, _, call = pop(heap)
        elif upcoming < math.inf:
            index = min(int(upcoming / bin_width), run.bins - 1)
            t, call = upcoming, run.call(upcoming, index)
            arrived[index] += 1
            calls += 1
            upcoming = next(arrivals, math.inf)
            if progress is not None and calls % 8192 == 0:
                progress(min(t / settings.duration, 1.0))
        else:
            break
        clock.now = t
        wait = next(call, None)
        if wait is not None:
            seq += 1
            push(heap, (t + wait, seq, call))
    p95 = percentile(run.latencies, 0.95)
    trouble = percentile(run.trouble, 0.95) if scenario.incidents else None
    return RunResult(
        candidate=candidate,
        calls=calls,
        answered=sum(run.answered),
        requests={ep.name: ep.sent for ep in run.endpoints},
        failures={ep.name: ep.failed for ep in run.endpoints},
        skipped={ep.name: ep.skipped for ep in run.endpoints},
        watched=scenario.watched,
        time_to_open=_times_to_open(run.transitions, scenario.incidents),
        # an incident that lasts to the end of the run has nothing to recover from
        time_to_recover=tuple(
            None if end >= settings.duration else waited
            for waited, (_, end) in zip(run.recovered, scenario.incidents, strict=True)
        ),
        p95=p95,
        p95_trouble=trouble,
        added_p95=(p95 if trouble is None else trouble) - scenario.baseline_p95,
        transitions=tuple(run.transitions),
        bin_width=bin_width,
        arrived=tuple(arrived),
        answered_bins=tuple(run.answered),
        by_watched=tuple(run.by_watched),
    )


def _arrivals(settings: RunSettings) -> Iterator[float]:
    if not settings.poisson:
        # i / rate rather than a running sum: no drift, and t = 100.0 exactly at 10/s
        count = math.ceil(settings.duration * settings.rate - 1e-9)
        return (i / settings.rate for i in range(count))
    return _poisson(settings)


def _poisson(settings: RunSettings) -> Iterator[float]:
    rng = random.Random(f"{settings.seed}:arrivals")  # noqa: S311  # not crypto
    t = rng.expovariate(settings.rate)
    while t < settings.duration:
        yield t
        t += rng.expovariate(settings.rate)


def _times_to_open(
    transitions: Sequence[tuple[float, State]], incidents: Sequence[tuple[float, float]]
) -> tuple[float | None, ...]:
    result: list[float | None] = []
    for i, (start, _) in enumerate(incidents):
        following = incidents[i + 1][0] if i + 1 < len(incidents) else math.inf
        before = [state for t, state in transitions if t < start]
        if before and before[-1] == "open":
            result.append(0.0)
            continue
        opened = [t for t, state in transitions if state == "open" and start <= t < following]
        result.append(opened[0] - start if opened else None)
    return tuple(result)


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 for no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]
