"""Epoch soak: a cold Router, then epochs of open-loop calls over three misbehaving fakes.

The shape issue 13 asks for: a Router built right before the first epoch (its build time
measured, outside every call), then ``--epochs`` epochs of ``--epoch-calls`` calls each,
arriving at a fixed rate whatever became of the earlier ones (a thread or an asyncio task
per call), over three endpoints with a 2 s route deadline. The first epoch is all healthy:
it shows the cold start under load. Every third epoch after it puts an endpoint that
accepts and never answers (Blackhole) next to one answering 529 at times; the others draw
each endpoint's mode from the soak's fault modes. Modes change only at epoch boundaries,
so the soak knows which endpoint was healthy when, and judges every call against targets:

- answered: >= 99 % of the answerable calls got a Response (fresh or cached). A call is
  answerable when at least one endpoint was healthy for the call's whole span (start to
  end), or, on the cached route, a fresh answer to the same prompt had been returned
  before the call started. Healthy: answering normally (``Ok``, or ``Latency`` of at most
  half the read timeout); any other mode, a 529 "at times" included, is not;
- deadline: 0 calls ending past deadline + 50 ms (a stream: its first delta);
- requests: <= 1.2 requests per call on average (every attempt not skipped);
- honest: 0 truncated answers reported as complete;
- typed: 0 errors other than the library's exceptions;
- no hang: 0 calls still running ``hang_limit`` seconds after they started.

    python bench/chaos.py --epochs 30 --epoch-calls 40 [--epoch-seconds 3] [--seed 1]
                          [--json] [--out docs/chaos.md]
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import chaos
from chaos import NAMES, PROMPTS, TEXTS, Check, Stalls, Verdict

from failover import Router

MARK_BEGIN = "<!-- epoch soak: begin (bench/chaos.py --epochs writes this section) -->"
MARK_END = "<!-- epoch soak: end -->"
FLAP_PERIOD = 0.3  # the "529 at times" endpoint: 529 this long, then Ok this long, ...


@dataclass(frozen=True, slots=True)
class EpochConfig:
    """One epoch soak's size and targets."""

    epochs: int = 30
    calls: int = 40  # per epoch
    epoch_seconds: float = 3.0
    seed: int = 1
    deadline: float = 2.0
    slack: float = 0.050
    stream_share: float = 0.3
    hang_limit: float = 10.0
    answered_target: float = 0.99
    requests_target: float = 1.2
    litellm: bool = False
    read: float = 0.5  # timeout.read of every endpoint (healthy: Latency <= read / 2)


def policy(urls: dict[str, str], cfg: EpochConfig) -> dict[str, Any]:
    """The classic soak's policy, 2 s deadline, a first-token limit, no solo routes."""
    base = chaos.policy(urls, chaos.Config(deadline=cfg.deadline, litellm=cfg.litellm))
    base["defaults"]["timeout"] = {
        "connect": "200ms",
        "read": f"{cfg.read * 1000:g}ms",
        "stream_idle": "500ms",
        "first_token": "400ms",
    }
    base["routes"] = {k: v for k, v in base["routes"].items() if not k.startswith("solo-")}
    return base


# --- the schedule ----------------------------------------------------------------------

ModeSpec = tuple[str, str, dict[str, Any]]  # label, mode class (or "refused"/"flap529"), args


def _spec(label: str, rng: random.Random) -> ModeSpec:
    mode = chaos._FACTORIES[label](rng)
    if mode is None:
        return (label, "refused", {})
    return (label, type(mode).__name__, dataclasses.asdict(mode))


def schedule(cfg: EpochConfig) -> list[dict[str, ModeSpec]]:
    """Each epoch's mode per endpoint, seeded.

    Epoch 0: all healthy (the cold start). Epochs 1, 4, 7...: one endpoint silent, one
    answering 529 at times, one healthy. Epochs 3, 9, 15...: every endpoint faulty (the
    epoch after shows whether open breakers let calls through). Others: each endpoint
    healthy with odds 1/2, else in one of the classic soak's fault modes.
    """
    rng = random.Random(f"epochs:{cfg.seed}")
    faults = [(label, w) for label, w, _ in chaos.FAULTS if label != "ok"]
    plan: list[dict[str, ModeSpec]] = []
    for e in range(cfg.epochs):
        if e == 0:
            plan.append({n: ("ok", "Ok", {}) for n in NAMES})
            continue
        if e % 3 == 1:  # the case: one silent, one 529 at times, one healthy
            k = (e // 3) % 3
            hole, flap = NAMES[k], NAMES[(k + 1) % 3]
            epoch = {n: ("ok", "Ok", {}) for n in NAMES}
            epoch[hole] = ("blackhole", "Blackhole", {})
            epoch[flap] = ("529 at times", "flap529", {"period": FLAP_PERIOD})
            plan.append(epoch)
            continue
        epoch = {}
        down = e % 6 == 3  # every endpoint faulty: then the breakers must let calls through
        for n in NAMES:
            if not down and rng.random() < 0.5:
                epoch[n] = ("ok", "Ok", {})
            else:
                label = rng.choices([f[0] for f in faults], [f[1] for f in faults])[0]
                epoch[n] = _spec(label, rng)
        plan.append(epoch)
    return plan


def healthy(spec: ModeSpec, cfg: EpochConfig) -> bool:
    """An endpoint answers every request normally in this mode."""
    _, cls, args = spec
    return cls == "Ok" or (cls == "Latency" and args["seconds"] <= cfg.read / 2)


# --- the fakes' process ----------------------------------------------------------------


def fakes_child() -> None:
    """The fakes' process: ``modes {json}`` sets each fake's mode; ``count`` reports."""
    import failover.testing as testing

    fakes = {n: testing.FakeProvider(name=n, text=TEXTS[n]).start() for n in NAMES}
    flap_stop = threading.Event()

    def flap(fake: Any, period: float, stop: threading.Event) -> None:
        down = True
        while not stop.is_set():
            fake.set_mode(testing.Status(529) if down else testing.Ok())
            down = not down
            stop.wait(period)

    def reply(obj: Any) -> None:
        print(json.dumps(obj), flush=True)

    reply({"urls": {n: f.url for n, f in fakes.items()}})
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "modes":
            flap_stop.set()
            flap_stop = threading.Event()
            for name, (_, cls, args) in json.loads(arg).items():
                fake = fakes[name]
                if cls == "refused":
                    fake.stop()
                    continue
                fake.start()
                if cls == "flap529":
                    threading.Thread(
                        target=flap, args=(fake, args["period"], flap_stop), daemon=True
                    ).start()
                else:
                    fake.set_mode(getattr(testing, cls)(**args))
            reply({})
        elif command == "count":
            reply({n: f.request_count for n, f in fakes.items()})
    flap_stop.set()
    for fake in fakes.values():
        fake.stop()


def Fakes() -> chaos.Fakes:  # noqa: N802 - a constructor, as chaos.Fakes is
    """The parent's handle on this soak's fakes' process (chaos.Fakes, our child)."""
    return chaos.Fakes(args=[sys.executable, __file__, "--fakes-child"])


# --- running ---------------------------------------------------------------------------


@dataclass(slots=True)
class Call:
    """One call of the soak: when, what, and its verdict once it ended."""

    index: int
    epoch: int
    kind: str
    via: str
    route: str
    prompt: int
    due: float
    verdict: Verdict | None = None


@dataclass
class EpochSoak:
    """Everything an epoch soak measured."""

    cfg: EpochConfig
    plan: list[dict[str, ModeSpec]]
    windows: list[tuple[float, float]]  # per epoch: modes in force from .. to (monotonic)
    calls: list[Call]
    build: float  # seconds to build the Router (imports, clients): before any call
    t0: float
    received: dict[str, int]
    events: collections.Counter[str]
    breakers: list[tuple[float, str, str]]  # (when, endpoint, "old -> new (reason)")
    thread_stalls: Stalls
    loop_stalls: Stalls
    hung: list[Call] = field(default_factory=list)


def _calls(cfg: EpochConfig) -> list[Call]:
    rng = random.Random(f"calls:{cfg.seed}")
    gap = cfg.epoch_seconds / cfg.calls
    out = []
    for e in range(cfg.epochs):
        for i in range(cfg.calls):
            out.append(
                Call(
                    index=len(out),
                    epoch=e,
                    kind="stream" if rng.random() < cfg.stream_share else "complete",
                    via="thread" if rng.random() < 0.5 else "async",
                    route="cached" if rng.random() < 0.5 else "plain",
                    prompt=rng.randrange(PROMPTS),
                    due=e * cfg.epoch_seconds + i * gap,
                )
            )
    return out


def run(cfg: EpochConfig) -> EpochSoak:
    """Build a fresh Router, then run every epoch open-loop; return what was measured."""
    if cfg.litellm:
        import os

        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    plan, calls = schedule(cfg), _calls(cfg)
    fakes = Fakes()
    events: collections.Counter[str] = collections.Counter()
    breakers: list[tuple[float, str, str]] = []

    def hear(event: Any) -> None:
        name = type(event).__name__
        events[name] += 1
        if name == "BreakerStateChanged":
            what = f"{event.old} -> {event.new} ({event.reason})"
            breakers.append((time.monotonic(), event.endpoint, what))
        elif name == "PanicTrial":
            breakers.append(
                (time.monotonic(), event.endpoint, f"panic trial (call id {event.call_id})")
            )

    thread_stalls, loop_stalls = Stalls(), Stalls()
    running = True
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, name="epoch-loop", daemon=True)
    loop_thread.start()
    loop_watch = asyncio.run_coroutine_threadsafe(loop_stalls.awatch(lambda: running), loop)
    threading.Thread(target=thread_stalls.watch, args=(lambda: running,), daemon=True).start()
    try:
        fakes.command("modes " + json.dumps(plan[0]))
        built = time.monotonic()
        router = Router.from_dict(policy(fakes.urls, cfg), listeners=[hear])
        build = time.monotonic() - built
        t0 = time.monotonic()
        windows = _dispatch(cfg, router, loop, fakes, plan, calls, t0)
        hung = _drain(cfg, calls)
        received = fakes.command("count")
        windows[-1] = (windows[-1][0], time.monotonic())
        running = False
        asyncio.run_coroutine_threadsafe(router.aclose(), loop).result(timeout=10)
        router.close()
    finally:
        running = False
        with contextlib.suppress(Exception):
            loop_watch.result(timeout=1)
        loop.call_soon_threadsafe(loop.stop)
        fakes.close()
    return EpochSoak(
        cfg,
        plan,
        windows,
        calls,
        build,
        t0,
        received,
        events,
        breakers,
        thread_stalls,
        loop_stalls,
        hung,
    )


def _dispatch(
    cfg: EpochConfig,
    router: Router,
    loop: asyncio.AbstractEventLoop,
    fakes: Fakes,
    plan: list[dict[str, ModeSpec]],
    calls: list[Call],
    t0: float,
) -> list[tuple[float, float]]:
    """Start every call at its time; switch the fakes' modes at each epoch boundary."""
    windows: list[tuple[float, float]] = [(t0, 0.0)]
    epoch = 0
    for call in calls:
        if call.epoch != epoch:
            time.sleep(max(0.0, t0 + call.epoch * cfg.epoch_seconds - time.monotonic()))
            # Epoch e's modes may be in force from the moment its command is sent until
            # the fakes confirm the next epoch's: the windows overlap, the judging errs
            # towards "not healthy".
            sent = time.monotonic()
            fakes.command("modes " + json.dumps(plan[call.epoch]))
            windows[-1] = (windows[-1][0], time.monotonic())
            windows.append((sent, 0.0))
            epoch = call.epoch
        time.sleep(max(0.0, t0 + call.due - time.monotonic()))
        if call.via == "thread":
            threading.Thread(target=_sync, args=(router, call), daemon=True).start()
        else:
            asyncio.run_coroutine_threadsafe(_async(router, call), loop)
    return windows


def _sync(router: Router, call: Call) -> None:
    call.verdict = chaos.sync_call(router, call.kind, call.prompt, call.route)


async def _async(router: Router, call: Call) -> None:
    call.verdict = await chaos.async_call(router, call.kind, call.prompt, call.route)


def _drain(cfg: EpochConfig, calls: list[Call]) -> list[Call]:
    """Wait for the last calls; those still running past the hang limit are hung."""
    until = time.monotonic() + cfg.hang_limit
    while time.monotonic() < until and any(c.verdict is None for c in calls):
        time.sleep(0.05)
    return [c for c in calls if c.verdict is None]


# --- judging ---------------------------------------------------------------------------


def _answered(v: Verdict) -> bool:
    return v.outcome in ("ok", "cache")


def _requests(v: Verdict) -> int:
    return sum(1 for a in v.attempts if a.outcome != "skipped")


def _healthy_through(s: EpochSoak, start: float, end: float) -> list[str]:
    """The endpoints healthy for all of [start, end]."""
    names = set(NAMES)
    for e, (since, until) in enumerate(s.windows):
        if until > start and since < end:
            names &= {n for n in NAMES if healthy(s.plan[e][n], s.cfg)}
    return sorted(names)


def answerable(s: EpochSoak) -> dict[int, str]:
    """Call index -> why it was answerable (healthy endpoints, or a cached answer)."""
    fresh: dict[int, float] = {}  # prompt -> earliest end of a fresh answer on "cached"
    for c in s.calls:
        v = c.verdict
        if v is not None and v.route == "cached" and v.outcome == "ok":
            fresh[c.prompt] = min(fresh.get(c.prompt, float("inf")), v.start + v.duration)
    why: dict[int, str] = {}
    for c in s.calls:
        v = c.verdict
        start, end = (v.start, v.start + v.duration) if v else (s.t0 + c.due, float("inf"))
        ok = _healthy_through(s, start, end)
        if ok:
            why[c.index] = "healthy: " + ", ".join(ok)
        elif c.route == "cached" and fresh.get(c.prompt, float("inf")) <= start:
            why[c.index] = "cached answer"
    return why


def _tries(v: Verdict | None) -> str:
    if v is None:
        return "(still running)"
    return " ".join(
        f"{a.endpoint}:{a.outcome if a.outcome != 'error' else a.error}"
        f"{'/' + str(a.status_code) if a.status_code else ''}:{a.latency * 1000:.0f}ms"
        for a in v.attempts
    )


def _modes(s: EpochSoak, epoch: int) -> str:
    return ", ".join(f"{n} {s.plan[epoch][n][0]}" for n in NAMES)


def breakers_at(s: EpochSoak, at: float) -> str:
    """Each endpoint's last breaker transition (or panic trial) before ``at``, and its age."""
    last: dict[str, tuple[float, str]] = {}
    for when, name, what in s.breakers:
        if when > at:
            break
        last[name] = (when, what)
    return "; ".join(
        f"{n} {last[n][1]} {(at - last[n][0]) * 1000:.0f} ms before" for n in NAMES if n in last
    )


def describe(s: EpochSoak, c: Call, why: str = "") -> str:
    """One call, precisely enough to replay its path through the loop."""
    v = c.verdict
    at = (v.start if v else s.t0 + c.due) - s.t0
    head = f"#{c.index} epoch {c.epoch} (+{at:.2f} s; {_modes(s, c.epoch)})"
    what = f"{c.kind}/{c.via}/{c.route}"
    if v is None:
        return f"{head} {what}: still running"
    return (
        f"{head} {what} -> {v.outcome} at {v.bounded * 1000:.0f} ms"
        f"{' (' + why + ')' if why else ''}: {_tries(v)}"
    )


def _late(s: EpochSoak, c: Call) -> tuple[float, float] | None:
    """(overshoot, of which the harness was stalled) when the call ended late."""
    v = c.verdict
    if v is None or v.bounded <= s.cfg.deadline + s.cfg.slack:
        return None
    stalls = s.loop_stalls if v.via == "async" else s.thread_stalls
    deadline = v.start + s.cfg.deadline
    return v.bounded - s.cfg.deadline, stalls.within(deadline, v.start + v.bounded)


# --- the checks ------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _answered_check(s: EpochSoak) -> Check:
    why = answerable(s)
    done = [c for c in s.calls if c.verdict is not None]
    got = [c for c in done if c.index in why and _answered(c.verdict)]  # type: ignore[arg-type]
    missed = [c for c in s.calls if c.index in why and c not in got]
    share = len(got) / len(why) if why else 1.0
    by_cache = sum(1 for c in s.calls if why.get(c.index) == "cached answer")
    answered_all = sum(1 for c in done if _answered(c.verdict))  # type: ignore[arg-type]
    figure = (
        f"{len(got)} of {len(why)} answerable calls answered ({share:.2%}; target"
        f" {s.cfg.answered_target:.0%}); answerable: {len(why) - by_cache} with a healthy"
        f" endpoint throughout, {by_cache} by a cached answer only; answered overall"
        f" {answered_all} of {len(s.calls)}"
    )
    return Check(
        "answered",
        share >= s.cfg.answered_target,
        figure,
        tuple(
            f"{describe(s, c, why[c.index])} | breakers at its start:"
            f" {breakers_at(s, c.verdict.start if c.verdict else s.t0 + c.due)}"
            for c in missed
        ),
        (("answerable calls answered", f"{len(got)} of {len(why)} ({share:.2%})"),),
    )


def _deadline_check(s: EpochSoak) -> Check:
    late = [(c, x) for c in s.calls if (x := _late(s, c)) is not None]
    bounded = sorted(c.verdict.bounded for c in s.calls if c.verdict is not None)
    worst = bounded[-1] if bounded else 0.0
    p99 = bounded[min(len(bounded) - 1, int(0.99 * len(bounded)))] if bounded else 0.0
    net = [c for c, (over, stalled) in late if over - stalled > s.cfg.slack]
    figure = (
        f"{len(late)} calls past deadline + {_ms(s.cfg.slack)}"
        f" ({_ms(s.cfg.deadline + s.cfg.slack)}),"
        f" {len(net)} of them still past it net of harness stalls; time to the"
        f" deadline-bound point (a stream: first delta): p99 {_ms(p99)}, max {_ms(worst)};"
        f" harness stalls: a thread {s.thread_stalls.figure()}, the event loop"
        f" {s.loop_stalls.figure()}"
    )
    examples = tuple(
        f"{describe(s, c)} [over by {_ms(over)}, harness stalled {_ms(stalled)} of it]"
        for c, (over, stalled) in late
    )
    return Check(
        "deadline",
        not late,
        figure,
        examples,
        (
            (
                f"calls past deadline + {_ms(s.cfg.slack)}",
                f"{len(late)} ({len(net)} net of harness stalls); worst at {_ms(worst)}",
            ),
        ),
    )


def _requests_check(s: EpochSoak) -> Check:
    done = [c.verdict for c in s.calls if c.verdict is not None]
    sent = sum(_requests(v) for v in done)
    per = sent / len(done) if done else 0.0
    fake = sum(s.received.values())
    most = max((_requests(v) for v in done), default=0)
    histogram = collections.Counter(_requests(v) for v in done)
    spread = ", ".join(f"{n}: {histogram[n]}" for n in sorted(histogram))
    return Check(
        "requests per call",
        per <= s.cfg.requests_target,
        f"{per:.2f} requests per call ({sent} attempts not skipped over {len(done)} calls;"
        f" target <= {s.cfg.requests_target:g}); the fakes counted {fake}"
        f" ({fake / max(1, len(done)):.2f} per call); calls by requests made: {spread};"
        f" most in one call {most}",
        rows=(
            (
                "requests per call (attempts made / calls)",
                f"{per:.2f} (fakes counted {fake / max(1, len(done)):.2f})",
            ),
        ),
    )


def _problem_check(s: EpochSoak, name: str, problem: str, what: str) -> Check:
    bad = [(c, m) for c in s.calls if c.verdict for p, m in c.verdict.problems if p == problem]
    return Check(
        name,
        not bad,
        f"{len(bad)} {what}",
        tuple(f"#{c.index} epoch {c.epoch}: {m}" for c, m in bad),
        ((what, str(len(bad))),),
    )


def _typed_check(s: EpochSoak) -> Check:
    other = [c for c in s.calls if c.verdict and c.verdict.outcome == "other"]
    outcomes = collections.Counter(c.verdict.outcome for c in s.calls if c.verdict)
    incoherent = [
        (c, m) for c in s.calls if c.verdict for p, m in c.verdict.problems if p == "outcomes"
    ]
    return Check(
        "typed errors",
        not other,
        f"{len(other)} calls ended in an exception that is not the library's; outcomes:"
        f" {dict(outcomes)}; {len(incoherent)} outcomes at odds with their attempts"
        " (RequestError on a fault, a cached answer after a success...)",
        tuple(f"#{c.index} epoch {c.epoch}: {m}" for c, m in incoherent),
        (
            ("untyped errors", str(len(other))),
            ("outcomes", ", ".join(f"{k} {n}" for k, n in outcomes.most_common())),
        ),
    )


def _hang_check(s: EpochSoak) -> Check:
    longest = max((c.verdict.duration for c in s.calls if c.verdict), default=0.0)
    return Check(
        "no hang",
        not s.hung,
        f"{len(s.hung)} calls still running {s.cfg.hang_limit:g} s after the last arrival;"
        f" longest call {longest:.2f} s",
        tuple(describe(s, c) for c in s.hung),
        (("hung calls", f"{len(s.hung)} (longest call {longest:.2f} s)"),),
    )


def _cold_check(s: EpochSoak) -> Check:
    """Not a target of its own: the cold start's figures (its calls count in every check)."""
    first = [c for c in s.calls if c.epoch == 0]
    answered = sum(1 for c in first if c.verdict and _answered(c.verdict))
    worst = max((c.verdict.bounded for c in first if c.verdict), default=0.0)
    return Check(
        "cold start",
        True,
        f"Router built in {s.build:.2f} s (SDK imports, clients; before any call);"
        f" epoch 0 (all healthy): {answered} of {len(first)} answered, slowest"
        f" {_ms(worst)}",
        rows=(
            ("Router build (before the first call)", f"{s.build:.2f} s"),
            (
                "first epoch under load, all healthy",
                f"{answered} of {len(first)} answered; slowest {_ms(worst)}",
            ),
        ),
    )


def checks(s: EpochSoak) -> list[Check]:
    """Every target of the epoch soak, each with its figure, then the cold start's."""
    return [
        _answered_check(s),
        _deadline_check(s),
        _requests_check(s),
        _problem_check(s, "honest answers", "honest", "truncated answers reported complete"),
        _typed_check(s),
        _hang_check(s),
        _cold_check(s),
    ]


# --- output ----------------------------------------------------------------------------


def _epoch_rows(s: EpochSoak, why: dict[int, str]) -> list[str]:
    rows = [
        "| epoch | " + " | ".join(NAMES) + " | calls | answerable | answered | late | requests |",
        "|--:|" + "---|" * len(NAMES) + "--:|--:|--:|--:|--:|",
    ]
    for e in range(s.cfg.epochs):
        mine = [c for c in s.calls if c.epoch == e]
        done = [c.verdict for c in mine if c.verdict]
        able = sum(1 for c in mine if c.index in why)
        got = sum(1 for c in mine if c.index in why and c.verdict and _answered(c.verdict))
        late = sum(1 for c in mine if _late(s, c))
        req = sum(_requests(v) for v in done) / max(1, len(done))
        modes = " | ".join(s.plan[e][n][0] for n in NAMES)
        rows.append(f"| {e} | {modes} | {len(mine)} | {able} | {got} | {late} | {req:.2f} |")
    return rows


def markdown(s: EpochSoak, results: Sequence[Check], command: str, took: float) -> str:
    """The run written up as a section of docs/chaos.md, between its markers."""
    cfg = s.cfg
    verdict = "every target met" if all(c.ok for c in results) else "SOME TARGETS MISSED"
    why = answerable(s)
    lines = [
        MARK_BEGIN,
        "## Epoch soak: cold start, open-loop epochs (issue 13)",
        "",
        f"One run of `bench/chaos.py --epochs` ({cfg.epochs} epochs × {cfg.calls} calls;"
        f" {verdict}). The script writes this section; rerun it to refresh the figures.",
        "",
        "```sh",
        command,
        "```",
        "",
        f"This run took {took:.0f} s of wall time. A fresh Router is built right before the"
        " first epoch (in a fresh process: the SDK imports and client set-up happen there,"
        " timed, and no call waits on them). Each epoch then starts"
        f" {cfg.calls} calls at a fixed rate over {cfg.epoch_seconds:g} s, each in a thread"
        " of its own (sync API) or an asyncio task (async API) on one loop, whatever became"
        f" of the earlier ones; {cfg.stream_share:.0%} are streams, read to the end; half go"
        " through the route with a fallback cache. Three endpoints, route deadline"
        f" {cfg.deadline:g} s, each endpoint `connect 200ms, read {cfg.read * 1000:g}ms,"
        " stream_idle 500ms, first_token 400ms`, 2 attempts, breakers opening after 3"
        " failures for 500 ms (the classic soak's policy otherwise).",
        "",
        "The fakes' modes change only at epoch boundaries. Epoch 0 is all healthy: the cold"
        " start under load. Every third epoch from epoch 1 puts an endpoint that accepts and"
        " never answers (`blackhole`) next to one answering 529 at times (529 for"
        f" {FLAP_PERIOD * 1000:g} ms, then normally for as long, and so on), the third"
        " healthy. Every sixth epoch from epoch 3 puts every endpoint in a fault mode, so the"
        " epoch after it starts with open breakers in front of healthy endpoints. In the"
        " other epochs each endpoint is healthy with odds 1/2, else in one of the classic"
        " soak's fault modes (weights as in the table above).",
        "",
        "**Answerable.** A call is answerable when at least one endpoint was healthy for"
        " the call's whole span (from its start to its end), or, on the cached route, a fresh"
        " answer to the same prompt had come back before the call started. Healthy means"
        " answering every request normally: `Ok`, or a `Latency` of at most half the read"
        " timeout; a 529 at times, a trickle, slow answers past that, cuts and every other"
        " fault mode are not. An epoch's modes count from the moment the soak sends them"
        " until the fakes confirm the next epoch's, so a call near a boundary is judged"
        " against both epochs. Answered means a `Response`, fresh or cached; a"
        " `StreamInterrupted` is not one.",
        "",
        "**Targets**: ≥ 99 % of answerable calls answered; 0 calls ending past deadline +"
        " 50 ms (a stream: its first delta; the harness stalls are shown, not deducted);"
        " ≤ 1.2 requests per call on average (every attempt not skipped by a breaker);"
        " 0 truncated answers reported complete; 0 errors other than the library's"
        f" exceptions; 0 calls still running {cfg.hang_limit:g} s after the last arrival.",
        "",
        "| check | result | what | figure |",
        "|---|---|---|---|",
    ]
    for c in results:
        for i, (what, figure) in enumerate(c.rows or (("", c.figure),)):
            name, result = (c.name, "pass" if c.ok else "**FAIL**") if i == 0 else ("", "")
            lines.append(f"| {name} | {result} | {chaos._cell(what)} | {chaos._cell(figure)} |")
    lines += ["", "### Per epoch", "", *_epoch_rows(s, why), ""]
    lines += [
        f"Events heard: {', '.join(f'{k} {n}' for k, n in s.events.most_common())}.",
        "",
        "### Every figure, and every call that missed a target",
        "",
        "Each call: `#index epoch N (+seconds since the first epoch; modes) kind/API/route ->"
        " outcome at ms to the deadline-bound point: attempts`, an attempt as"
        " `endpoint:outcome-or-failure-kind/status:latency`.",
        "",
        "```text",
    ]
    table = __import__("io").StringIO()
    chaos.report(results, table)
    lines += [*table.getvalue().rstrip("\n").splitlines(), "```", "", MARK_END, ""]
    return "\n".join(lines)


def write_section(path: str, section: str) -> None:
    """Put ``section`` in the page at ``path``: in place of its old one, else at the end."""
    try:
        with open(path, encoding="utf-8") as f:
            page = f.read()
    except FileNotFoundError:
        page = "# Chaos soak\n\n"
    if MARK_BEGIN in page and MARK_END in page:
        head, _, rest = page.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END)
        page = head + section.rstrip("\n") + tail
    else:
        page = page.rstrip("\n") + "\n\n" + section
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def keep_section(path: str, page: str) -> str:
    """``page`` with the epoch section of the file at ``path`` (if any) kept at its end."""
    try:
        with open(path, encoding="utf-8") as f:
            old = f.read()
    except FileNotFoundError:
        return page
    if MARK_BEGIN not in old or MARK_END not in old:
        return page
    section = MARK_BEGIN + old.partition(MARK_BEGIN)[2].partition(MARK_END)[0] + MARK_END
    return page.rstrip("\n") + "\n\n" + section + "\n"


def main(argv: Sequence[str]) -> int:
    """Run the epoch soak from the command line; 0 when every target was met."""
    import argparse
    import shlex

    started = time.monotonic()
    d = EpochConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--epoch-calls", type=int, default=d.calls)
    parser.add_argument("--epoch-seconds", type=float, default=d.epoch_seconds)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--litellm", action="store_true", help="third endpoint via litellm")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--out", help="write the run up as a section of this Markdown page")
    parser.add_argument("--fakes-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fakes_child:
        fakes_child()
        return 0
    cfg = EpochConfig(
        epochs=args.epochs,
        calls=args.epoch_calls,
        epoch_seconds=args.epoch_seconds,
        seed=args.seed,
        litellm=args.litellm,
    )
    soak = run(cfg)
    results = checks(soak)
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in results], indent=2))
    else:
        print(
            f"epoch soak: {cfg.epochs} epochs x {cfg.calls} open-loop calls over"
            f" {cfg.epoch_seconds:g} s each, seed {cfg.seed}, deadline {cfg.deadline:g} s"
        )
        chaos.report(results)
    if args.out:
        command = shlex.join(["python", "bench/chaos.py", *argv])
        write_section(args.out, markdown(soak, results, command, time.monotonic() - started))
    return 0 if all(c.ok for c in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
