"""Chaos soak: thousands of calls through a Router while three fake providers misbehave.

Three :class:`~failover.testing.FakeProvider` servers, in a child process of their own,
change fault mode every 0.2-1 s on a seeded schedule: refused (server stopped, restarted
on the same port), reset, blackhole, 5xx, 529, 429 with ``retry-after`` or
``retry-after-ms``, slow, stream cuts, error events inside a 200 stream, trickle. Calls
arrive at a steady rate and are spread over threads (sync API) and asyncio tasks (async
API); about 30 % are streams, read to the end. Each call is judged as it ends; the soak
then checks, each with its figure:

- no hang: every call finished (a watchdog flags any call running far past its deadline);
- outcomes: every call ended in a Response or a contract exception, coherent with its
  attempts;
- deadline: no call past its deadline by more than 50 ms (a stream: its first delta);
- request bound: no endpoint got more than ``retry.attempts`` requests in one call, and
  the fakes' own request counters agree with the attempts the Router recorded;
- honest answers: no truncated answer reported as complete (each fake's text ends with a
  terminator word; a Response must carry one fake's whole text, equal to its deltas);
- memory flat: RSS after the first 1,000 calls vs at the end;
- breakers recover: once the faults stop, every endpoint's breaker closes again.

    python bench/chaos.py [--calls 10000] [--seed 1] [--rate 100] [--json] [--trace FILE]
                          [--out docs/chaos.md]

``--out`` writes the run up as a Markdown page (the docs' "Chaos soak" page). Exits 1
when any check fails. The fault sequence is fixed by the seed; which calls meet which
fault depends on real timing, so the figures vary a little from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import dataclasses
import faulthandler
import io
import json
import os
import random
import resource
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from failover import (
    AllEndpointsFailed,
    DeadlineExceeded,
    RequestError,
    Router,
    StreamInterrupted,
)
from failover.testing import (
    Blackhole,
    CutStream,
    FakeProvider,
    Latency,
    Mode,
    Ok,
    Reset,
    Status,
    StreamError,
    Trickle,
)

NAMES = ("alpha", "bravo", "charlie")
TERMINATOR = "ZULU-END"
PROMPTS = 40  # distinct prompts, so the fallback cache has answers to serve
RESET_TIMEOUT = 0.5  # the breakers' reset_timeout, seconds


def answer_text(name: str) -> str:
    """A fake's whole answer: 15 words ending in a terminator, so a cut answer shows."""
    words = " ".join(f"{name}{i}" for i in range(13))
    return f"chaos {words} {TERMINATOR}"


TEXTS = {name: answer_text(name) for name in NAMES}
MESSAGES = [[{"role": "user", "content": f"chaos question {i}"}] for i in range(PROMPTS)]


# --- configuration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """One soak's size, mix and limits."""

    calls: int = 10_000
    seed: int = 1
    threads: int = 8
    tasks: int = 16
    rate: float = 100.0  # calls started per second, spread over the workers
    stream_share: float = 0.3
    deadline: float = 1.5
    attempts: int = 2  # retry.attempts: requests per endpoint per call
    slack: float = 0.050  # how far past its deadline a call may end
    hang_limit: float = 15.0  # a call running this long counts as hung
    rss_baseline_at: int = 1_000  # calls done when the memory baseline is taken
    rss_growth_limit_mib: float = 16.0
    min_epoch: float = 0.2  # each fake keeps a mode this long at least ...
    max_epoch: float = 1.0  # ... and at most
    litellm: bool = False  # make the third endpoint a litellm one
    trace: str | None = None  # write mode changes and breaker transitions to this file


def policy(urls: dict[str, str], cfg: Config) -> dict[str, Any]:
    """Short timeouts, 2 tries per endpoint, touchy breakers; one route with a cache."""
    endpoints: dict[str, Any] = {}
    for i, (name, url) in enumerate(urls.items()):
        if cfg.litellm and i == 2:
            ep = {"provider": "litellm", "model": "openai/chaos", "base_url": url + "/v1"}
        else:
            ep = {"provider": "anthropic", "model": "claude-chaos", "base_url": url}
        endpoints[name] = {**ep, "api_key": "sk-chaos-not-a-key"}
    return {
        "version": 1,
        "defaults": {
            "timeout": {"connect": "200ms", "read": "500ms", "stream_idle": "500ms"},
            "retry": {
                "attempts": cfg.attempts,
                "backoff": {"initial": "10ms", "max": "50ms"},
                "max_retry_after": "300ms",
            },
            "breaker": {"failure_threshold": 3, "reset_timeout": f"{RESET_TIMEOUT * 1000:g}ms"},
        },
        "endpoints": endpoints,
        "routes": {
            # Half the calls may fall back on a cached answer; the other half show what the
            # caller gets when every endpoint failed (AllEndpointsFailed, DeadlineExceeded).
            "cached": {
                "endpoints": list(urls),
                "deadline": cfg.deadline,
                "cache": {"ttl": "1h", "stale_if_error": "1h"},
            },
            "plain": {"endpoints": list(urls), "deadline": cfg.deadline},
            # One endpoint each, sharing its breaker: to see each breaker recover at the end.
            **{f"solo-{name}": {"endpoints": [name], "deadline": cfg.deadline} for name in urls},
        },
        "cache": {"backend": "memory", "max_entries": 1000},
    }


# --- the fault schedule (runs in the fakes' process) --------------------------------------

_STREAM_ERRORS = ("overloaded_error", "api_error", "rate_limit_error")
# (interval, bytes per write): a 3 KB stream takes 0.4 s to 11 s; 0.03 puts its first
# delta near the deadline, 0.06 keeps a plain answer (450 bytes) going past it.
_TRICKLES = ((0.002, 16), (0.01, 16), (0.03, 16), (0.06, 16))

# (label, weight, mode factory); "refused" stops the server instead of setting a mode.
FAULTS: tuple[tuple[str, int, Callable[[random.Random], Mode | None]], ...] = (
    ("ok", 6, lambda r: Ok()),
    ("refused", 1, lambda r: None),
    ("reset", 1, lambda r: Reset()),
    ("blackhole", 1, lambda r: Blackhole()),
    ("5xx", 1, lambda r: Status(r.choice((500, 502, 503)))),
    ("529", 1, lambda r: Status(529)),
    ("429 retry-after", 1, lambda r: Status(429, retry_after=r.choice((0.1, 0.25, 1, 5)))),
    ("429 retry-after-ms", 1, lambda r: Status(429, retry_after_ms=r.choice((20, 120, 900)))),
    ("slow", 1, lambda r: Latency(r.uniform(0.05, 0.8))),
    ("stream cut", 1, lambda r: CutStream(after_events=r.randint(0, 18), reset=r.random() < 0.5)),
    (
        "error event",
        1,
        lambda r: StreamError(r.choice(_STREAM_ERRORS), after_events=r.randint(0, 18)),
    ),
    ("trickle", 1, lambda r: Trickle(*r.choice(_TRICKLES))),
)
_FACTORIES = {label: factory for label, _, factory in FAULTS}


class FaultSchedule:
    """Changes each fake's mode every ``min_epoch``-``max_epoch`` seconds, seeded per fake."""

    def __init__(self, fakes: Sequence[FakeProvider], cfg: Config) -> None:
        self._fakes = fakes
        self._cfg = cfg
        self._rngs = [random.Random(f"{cfg.seed}:{fake.name}") for fake in fakes]
        self.time_in: collections.Counter[str] = collections.Counter()
        self.changes = 0
        self.errors: list[str] = []
        self.trace: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop changing modes; leave every fake running in Ok mode."""
        self._stop.set()
        self._thread.join()
        for fake in self._fakes:
            fake.set_mode(Ok())
            fake.start()

    def summary(self) -> dict[str, Any]:
        return {
            "time_in": dict(self.time_in),
            "changes": self.changes,
            "errors": self.errors,
            "trace": self.trace,
        }

    def _apply(self, i: int) -> tuple[str, float]:
        rng, fake = self._rngs[i], self._fakes[i]
        label = rng.choices([f[0] for f in FAULTS], [f[1] for f in FAULTS])[0]
        mode = _FACTORIES[label](rng)
        try:
            if mode is None:
                fake.stop()
            else:
                fake.set_mode(mode)
                fake.start()
        except OSError as exc:  # the port could not be bound again: try next epoch
            self.errors.append(f"{fake.name}: {label}: {exc!r}")
        self.changes += 1
        if self._cfg.trace:
            self.trace.append((time.monotonic(), fake.name, f"mode {label}: {mode!r}"))
        return label, rng.uniform(self._cfg.min_epoch, self._cfg.max_epoch)

    def _run(self) -> None:
        now = time.monotonic()
        current = [self._apply(i) for i in range(len(self._fakes))]
        since = [now] * len(self._fakes)
        until = [now + c[1] for c in current]
        while not self._stop.wait(max(0.0, min(until) - time.monotonic())):
            now = time.monotonic()
            for i, due in enumerate(until):
                if due <= now:
                    self.time_in[current[i][0]] += now - since[i]
                    current[i] = self._apply(i)
                    since[i], until[i] = now, now + current[i][1]
        now = time.monotonic()
        for i, (label, _) in enumerate(current):
            self.time_in[label] += now - since[i]


def fakes_child(cfg: Config) -> None:
    """The fakes' process: JSON lines out, one command per line in (``chaos``, ``calm``).

    The fakes live apart from the Router so their threads (one per connection, and the
    trickling ones wake every millisecond) do not compete for the caller's GIL.
    """
    fakes = [FakeProvider(name=n, text=TEXTS[n]).start() for n in NAMES]
    schedule = FaultSchedule(fakes, cfg)

    def reply(obj: Any) -> None:
        print(json.dumps(obj), flush=True)

    reply({"urls": {f.name: f.url for f in fakes}})
    cpu = 0.0
    for line in sys.stdin:
        if line.strip() == "chaos":
            for fake in fakes:
                fake.reset_counts()
            cpu = _cpu_seconds(resource.RUSAGE_SELF)
            schedule.start()
            reply({})
        elif line.strip() == "calm":
            schedule.stop()
            cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu
            time.sleep(0.5)  # a request written just before a deadline cut may still be read
            received = {f.name: f.request_count for f in fakes}
            reply({**schedule.summary(), "received": received, "cpu": cpu})
    for fake in fakes:
        fake.stop()


class Fakes:
    """The parent's handle on the fakes' process."""

    def __init__(self, cfg: Config | None = None, args: list[str] | None = None) -> None:
        if args is None:  # this soak's own child, given its settings
            assert cfg is not None
            args = [sys.executable, __file__, "--fakes-child", json.dumps(dataclasses.asdict(cfg))]
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.urls: dict[str, str] = self._read()["urls"]

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fakes' process died (exit code {self._proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def command(self, name: str) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(name + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


# --- judging one call ------------------------------------------------------------------


@dataclass(slots=True)
class Verdict:
    """What one call did and what was wrong with it (nothing, ideally)."""

    kind: str  # "complete" | "stream"
    via: str  # "thread" | "async"
    route: str  # "cached" | "plain"
    outcome: str = "?"
    start: float = 0.0
    bounded: float = 0.0  # seconds to the point the deadline bounds (a stream: first delta)
    duration: float = 0.0
    attempts: Sequence[Any] = ()
    problems: list[tuple[str, str]] = field(default_factory=list)


def _judge_response(v: Verdict, resp: Any, deltas: list[str] | None) -> None:
    v.outcome = "cache" if resp.from_cache else "ok"
    v.attempts = resp.attempts
    if resp.text != TEXTS.get(resp.endpoint):
        v.problems.append(("honest", f"{v.kind} answer from {resp.endpoint}: {resp.text!r}"))
    if deltas is not None and "".join(deltas) != resp.text:
        v.problems.append(("honest", f"deltas {''.join(deltas)!r} != text {resp.text!r}"))
    last = resp.attempts[-1] if resp.attempts else None
    if resp.from_cache:
        if v.route != "cached":
            v.problems.append(("outcomes", f"a cached answer on route {v.route!r}"))
        if any(a.outcome == "ok" for a in resp.attempts):
            v.problems.append(("outcomes", "cached answer served after a successful attempt"))
    elif last is None or last.outcome != "ok" or last.endpoint != resp.endpoint:
        v.problems.append(("outcomes", f"answer from {resp.endpoint} but last attempt {last}"))


def _judge_error(v: Verdict, exc: BaseException, deltas: list[str] | None) -> None:
    text = "".join(deltas or ())
    if isinstance(exc, StreamInterrupted):
        v.outcome = "interrupted"
        v.attempts = exc.attempts
        if not deltas:
            v.problems.append(("outcomes", f"{v.kind}: StreamInterrupted before any text"))
        elif exc.partial_text != text:
            v.problems.append(("honest", f"partial {exc.partial_text!r} != deltas {text!r}"))
    elif isinstance(exc, AllEndpointsFailed):
        v.outcome = "deadline" if isinstance(exc, DeadlineExceeded) else "all failed"
        v.attempts = exc.attempts
        if text:
            v.problems.append(("outcomes", f"{type(exc).__name__} after text {text!r}"))
    elif isinstance(exc, RequestError):
        # A contract exception, but no fault of the schedule is the request's own fault
        # (400, 413, 422): one here means a failure was misclassified.
        v.outcome = "request error"
        v.attempts = exc.attempts
        v.problems.append(("outcomes", f"{v.kind}/{v.via}: RequestError: {exc}"[:400]))
    else:
        v.outcome = "other"
        v.problems.append(("outcomes", f"{v.kind}/{v.via}: {type(exc).__name__}: {exc!r}"[:400]))


def _finish(v: Verdict, t0: float, first: float | None, deltas: list[str] | None) -> Verdict:
    end = time.monotonic()
    v.start = t0
    v.duration = end - t0
    v.bounded = (first if first is not None else end) - t0
    if deltas is not None and v.outcome == "?":
        v.outcome = "other"
        v.problems.append(("outcomes", "stream ended with neither a Response nor an error"))
    return v


def sync_call(router: Router, kind: str, prompt: int, route: str = "cached") -> Verdict:
    """One call through the sync API, judged."""
    v = Verdict(kind, "thread", route)
    deltas: list[str] | None = [] if kind == "stream" else None
    first = None
    t0 = time.monotonic()
    try:
        if deltas is None:
            _judge_response(v, router.complete(MESSAGES[prompt], route, max_tokens=256), None)
        else:
            with router.stream(MESSAGES[prompt], route, max_tokens=256) as s:
                for delta in s:
                    if first is None:
                        first = time.monotonic()
                    deltas.append(delta)
            if s.response is not None:
                _judge_response(v, s.response, deltas)
    except Exception as exc:
        _judge_error(v, exc, deltas)
    return _finish(v, t0, first, deltas)


async def async_call(router: Router, kind: str, prompt: int, route: str = "cached") -> Verdict:
    """One call through the async API, judged."""
    v = Verdict(kind, "async", route)
    deltas: list[str] | None = [] if kind == "stream" else None
    first = None
    t0 = time.monotonic()
    try:
        if deltas is None:
            _judge_response(
                v, await router.acomplete(MESSAGES[prompt], route, max_tokens=256), None
            )
        else:
            async with router.astream(MESSAGES[prompt], route, max_tokens=256) as s:
                async for delta in s:
                    if first is None:
                        first = time.monotonic()
                    deltas.append(delta)
            if s.response is not None:
                _judge_response(v, s.response, deltas)
    except Exception as exc:
        _judge_error(v, exc, deltas)
    return _finish(v, t0, first, deltas)


# --- the tally -------------------------------------------------------------------------


def rss_mib() -> float:
    """Resident set size now (peak RSS where /proc is missing), in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Stalls:
    """When the harness itself was held up: a monitor's 2 ms sleeps that woke late.

    A call cannot end before its thread or event loop gets to run again; lateness during
    such a stall is the machine's (CPU, GIL, a loop busy with other calls), not the
    library's. Only late wake-ups are kept, so the record stays small.
    """

    PERIOD = 0.002
    NOISE = 0.001  # lateness below this is timer noise, not a stall

    def __init__(self) -> None:
        self.woke = array("d")
        self.late = array("d")
        self.cycles = 0

    def _note(self, t0: float) -> None:
        woke = time.monotonic()
        self.cycles += 1
        if woke - t0 - self.PERIOD > self.NOISE:
            self.woke.append(woke)
            self.late.append(woke - t0 - self.PERIOD)

    def watch(self, still: Callable[[], bool]) -> None:
        """Watch from a thread of its own until ``still()`` turns false."""
        while still():
            t0 = time.monotonic()
            time.sleep(self.PERIOD)
            self._note(t0)

    async def awatch(self, still: Callable[[], bool]) -> None:
        """Watch from a task on the loop until ``still()`` turns false."""
        while still():
            t0 = time.monotonic()
            await asyncio.sleep(self.PERIOD)
            self._note(t0)

    def within(self, start: float, end: float) -> float:
        """Seconds of stall between ``start`` and ``end``."""
        total = 0.0
        for i in range(bisect.bisect_left(self.woke, start), len(self.woke)):
            woke, late = self.woke[i], self.late[i]
            if woke - late > end:
                break
            total += max(0.0, min(woke, end) - max(woke - late, start))
        return total

    def figure(self) -> str:
        """p99 and max lateness over every wake-up, and the share of time stalled."""
        ordered = sorted(self.late, reverse=True)
        rank = int(0.01 * self.cycles)
        p99 = ordered[rank] if rank < len(ordered) else 0.0
        stalled = sum(self.late) / max(self.cycles * self.PERIOD + sum(self.late), 1e-9)
        worst = ordered[0] if ordered else 0.0
        return f"p99 {_ms(p99)}, max {_ms(worst)}, {stalled:.0%} of the time"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _tries(attempts: Iterable[Any]) -> str:
    return " ".join(f"{a.endpoint}:{a.error or 'ok'}:{a.latency * 1000:.0f}ms" for a in attempts)


class Tally:
    """Aggregates verdicts as they come: compact, so the soak itself barely grows RSS."""

    MAX_EXAMPLES = 12

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._lock = threading.Lock()
        self.done = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.bounded = {"complete": array("d"), "stream": array("d")}
        self.longest = 0.0
        self.sent = dict.fromkeys(NAMES, 0)  # attempts that made a request (not skipped)
        self.replied = dict.fromkeys(NAMES, 0)  # ... answered with a status: reached the fake
        self.refused = dict.fromkeys(NAMES, 0)  # ... refused at connect: never reached it
        self.skipped = dict.fromkeys(NAMES, 0)
        self.errors: collections.Counter[str] = collections.Counter()
        self.max_per_call = 0
        self.problems: collections.Counter[str] = collections.Counter()
        self.stream_problems: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        # calls done, RSS MiB, Python's allocated blocks (cheap to read, unlike
        # gc.get_objects(), which would hold the GIL for tens of ms among live calls)
        self.rss: list[tuple[int, float, int]] = []
        self.late: list[tuple[str, float, float, str]] = []  # via, deadline, bounded point, what

    def add(self, v: Verdict) -> None:
        """Count one call, and note what was wrong with it."""
        cfg = self._cfg
        per_call = self._count_attempts(v.attempts)
        most = max(per_call.values(), default=0)
        if most > cfg.attempts:
            v.problems.append(("requests", f"{dict(per_call)} in one call: {_tries(v.attempts)}"))
        with self._lock:
            if v.bounded > cfg.deadline + cfg.slack:
                message = f"{v.kind}/{v.via} {v.outcome} at {_ms(v.bounded)}: {_tries(v.attempts)}"
                self.late.append((v.via, v.start + cfg.deadline, v.start + v.bounded, message))
            self.done += 1
            self.outcomes[f"{v.kind}/{v.via}/{v.route}/{v.outcome}"] += 1
            self.bounded[v.kind].append(v.bounded)
            self.longest = max(self.longest, v.duration)
            self.max_per_call = max(self.max_per_call, most)
            for check, message in v.problems:
                self.problems[check] += 1
                if v.kind == "stream":
                    self.stream_problems[check] += 1
                if len(self.examples[check]) < self.MAX_EXAMPLES:
                    self.examples[check].append(message)
            done = self.done
        if done in (cfg.rss_baseline_at, cfg.calls) or done % 1000 == 0:
            self.rss.append((done, rss_mib(), sys.getallocatedblocks()))

    def _count_attempts(self, attempts: Iterable[Any]) -> collections.Counter[str]:
        per_call: collections.Counter[str] = collections.Counter()
        with self._lock:
            for a in attempts:
                if a.outcome == "skipped":
                    self.skipped[a.endpoint] += 1
                    continue
                per_call[a.endpoint] += 1
                self.sent[a.endpoint] += 1
                self.errors[a.error or "ok"] += 1
                if a.outcome == "ok" or a.status_code is not None:
                    self.replied[a.endpoint] += 1
                elif a.error == "connect" and a.detail == "ConnectError":
                    self.refused[a.endpoint] += 1
        return per_call


# --- running ---------------------------------------------------------------------------


@dataclass
class Soak:
    """Everything a finished soak measured."""

    cfg: Config
    tally: Tally
    wall: float
    unfinished: int
    hung: list[str]
    faults: dict[str, Any]  # the schedule's summary and the fakes' request counts
    cold: float  # the very first call (SDK import, clients), before the chaos
    loop_stalls: Stalls  # when the event loop could not run
    thread_stalls: Stalls  # when a thread could not run (GIL, CPU)
    recovery: dict[str, tuple[int | None, str]]  # per endpoint: closed after n calls, state
    machine: Machine


Spec = tuple[int, str, int, str]  # index, kind, prompt, route


def _specs(cfg: Config) -> tuple[collections.deque[Spec], collections.deque[Spec]]:
    """The calls, seeded: half for threads, half for tasks; half on each route."""
    rng = random.Random(cfg.seed)
    sync: collections.deque[Spec] = collections.deque()
    tasks: collections.deque[Spec] = collections.deque()
    for i in range(cfg.calls):
        kind = "stream" if rng.random() < cfg.stream_share else "complete"
        route = "cached" if rng.random() < 0.5 else "plain"
        (sync if rng.random() < 0.5 else tasks).append((i, kind, rng.randrange(PROMPTS), route))
    return sync, tasks


class _Runner:
    """The workers: threads on the sync API, tasks on one event loop on the async API."""

    def __init__(self, router: Router, cfg: Config, tally: Tally) -> None:
        self.router, self.cfg, self.tally = router, cfg, tally
        self.sync_specs, self.async_specs = _specs(cfg)
        self.inflight: dict[int, tuple[float, str]] = {}
        self.async_done = threading.Event()  # every task's calls have ended
        self.closing = threading.Event()  # the threads are done too: close the loop's clients
        self.loop_stalls = Stalls()
        self.t0 = time.monotonic()

    def _due(self, i: int) -> float:
        """Seconds until call ``i`` is due: calls arrive at ``rate``, whatever their fate.

        Unpaced, the soak would rush through its calls whenever every breaker is open
        (cached answers take microseconds) and spend its budget in a few such windows.
        """
        return self.t0 + i / self.cfg.rate - time.monotonic()

    def thread_worker(self) -> None:
        while True:
            try:
                i, kind, prompt, route = self.sync_specs.popleft()
            except IndexError:
                return
            time.sleep(max(0.0, self._due(i)))
            self.inflight[i] = (time.monotonic(), f"{kind}/thread")
            self.tally.add(sync_call(self.router, kind, prompt, route))
            del self.inflight[i]

    async def task_worker(self) -> None:
        while True:
            try:
                i, kind, prompt, route = self.async_specs.popleft()
            except IndexError:
                return
            await asyncio.sleep(max(0.0, self._due(i)))
            self.inflight[i] = (time.monotonic(), f"{kind}/async")
            self.tally.add(await async_call(self.router, kind, prompt, route))
            del self.inflight[i]

    def loop_thread(self) -> None:
        async def main() -> None:
            finished = False
            monitor = asyncio.create_task(self.loop_stalls.awatch(lambda: not finished))
            await asyncio.gather(*(self.task_worker() for _ in range(self.cfg.tasks)))
            finished = True
            await monitor
            self.async_done.set()
            # The sync client is shared with the threads: close this loop's clients last.
            await asyncio.to_thread(self.closing.wait)
            await self.router.aclose()

        asyncio.run(main())


def _watch(runner: _Runner, busy: Callable[[], bool], cfg: Config) -> list[str]:
    """Wait while ``busy()``; note calls running past the hang limit (and dump stacks once)."""
    hung: dict[int, str] = {}
    while busy():
        time.sleep(0.25)
        now = time.monotonic()
        oldest = 0.0
        for i, (t0, what) in runner.inflight.copy().items():
            oldest = max(oldest, now - t0)
            if now - t0 > cfg.hang_limit and i not in hung:
                hung[i] = f"call {i} ({what}) still running after {now - t0:.1f} s"
                if len(hung) == 1:
                    faulthandler.dump_traceback(sys.stderr)
        if oldest > 2 * cfg.hang_limit:
            break  # give up on it: the check fails, the report still prints
    return list(hung.values())


def _warm(router: Router) -> float:
    """One call of each kind before the chaos starts; returns the first call's time.

    The first call through a route imports the provider SDK and builds its clients (about
    a second, outside the deadline's clock); that is reported apart, not soaked.
    """
    t0 = time.monotonic()
    sync_call(router, "complete", 0)
    cold = time.monotonic() - t0
    sync_call(router, "stream", 0)

    async def both() -> None:
        for kind in ("complete", "stream"):
            await async_call(router, kind, 0)

    asyncio.run(both())
    return cold


def _recover(router: Router, tries: int = 5) -> dict[str, tuple[int | None, str]]:
    """Once the faults stop, call each endpoint alone until its breaker closes again.

    Per endpoint: after how many calls its breaker was closed (None: not within ``tries``),
    and its state then. A breaker that stays open or half-open with every fake healthy
    has lost a trial permit (a call that never reported back).
    """
    from failover import FailoverError

    time.sleep(RESET_TIMEOUT + 0.1)  # an open breaker may half-open now
    found: dict[str, tuple[int | None, str]] = {}
    for name in NAMES:
        closed_after: int | None = None
        for n in range(1, tries + 1):
            with contextlib.suppress(FailoverError):
                router.complete(MESSAGES[0], f"solo-{name}", max_tokens=256)
            if router.breaker(name).state == "closed":
                closed_after = n
                break
            time.sleep(RESET_TIMEOUT)
        found[name] = (closed_after, router.breaker(name).state)
    return found


class _Tracer:
    """A Router listener keeping breaker transitions, for ``--trace``."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str, str]] = []

    def __call__(self, event: Any) -> None:
        if type(event).__name__ == "BreakerStateChanged":
            what = f"breaker {event.old} -> {event.new} ({event.reason})"
            self.lines.append((time.monotonic(), event.endpoint, what))


def _write_trace(path: str, t0: float, *sources: Iterable[Sequence[Any]]) -> None:
    with open(path, "w") as out:
        for at, who, what in sorted(tuple(line) for source in sources for line in source):
            print(f"{at - t0:9.3f} {who:<8} {what}", file=out)


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of the whole machine so far, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _load() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


@dataclass
class Machine:
    """Where the soak ran and how busy the machine was while it did."""

    cpus: int | None
    python: str
    platform: str
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None
    busy: float | None = None  # share of all CPUs busy during the chaos (anything)
    soak_cpu: float = 0.0  # CPU seconds used by the soak and its fakes' process

    @classmethod
    def here(cls) -> Machine:
        import platform

        return cls(
            cpus=os.cpu_count(),
            python=f"{platform.python_implementation()} {platform.python_version()}",
            platform=platform.platform(terse=True),
            load_before=_load(),
        )

    def others(self, wall: float) -> float | None:
        """Share of all CPUs that other processes kept busy during the chaos."""
        if self.busy is None or not self.cpus or wall <= 0:
            return None
        return max(0.0, self.busy - self.soak_cpu / (wall * self.cpus))


def run(cfg: Config) -> Soak:
    """Run one soak and return what it measured."""
    from failover.instrumentation import LoggingListener

    if cfg.litellm:
        # As the test suite does: no fetch of LiteLLM's cost map from the network at import,
        # and no "Give Feedback / Get Help" banner on stdout for every failed call.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
    machine = Machine.here()
    fakes = Fakes(cfg)
    runner: _Runner | None = None
    try:
        tracer = _Tracer()
        listeners: list[Any] = [LoggingListener(), *([tracer] if cfg.trace else [])]
        router = Router.from_dict(policy(fakes.urls, cfg), listeners=listeners)
        cold = _warm(router)
        tally = Tally(cfg)
        runner = _Runner(router, cfg, tally)
        threads = [
            threading.Thread(target=runner.thread_worker, name=f"chaos-{n}", daemon=True)
            for n in range(cfg.threads)
        ]
        loop = threading.Thread(target=runner.loop_thread, name="chaos-loop", daemon=True)
        thread_stalls = Stalls()
        calls_over = threading.Event()
        lag = threading.Thread(
            target=thread_stalls.watch, args=(lambda: not calls_over.is_set(),), daemon=True
        )
        fakes.command("chaos")
        ticks0, cpu0 = _cpu_ticks(), _cpu_seconds(resource.RUSAGE_SELF)
        t0 = runner.t0 = time.monotonic()
        for worker in [*threads, loop, lag]:
            worker.start()
        hung = _watch(runner, lambda: any(w.is_alive() for w in threads), cfg)
        hung += _watch(runner, lambda: loop.is_alive() and not runner.async_done.is_set(), cfg)
        wall = time.monotonic() - t0
        calls_over.set()
        ticks1, cpu1 = _cpu_ticks(), _cpu_seconds(resource.RUSAGE_SELF)
        faults = fakes.command("calm")
        recovery = _recover(router)
    finally:
        if runner is not None:
            runner.closing.set()
        fakes.close()
    loop.join(timeout=10)
    machine.load_after = _load()
    machine.soak_cpu = cpu1 - cpu0 + faults["cpu"]
    if ticks0 is not None and ticks1 is not None and ticks1[1] > ticks0[1]:
        machine.busy = (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1])
    if cfg.trace:
        _write_trace(cfg.trace, t0, faults["trace"], tracer.lines)
    unfinished = cfg.calls - tally.done
    return Soak(
        cfg,
        tally,
        wall,
        unfinished,
        hung,
        faults,
        cold,
        runner.loop_stalls,
        thread_stalls,
        recovery,
        machine,
    )


# --- the checks ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """One checked property: whether it held, its figure, and examples when it did not.

    ``rows`` are the headline figures for the report page, as (what, figure) pairs.
    """

    name: str
    ok: bool
    figure: str
    examples: tuple[str, ...] = ()
    rows: tuple[tuple[str, str], ...] = ()


def _pct(samples: Iterable[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _count(t: Tally, outcome: str, kind: str = "") -> int:
    return sum(n for key, n in t.outcomes.items() if key.endswith("/" + outcome) and kind in key)


def _hang_check(s: Soak) -> Check:
    t, cfg = s.tally, s.cfg
    return Check(
        "no hang",
        not s.unfinished and not s.hung,
        f"{t.done}/{cfg.calls} calls finished in {s.wall:.1f} s ({t.done / s.wall:.0f}/s);"
        f" longest call {t.longest:.2f} s (watchdog at {cfg.hang_limit:g} s)",
        tuple(s.hung[:10]),
        (
            ("calls finished", f"{t.done:,} of {cfg.calls:,} in {s.wall:.1f} s"),
            ("longest call", f"{t.longest:.2f} s (a hang: {cfg.hang_limit:g} s)"),
        ),
    )


# (outcome key, the caller's view of it) for the report page
_OUTCOMES = (
    ("ok", "Response"),
    ("cache", "from_cache"),
    ("all failed", "AllEndpointsFailed"),
    ("deadline", "DeadlineExceeded"),
    ("interrupted", "StreamInterrupted"),
    ("request error", "RequestError"),
    ("other", "anything else"),
)


def _outcome_check(s: Soak) -> Check:
    t = s.tally
    counts = ", ".join(f"{shown} {_count(t, key):,}" for key, shown in _OUTCOMES)
    return Check(
        "outcomes",
        not t.problems["outcomes"],
        f"{counts}; calls by path: "
        + ", ".join(
            f"{path} {sum(n for key, n in t.outcomes.items() if key.startswith(path))}"
            for path in ("complete/thread", "complete/async", "stream/thread", "stream/async")
        )
        + f"; {t.problems['outcomes']} calls whose outcome did not fit their attempts",
        tuple(t.examples["outcomes"]),
        (
            ("outcomes by kind", counts),
            ("outcome at odds with its attempts", f"{t.problems['outcomes']} calls"),
        ),
    )


def _deadline_check(s: Soak) -> Check:
    t, cfg = s.tally, s.cfg
    every = [*t.bounded["complete"], *t.bounded["stream"]]
    worst = max(every, default=0.0)
    raw = max(0.0, worst - cfg.deadline)
    net_worst, examples = 0.0, []
    for via, deadline, point, message in t.late:
        stalls = s.loop_stalls if via == "async" else s.thread_stalls
        stalled = stalls.within(deadline, point)
        net = point - deadline - stalled
        net_worst = max(net_worst, net)
        if net > cfg.slack:
            examples.append(f"{message} (harness stalled {_ms(stalled)} of the overshoot)")
    return Check(
        "deadline",
        net_worst <= cfg.slack,
        f"max overshoot net of harness stalls {_ms(net_worst)} (limit {_ms(cfg.slack)});"
        f" raw: {_ms(raw)}, {len(t.late)} calls past"
        f" {_ms(cfg.deadline + cfg.slack)}; time to the deadline-bound point (deadline"
        f" {_ms(cfg.deadline)}; a stream's first delta): p50 {_ms(_pct(every, 0.5))},"
        f" p99 {_ms(_pct(every, 0.99))}, max {_ms(worst)}; harness stalls (2 ms sleeps"
        f" woken late): a thread {s.thread_stalls.figure()}; the event loop"
        f" {s.loop_stalls.figure()}",
        tuple(examples[: t.MAX_EXAMPLES]),
        (
            (
                "worst overshoot past the deadline",
                f"{_ms(raw)} measured; {_ms(net_worst)} net of harness stalls"
                f" (limit {_ms(cfg.slack)})",
            ),
            ("calls ending over 50 ms late", f"{len(t.late)} measured"),
        ),
    )


def _request_check(s: Soak) -> Check:
    t, received = s.tally, s.faults["received"]
    ok = not t.problems["requests"]
    parts = [f"at most {t.max_per_call} requests per endpoint per call (bound {s.cfg.attempts})"]
    counters = []
    for name in NAMES:
        got, sent, replied, refused = received[name], t.sent[name], t.replied[name], t.refused[name]
        # Every request a fake saw must be an attempt the Router recorded (the SDKs' own
        # retries are off), and every attempt answered with a status reached the fake. The
        # gap: attempts refused at connect, or cut (reset, deadline, server stopped) before
        # the fake had read them.
        within = replied <= got <= sent
        ok = ok and within
        parts.append(
            f"{name}: fake saw {got} of {sent} attempts (answered {replied}, refused"
            f" {refused}, other unanswered {sent - replied - refused})"
            + ("" if within else " OUT OF BOUNDS")
        )
        counters.append(f"{name} {got:,} ({sent:,} recorded, {replied:,} answered)")
    return Check(
        "request bound",
        ok,
        "; ".join(parts),
        tuple(t.examples["requests"]),
        (
            (
                "max requests per endpoint per call",
                f"{t.max_per_call} (bound: retry.attempts = {s.cfg.attempts})",
            ),
            (
                "requests each fake counted (≤ attempts recorded, ≥ attempts answered)",
                "; ".join(counters),
            ),
        ),
    )


def _honest_check(s: Soak) -> Check:
    t = s.tally
    streams = len(t.bounded["stream"])
    interrupted = _count(t, "interrupted", "stream")
    return Check(
        "honest answers",
        not t.problems["honest"],
        f"{streams} streams: {_count(t, 'ok', 'stream')} whole,"
        f" {_count(t, 'cache', 'stream')} from cache,"
        f" {interrupted} StreamInterrupted;"
        f" {t.problems['honest']} truncated or mismatched answers (streams and completes)",
        tuple(t.examples["honest"]),
        (
            (
                "interrupted streams reported as complete",
                f"{t.stream_problems['honest']} of {streams:,} streams ({interrupted} broke"
                " after text and raised StreamInterrupted)",
            ),
            (
                "truncated answers from complete()",
                f"{t.problems['honest'] - t.stream_problems['honest']}",
            ),
        ),
    )


def _memory_check(s: Soak) -> Check:
    samples = {at: (mib, blocks) for at, mib, blocks in s.tally.rss}
    if not samples:
        return Check("memory flat", False, "no RSS sample taken")
    base_at = next((at for at in sorted(samples) if at >= s.cfg.rss_baseline_at), 0)
    end_at = max(samples)
    (base, base_blocks), (end, end_blocks) = samples[base_at], samples[end_at]
    return Check(
        "memory flat",
        end - base <= s.cfg.rss_growth_limit_mib,
        f"RSS {base:.1f} MiB after {base_at} calls, {end:.1f} MiB after {end_at}"
        f" ({end - base:+.1f} MiB; limit +{s.cfg.rss_growth_limit_mib:g}); Python's"
        f" allocated blocks {base_blocks:,} -> {end_blocks:,} ({end_blocks - base_blocks:+,});"
        f" RSS samples (MiB): {', '.join(f'{v[0]:.0f}' for _, v in sorted(samples.items()))}",
        (),
        (
            (
                "RSS",
                f"{base:.1f} MiB after {base_at:,} calls, {end:.1f} MiB after {end_at:,}"
                f" ({end - base:+.1f} MiB; limit +{s.cfg.rss_growth_limit_mib:g} MiB)",
            ),
            (
                "Python's allocated blocks",
                f"{base_blocks:,} → {end_blocks:,} ({end_blocks - base_blocks:+,})",
            ),
        ),
    )


def _recovery_check(s: Soak) -> Check:
    """Once the faults stop, no breaker may stay open: a lost trial permit shows here."""
    parts = [
        f"{name} closed after {n} call(s)" if n else f"{name} still {state}"
        for name, (n, state) in s.recovery.items()
    ]
    figure = "; ".join(parts)
    return Check(
        "breakers recover",
        all(n for n, _ in s.recovery.values()),
        f"with every fake healthy again: {figure}",
        rows=(("each breaker once the faults stop", figure),),
    )


def _coverage_check(s: Soak) -> Check:
    """Not a property of the library: proof the soak exercised what it claims to."""
    seen, t = s.faults["time_in"], s.tally
    missing = [label for label, _, _ in FAULTS if seen.get(label, 0) <= 0]
    total = sum(seen.values()) or 1.0
    share = ", ".join(f"{label} {100 * seen.get(label, 0) / total:.0f}%" for label, _, _ in FAULTS)
    failed = ", ".join(f"{k} {n}" for k, n in t.errors.most_common() if k != "ok")
    applied = len(FAULTS) - len(missing)
    return Check(
        "chaos coverage",
        not missing and not s.faults["errors"],
        f"{s.faults['changes']} mode changes; time in mode: {share}; failed attempts:"
        f" {failed}; skipped (breaker open) {sum(t.skipped.values())};"
        f" first call before the chaos {s.cold:.2f} s"
        + (f"; never applied: {missing}" if missing else ""),
        tuple(s.faults["errors"][:5]),
        (
            (
                "fault modes applied",
                f"{applied} of {len(FAULTS)} in {s.faults['changes']} mode changes"
                + (f" (never: {', '.join(missing)})" if missing else ""),
            ),
        ),
    )


def checks(s: Soak) -> list[Check]:
    """Every check of the soak, each with its figure."""
    return [
        _hang_check(s),
        _outcome_check(s),
        _deadline_check(s),
        _request_check(s),
        _honest_check(s),
        _memory_check(s),
        _recovery_check(s),
        _coverage_check(s),
    ]


def report(results: Sequence[Check], out: Any = None) -> None:
    """Print the summary table: one row per check, its figure wrapped underneath."""
    out = out or sys.stdout
    width = max(len(c.name) for c in results)
    print(f"{'check':<{width}}  result  figure", file=out)
    print(f"{'-' * width}  ------  {'-' * 72}", file=out)
    for c in results:
        lines = textwrap.wrap(c.figure, 80) or [""]
        print(f"{c.name:<{width}}  {'PASS' if c.ok else 'FAIL':<6}  {lines[0]}", file=out)
        for line in lines[1:]:
            print(f"{'':<{width}}          {line}", file=out)
        for example in c.examples:
            print(f"{'':<{width}}          ! {example}", file=out)


# --- the report page -------------------------------------------------------------------

# What each fault mode does, for the report page (same labels as FAULTS).
FAULT_NOTES = {
    "ok": "answers normally",
    "refused": "server stopped: connections refused, open ones dropped",
    "reset": "connection reset (RST) on each request",
    "blackhole": "reads the request, never answers",
    "5xx": "HTTP 500, 502 or 503",
    "529": "HTTP 529 overloaded",
    "429 retry-after": "HTTP 429 with `retry-after` 0.1, 0.25, 1 or 5 s",
    "429 retry-after-ms": "HTTP 429 with `retry-after-ms` 20, 120 or 900",
    "slow": "answers after 50-800 ms",
    "stream cut": "a stream: cut after 0-18 SSE events, never the last, by FIN or RST;"
    " otherwise: cut after half the body",
    "error event": "a stream: an `overloaded_error`, `api_error` or `rate_limit_error`"
    " event inside the 200 response after 0-18 events; otherwise: the status it stands for",
    "trickle": "sends the response 16 bytes at a time, every 2, 10, 30 or 60 ms",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(s: Soak, results: Sequence[Check], command: str, took: float) -> str:
    """The run written up as the docs' "Chaos soak" page."""
    cfg, m, t = s.cfg, s.machine, s.tally
    verdict = "every check passed" if all(c.ok for c in results) else "SOME CHECKS FAILED"
    lines = [
        "# Chaos soak",
        "",
        f"The figures below are from one run of `bench/chaos.py` ({cfg.calls:,} calls;"
        f" {verdict}). The script writes this page; rerun it to refresh them. The"
        " [epoch soak](#epoch-soak-cold-start-open-loop-epochs-issue-13) at the end (a cold"
        " Router, then open-loop epochs with the issue 13 targets) is written by"
        " `bench/chaos.py --epochs`.",
        "",
        "## What it does",
        "",
        "Three [FakeProvider](testing.md) servers, in a process of their own, stand in for"
        " three endpoints. Each changes fault mode every"
        f" {cfg.min_epoch:g}-{cfg.max_epoch:g} s on a seeded schedule (below). Meanwhile one"
        f" Router takes {cfg.calls:,} calls at {cfg.rate:g} a second, spread over"
        f" {cfg.threads} threads on the sync API and {cfg.tasks} asyncio tasks on the async"
        f" API; about {cfg.stream_share:.0%} are streams, read to the end. Half the calls go"
        " through a route with a fallback cache, half through one without. Each call is"
        " judged as it ends, and the run as a whole against these properties:",
        "",
        "- **no hang**: every call ends;",
        "- **outcomes**: every call ends in a `Response` or a contract exception"
        " (`AllEndpointsFailed`, `DeadlineExceeded`, `StreamInterrupted`), coherent with its"
        " attempts; no fault of the schedule is the request's fault, so a `RequestError`"
        " would be a misclassified failure;",
        f"- **deadline**: no call ends more than {_ms(cfg.slack)} past its deadline (a"
        " stream: its first text delta, which is what the deadline bounds);",
        "- **request bound**: no endpoint gets more than `retry.attempts` requests in one call,"
        " and each fake's own request counter agrees with the attempts the Router recorded;",
        "- **honest answers**: no truncated answer is reported as complete. Each fake's text"
        " ends with a terminator word; a `Response` must carry one fake's whole text, equal"
        " to the deltas streamed;",
        f"- **memory flat**: RSS after the first {cfg.rss_baseline_at:,} calls vs at the end;",
        "- **breakers recover**: once the faults stop, each endpoint's breaker closes again;",
        "- **chaos coverage**: the schedule applied every fault mode (a check of the soak, not"
        " of the library).",
        "",
        "See [Failure semantics](failures.md) for what each failure should do, and"
        " [Streaming](streaming.md) for the rules a broken stream follows.",
        "",
        "## Reproduce",
        "",
        "```sh",
        command,
        "```",
        "",
        f"This run took {took:.0f} s of wall time ({s.wall:.0f} s of chaos, plus start-up and"
        f" the recovery probe). The fault sequence is fixed by the seed ({cfg.seed}); which"
        " calls meet which fault depends on real timing, so figures vary a little from run to"
        " run. `tests/test_chaos.py` runs a shortened soak (600 calls) in the test suite, one"
        " test per check.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPUs | {m.cpus} |",
        f"| Python | {m.python} |",
        f"| Platform | {m.platform} |",
    ]
    if m.load_before and m.load_after:
        before = ", ".join(f"{x:.2f}" for x in m.load_before)
        after = ", ".join(f"{x:.2f}" for x in m.load_after)
        lines.append(f"| Load average (1, 5, 15 min) | before {before}; after {after} |")
    if m.busy is not None and m.cpus:
        others = m.others(s.wall) or 0.0
        lines.append(
            f"| CPU busy during the chaos | {m.busy:.0%} of all CPUs: the soak and its fakes"
            f" {m.soak_cpu / (s.wall * m.cpus):.0%}, other processes {others:.0%} |"
        )
    lines.append(
        f"| Harness stalls (2 ms sleeps woken late) | a thread: {s.thread_stalls.figure()};"
        f" the event loop: {s.loop_stalls.figure()} |"
    )
    lines += [
        "",
        "## Set-up",
        "",
        f"Three endpoints (`{'`, `'.join(NAMES)}`) tried in that order, the third"
        f" {'through LiteLLM' if cfg.litellm else 'on the Anthropic API too'}. Route deadline"
        f" {cfg.deadline:g} s. Defaults for every endpoint:",
        "",
        "```yaml",
        *yaml.safe_dump(
            {"defaults": policy(dict.fromkeys(NAMES, ""), cfg)["defaults"]},
            default_flow_style=None,
            sort_keys=False,
        ).splitlines(),
        "```",
        "",
        "The cached route serves a stale answer (up to 1 h old) when every endpoint failed;"
        " the plain route has no cache. The script's `policy()` holds the whole policy.",
        "",
        "## The fault schedule it met",
        "",
        "| fault | what the fake does | weight | share of the time |",
        "|---|---|--:|--:|",
    ]
    seen = s.faults["time_in"]
    total = sum(seen.values()) or 1.0
    for label, weight, _ in FAULTS:
        share = 100 * seen.get(label, 0) / total
        lines.append(f"| {label} | {FAULT_NOTES[label]} | {weight} | {share:.1f}% |")
    failed = ", ".join(f"{k} {n:,}" for k, n in t.errors.most_common() if k != "ok")
    lines += [
        "",
        f"{s.faults['changes']:,} mode changes over {s.wall:.0f} s. Attempts that failed, by"
        f" kind: {failed}. Attempts skipped by an open breaker:"
        f" {sum(t.skipped.values()):,}.",
        "",
        "## Checks",
        "",
        "| check | result | what | figure |",
        "|---|---|---|---|",
    ]
    for c in results:
        rows = c.rows or (("", c.figure),)
        for i, (what, figure) in enumerate(rows):
            name, result = (c.name, "pass" if c.ok else "**FAIL**") if i == 0 else ("", "")
            lines.append(f"| {name} | {result} | {_cell(what)} | {_cell(figure)} |")
    lines += [
        "",
        "A fake counts a request once it has read it. Attempts refused at connect, or cut"
        " (reset, deadline, server stopped) before the fake read them, are recorded by the"
        " Router but never counted by the fake; an attempt answered with a status must have"
        " been counted. More requests counted than recorded would mean hidden retries.",
        "",
        "The deadline check allows for the harness: a call cannot end while its thread or its"
        " event loop is kept from running (the GIL, a CPU busy with other work, a loop busy"
        " with other calls). Monitors on a thread and on the loop sleep 2 ms at a time and"
        " note each late wake-up; the time a call spent past its deadline while the"
        " harness was stalled is taken off its overshoot. Both figures are shown.",
        "",
        "## Every figure",
        "",
        "What the script prints:",
        "",
        "```text",
    ]
    table = io.StringIO()
    report(results, table)
    lines += [*table.getvalue().rstrip("\n").splitlines(), "```", ""]
    return "\n".join(lines)


def _epochs() -> Any:
    """The epoch soak's module (bench/chaos_epochs.py), which builds on this one."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import chaos_epochs

    return chaos_epochs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak from the command line; 0 when every check passed."""
    given = sys.argv[1:] if argv is None else list(argv)
    if any(a.split("=")[0] in ("--epochs", "--epoch-calls", "--epoch-seconds") for a in given):
        return _epochs().main(given)
    started = time.monotonic()
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=defaults.calls)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--tasks", type=int, default=defaults.tasks)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="calls per second")
    parser.add_argument("--litellm", action="store_true", help="third endpoint via litellm")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--trace", help="write mode changes and breaker transitions here")
    parser.add_argument("--out", help="write the run up as a Markdown page here")
    parser.add_argument("--fakes-child", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help="the epoch soak instead (bench/chaos_epochs.py)")
    args = parser.parse_args(argv)
    if args.fakes_child:
        fakes_child(Config(**json.loads(args.fakes_child)))
        return 0
    cfg = Config(
        calls=args.calls,
        seed=args.seed,
        threads=args.threads,
        tasks=args.tasks,
        rate=args.rate,
        rss_baseline_at=min(defaults.rss_baseline_at, max(1, args.calls // 3)),
        litellm=args.litellm,
        trace=args.trace,
    )
    soak = run(cfg)
    results = checks(soak)
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in results], indent=2))
    else:
        print(
            f"chaos soak: {cfg.calls} calls at {cfg.rate:g}/s, seed {cfg.seed},"
            f" {cfg.threads} threads + {cfg.tasks} asyncio tasks, {cfg.stream_share:.0%}"
            f" streams, deadline {cfg.deadline:g} s"
        )
        report(results)
    if args.out:
        command = shlex.join(["python", "bench/chaos.py", *given])
        page = markdown(soak, results, command, time.monotonic() - started)
        page = _epochs().keep_section(args.out, page)  # the epoch soak's section stays
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(page)
    return 0 if all(c.ok for c in results) else 1


if __name__ == "__main__":
    sys.exit(main())
