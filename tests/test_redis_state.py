"""Breakers shared through Redis: the Lua rules, permits across processes, degraded mode."""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover import Router
from failover._clock import SystemClock, VirtualClock
from failover._events import BreakerStateChanged
from failover.breaker._core import BreakerCore, Transition
from failover.breaker._redis import RedisBreakerStore
from failover.breaker._redis_connect import forget_connections
from failover.policy._model import BreakerPolicy
from failover.testing import FakeProvider, Ok, Status

from _redis import RedisServer, redis_server
from _support import make_policy

pytestmark = pytest.mark.redis

MSG = [{"role": "user", "content": "hello"}]
_names = itertools.count()


@pytest.fixture
def srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server
    # Stores share one connection (and its up/down mode) per URL: a later test whose
    # server gets this port again must not inherit this one's.
    forget_connections()


def bpolicy(**values: Any) -> BreakerPolicy:
    base: dict[str, Any] = {"failure_threshold": 3, "reset_timeout": 30.0}
    return BreakerPolicy(**{**base, **values})


def make_store(srv: RedisServer, policy: BreakerPolicy, **kwargs: Any) -> RedisBreakerStore:
    name = kwargs.pop("name", "ep")
    kwargs.setdefault("timeout", 2.0)  # tests judge rules, not a loaded machine's latency
    return RedisBreakerStore(srv.url, "testns", name, policy, SystemClock(), **kwargs)


def redis_router(srv: RedisServer, fakes: list[FakeProvider], **kwargs: Any) -> Router:
    policy = make_policy({f.name: f.url for f in fakes}, **kwargs.pop("defaults", {}))
    policy["state"] = {"backend": srv.url}
    return Router.from_dict(policy, listeners=kwargs.pop("listeners", []), **kwargs)


# What the script runs inside Redis (INFO's statistics count those too), and INFO itself.
_NOT_ROUND_TRIPS = {f"cmdstat_{c}" for c in ("info", "time", "hgetall", "hset", "pexpire")}


def commands(client: Any) -> int:
    """Commands clients have sent Redis so far: one per round trip (no pipelines here)."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in _NOT_ROUND_TRIPS)


def mode_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "failover" and "breaker state in Redis" in r.getMessage()
    ]


# --- keys -----------------------------------------------------------------------------------


def test_keys_are_namespaced_and_expire(srv: RedisServer) -> None:
    """Every key sits under failover:{namespace}:breaker: and carries an expiry of >= 1 h."""
    short = make_store(srv, bpolicy(), name="a")
    long_window = make_store(srv, bpolicy(window=1000.0), name="b@chat")
    for store in (short, long_window):
        permit = store.acquire()
        store.record(permit[2], permit[1], failed=True)
    client = srv.client()
    keys = sorted(k.decode() for k in client.keys("*"))
    assert keys == ["failover:testns:breaker:a", "failover:testns:breaker:b@chat"]
    assert 3_590_000 < client.pttl(keys[0]) <= 3_600_000
    assert 9_990_000 < client.pttl(keys[1]) <= 10_000_000  # 10 x window


# --- the Lua rules are BreakerCore's rules --------------------------------------------------

ops = st.lists(
    st.sampled_from(
        ["acquire"] * 4 + ["success", "failure", "failure", "release", "open", "close", "sleep"]
    ),
    max_size=50,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=ops, max_calls=st.integers(1, 3), rate=st.sampled_from([None, 0.5]))
def test_lua_matches_breaker_core(
    srv: RedisServer, ops: list[str], max_calls: int, rate: float | None
) -> None:
    """The same operations, at the same (Redis) times, leave Redis and BreakerCore alike."""
    values = {"failure_threshold": 3, "failure_rate": rate, "minimum_calls": 4}
    # The core runs in milliseconds, the Redis server's unit, so both do exact arithmetic.
    core = BreakerCore(
        bpolicy(**values, window=200.0, reset_timeout=30.0, half_open_max_calls=max_calls)
    )
    store = make_store(
        srv,
        bpolicy(**values, window=0.2, reset_timeout=0.03, half_open_max_calls=max_calls),
        name=f"diff{next(_names)}",
        local_ttl=0,  # every acquire goes to Redis, so every decision is the script's
    )
    client = srv.client()
    first = store.acquire()
    base = first[2] - core.acquire(0).generation
    held: list[tuple[int, int, bool]] = []
    rng = random.Random(len(ops))

    def now() -> float:
        assert store._copy is not None
        return float(store._copy.reply.server_ms)

    for op in ops:
        if op == "sleep":
            time.sleep(rng.uniform(0.003, 0.02))
            continue
        if op == "acquire":
            admitted, trial, gen, transition = store.acquire()
            expected = core.acquire(now())
            assert (admitted, trial, gen - base) == expected[:3]
            assert transition == expected.transition
            if admitted:
                held.append((gen, expected.generation, trial))
        elif op in {"open", "close"}:
            state = "open" if op == "open" else "closed"
            assert store.force(state, "by hand") == core.force(state, now(), "by hand")
        elif held:
            gen, core_gen, trial = held.pop(rng.randrange(len(held)))
            if op == "release":
                store.release(gen, trial)
                core.release(core_gen, trial)
            else:
                failed = op == "failure"
                transition = store.record(gen, trial, failed)
                assert transition == core.record(now(), core_gen, trial, failed)
        _assert_same(client.hgetall(store.key), core, base)


def _assert_same(raw: dict[bytes, bytes], core: BreakerCore, base: int) -> None:
    h = {k.decode(): v.decode() for k, v in raw.items()}
    assert h["state"] == core.state
    assert int(h["gen"]) - base == core.generation
    opened = None if h["opened"] == "-1" else float(h["opened"])
    assert opened == core.opened_at
    counters = [int(h[f]) for f in ("cf", "inflight", "tsucc", "succ", "fail")]
    assert counters == [
        core.consecutive_failures,
        core.trials_in_flight,
        core.trial_successes,
        core.total_successes,
        core.total_failures,
    ]
    flat = json.loads(h["win"]) or []
    assert [flat[i : i + 3] for i in range(0, len(flat), 3)] == [
        list(b) for b in core._window._buckets
    ]


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("releases", [False, True])
def test_random_interleavings_keep_the_invariants(srv: RedisServer, releases: bool) -> None:
    """Threads with their own stores race through random transitions: never an extra trial,
    never a lost outcome, and every state change reported to exactly one caller."""
    max_calls = 2
    policy = bpolicy(
        failure_threshold=2,
        failure_rate=0.5,
        minimum_calls=4,
        window=0.2,
        reset_timeout=0.02,
        half_open_max_calls=max_calls,
    )
    stores = [make_store(srv, policy, local_ttl=0.1 if i % 2 else 0) for i in range(4)]
    client = srv.client()
    stores[0].acquire()  # make the key, so its first generation is known
    base = int(client.hget(stores[0].key, "gen"))
    lock = threading.Lock()
    admitted: Counter[int] = Counter()
    released: Counter[int] = Counter()
    transitions: list[Transition] = []
    records = [0]
    violations: list[str] = []
    done = threading.Event()

    def check() -> None:  # Redis's own view, sampled between scripts
        while not done.is_set():
            h = {k.decode(): v.decode() for k, v in client.hgetall(stores[0].key).items()}
            inflight, tsucc = int(h["inflight"]), int(h["tsucc"])
            if inflight < 0 or inflight + tsucc > max_calls:
                violations.append(f"{h}")
            if h["state"] != "half_open" and (inflight or tsucc):
                violations.append(f"{h}")

    def worker(store: RedisBreakerStore, seed: int) -> None:
        rng = random.Random(seed)
        held: list[tuple[int, bool]] = []
        for _ in range(250):
            roll = rng.random()
            if roll < 0.5 or not held:
                ok, trial, gen, moved = store.acquire()
                with lock:
                    if moved:
                        transitions.append(moved)
                    if ok:
                        held.append((gen, trial))
                        if trial:
                            admitted[gen] += 1
            else:
                gen, trial = held.pop(rng.randrange(len(held)))
                if releases and roll > 0.93:
                    with lock:  # counted before it lands: never hides a real excess
                        released[gen] += trial
                    store.release(gen, trial)
                    continue
                moved = store.record(gen, trial, failed=roll < 0.7)
                with lock:
                    records[0] += 1
                    if moved:
                        transitions.append(moved)
            if rng.random() < 0.05:
                time.sleep(0.002)
        for gen, trial in held:  # hand everything back before the final checks
            if trial:
                with lock:  # others still racing may take these permits again
                    released[gen] += 1
                store.release(gen, trial)
        store.flush()  # batched successes too

    checker = threading.Thread(target=check)
    checker.start()
    threads = [
        threading.Thread(target=worker, args=(s, i)) for i, s in enumerate(stores) for _ in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    checker.join()

    assert violations == []
    assert all(admitted[g] - released[g] <= max_calls for g in admitted)
    assert len(transitions) > 10  # the run did exercise the state machine
    h = {k.decode(): v.decode() for k, v in client.hgetall(stores[0].key).items()}
    assert int(h["gen"]) - base == len(transitions)  # no change lost, none told twice
    assert int(h["succ"]) + int(h["fail"]) == records[0]  # no outcome lost
    assert int(h["inflight"]) == 0  # no permit leaked
    flow = Counter()
    for t in transitions:
        flow[t.new] += 1
        flow[t.old] -= 1
    expected = Counter({h["state"]: 1})
    expected["closed"] -= 1
    assert {k: v for k, v in flow.items() if v} == {k: v for k, v in expected.items() if v}


_PERMIT_SCRIPT = """
import json, sys, threading, time
from failover.breaker._breaker import Breaker
from failover._clock import SystemClock
from failover.policy._model import BreakerPolicy
from failover.breaker._redis import RedisBreakerStore
from failover.breaker._redis_connect import forget_connections

url, max_calls = sys.argv[1], int(sys.argv[2])
policy = BreakerPolicy(failure_threshold=1, reset_timeout=0.3, half_open_max_calls=max_calls)
clock = SystemClock()
store = RedisBreakerStore(url, "testns", "ep", policy, clock, timeout=2.0)
breaker = Breaker("ep", policy, clock, store=store)
admitted, lock, barrier = [], threading.Lock(), threading.Barrier(20)
print("ready", flush=True)
until = float(sys.stdin.readline())

def worker():
    barrier.wait()
    while time.time() < until:
        permit = breaker.acquire()  # held, never reported: each one is a trial in flight
        if permit is not None:
            with lock:
                admitted.append(permit.trial)

threads = [threading.Thread(target=worker) for _ in range(20)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(admitted))
"""


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_permits_across_two_processes_of_twenty_threads(
    srv: RedisServer, max_calls: int
) -> None:
    """2 processes x 20 threads racing for trial permits get exactly half_open_max_calls."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PERMIT_SCRIPT, srv.url, str(max_calls)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:  # both started: the race starts now, from an open breaker
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    policy = bpolicy(failure_threshold=1, reset_timeout=0.3, half_open_max_calls=max_calls)
    make_store(srv, policy).force("open", "test")
    until = time.time() + 0.3 + 0.5  # racing before and well after the reset timeout
    results = [json.loads(p.communicate(f"{until}\n", timeout=30)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(len(r) for r in results) == max_calls
    assert all(trial for r in results for trial in r)
    assert srv.client().hget("failover:testns:breaker:ep", "inflight") == str(max_calls).encode()


_OPEN_SCRIPT = """
import json, sys
from failover import Router

router = Router.from_dict(json.loads(sys.argv[1]), listeners=[])
for _ in range(3):
    router.complete([{"role": "user", "content": "hi"}], max_tokens=16)
print(json.dumps([router.breaker("primary").state, router.namespace]))
"""


def test_two_processes_share_an_open_breaker(srv: RedisServer, fakes: list[FakeProvider]) -> None:
    """Process A opens the breaker; process B skips the endpoint without sending a request."""
    primary, secondary = fakes[:2]
    primary.set_mode(Status(500))
    policy = make_policy(
        {"primary": primary.url, "secondary": secondary.url}, retry={"attempts": 1}
    )
    policy["state"] = {"backend": srv.url}
    proc_a = subprocess.Popen(
        [sys.executable, "-c", _OPEN_SCRIPT, json.dumps(policy)], stdout=subprocess.PIPE
    )
    with Router.from_dict(policy, listeners=[]) as router:
        router.breaker("primary")  # builds the endpoints (imports the SDK) meanwhile: no I/O
        out, _ = proc_a.communicate(timeout=60)
        assert proc_a.returncode == 0
        state, namespace = json.loads(out)
        assert state == "open"
        assert primary.request_count == 3
        assert router.namespace == namespace
        resp = router.complete(MSG, max_tokens=16)
        rows = {row.name: row for row in router.status()}
    assert [(a.endpoint, a.outcome) for a in resp.attempts] == [
        ("primary", "skipped"),
        ("secondary", "ok"),
    ]
    assert primary.request_count == 3
    assert rows["primary"].state == "open"
    assert rows["primary"].consecutive_failures == 3
    assert rows["primary"].opened_at is not None
    assert abs(rows["primary"].opened_at - time.time()) < 10
    assert rows["primary"].retry_at == pytest.approx(rows["primary"].opened_at + 30)


# --- the hot path ---------------------------------------------------------------------------


def test_one_round_trip_per_call_and_none_for_a_refused_one(
    srv: RedisServer, fakes: list[FakeProvider]
) -> None:
    """Closed-state successes and refused calls cost no round trip while the copy is fresh."""
    primary, secondary = fakes[:2]
    with redis_router(
        srv,
        [primary, secondary],
        clock=VirtualClock(),  # the local copy never ages: counts are exact
        defaults={"retry": {"attempts": 1}},
    ) as router:
        router.complete(MSG, max_tokens=16)  # the first acquire fetches the state
        client = srv.client()  # one connection: its set-up is counted once, before
        before = commands(client)
        for _ in range(20):
            router.complete(MSG, max_tokens=16)
        assert commands(client) - before == 0  # successes wait for the copy's refresh
        assert router.breaker("primary").snapshot().total_successes == 21  # ... or a read
        router.breaker("primary").force_open()
        router.complete(MSG, max_tokens=16)  # the secondary's first acquire fetches its state
        before = commands(client)
        for _ in range(20):
            resp = router.complete(MSG, max_tokens=16)
            assert resp.endpoint == "secondary"
        assert commands(client) - before == 0


def test_reset_timeout_of_300ms_is_honoured(srv: RedisServer, fakes: list[FakeProvider]) -> None:
    """open -> half_open 300 ms after opening, to within tens of milliseconds."""
    primary, secondary = fakes[:2]
    primary.set_mode(Status(500))
    seen: dict[str, float] = {}

    def listen(event: object) -> None:
        if isinstance(event, BreakerStateChanged) and event.endpoint == "primary":
            seen.setdefault(event.new, time.monotonic())

    with redis_router(
        srv,
        [primary, secondary],
        listeners=[listen],
        defaults={"retry": {"attempts": 1}, "breaker": {"reset_timeout": "300ms"}},
    ) as router:
        while "open" not in seen:
            router.complete(MSG, max_tokens=16)
        primary.set_mode(Ok())
        while "half_open" not in seen:
            router.complete(MSG, max_tokens=16)
            time.sleep(0.001)
    assert 0.29 <= seen["half_open"] - seen["open"] <= 0.33


def test_failover_status_shows_the_fleets_view(
    srv: RedisServer, fakes: list[FakeProvider], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`failover status --json` in a fresh process reads the breakers from Redis."""
    from failover.cli._main import main

    policy = make_policy({f.name: f.url for f in fakes[:2]})
    policy["state"] = {"backend": srv.url}
    path = tmp_path / "routes.yaml"
    path.write_text(json.dumps(policy))  # JSON is YAML
    with Router.from_dict(policy, listeners=[]) as elsewhere:
        elsewhere.breaker("secondary").force_open("operator")
    assert main(["status", "-c", str(path), "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["primary"]["state"] == "closed"
    assert rows["secondary"]["state"] == "open"
    assert rows["secondary"]["retry_at"] == pytest.approx(time.time() + 30, abs=5)


def test_snapshot_reads_redis_not_the_local_copy(srv: RedisServer) -> None:
    """status() shows what another process did a moment ago, and the window's counts."""
    mine, theirs = make_store(srv, bpolicy()), make_store(srv, bpolicy())
    _, trial, gen, _ = mine.acquire()
    mine.record(gen, trial, failed=True)
    assert mine.snapshot().window_failures == 1
    theirs.force("open", "operator")
    snap = mine.snapshot()
    assert (snap.state, snap.window_calls, snap.total_failures) == ("open", 1, 1)
    assert snap.retry_at is not None
    assert snap.opened_at == pytest.approx(time.monotonic(), abs=0.5)


def test_a_lost_trial_permit_is_taken_back_after_the_lease(srv: RedisServer) -> None:
    """A trial never reported (its process died) reopens the breaker once the lease ends."""
    policy = bpolicy(reset_timeout=0.05)
    dead, alive = (make_store(srv, policy, trial_lease=0.3, local_ttl=0) for _ in range(2))
    dead.force("open", "test")
    time.sleep(0.06)
    assert dead.acquire()[:2] == (True, True)  # ... and its process dies
    assert alive.acquire()[0] is False
    time.sleep(0.3)
    admitted, _, _, moved = alive.acquire()
    assert not admitted
    assert moved == Transition("half_open", "open", "1 trial permit(s) not returned within 0.3 s")
    time.sleep(0.06)
    assert alive.acquire()[:2] == (True, True)


# --- degraded mode --------------------------------------------------------------------------


def test_redis_killed_then_restarted(
    srv: RedisServer, fakes: list[FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis dead calls go on through local breakers; one log line per mode change;
    once it is back the shared state resumes."""
    caplog.set_level(logging.WARNING, logger="failover")
    primary, secondary = fakes[:2]
    defaults = {"retry": {"attempts": 1}, "breaker": {"reset_timeout": "200ms"}}
    with redis_router(srv, [primary, secondary], defaults=defaults) as router:
        store = router.breaker("primary")._store
        assert isinstance(store, RedisBreakerStore)
        for _ in range(10):
            assert router.complete(MSG, max_tokens=16).endpoint == "primary"
        assert store.shared == "redis"
        srv.stop()
        latencies = []
        for i in range(30):
            if i == 10:
                primary.set_mode(Status(500))  # the local breaker must open on its own
            t0 = time.perf_counter()
            resp = router.complete(MSG, max_tokens=16)
            latencies.append(time.perf_counter() - t0)
        assert store.shared == "degraded"
        assert max(latencies) < 0.5
        assert resp.endpoint == "secondary"
        assert [a.outcome for a in resp.attempts] == ["skipped", "ok"]
        assert len(mode_lines(caplog)) == 1
        primary.set_mode(Ok())
        srv.start()
        time.sleep(1.1)  # past the probe interval
        for _ in range(5):
            assert router.complete(MSG, max_tokens=16).endpoint == "primary"
        assert store.shared == "redis"
        assert srv.client().hget(store.key, "succ") is not None
    lines = mode_lines(caplog)
    assert len(lines) == 2
    assert "unreachable" in lines[0]
    assert "reachable again" in lines[1]


def test_local_fallback_starts_from_the_last_shared_state(
    srv: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An open shared breaker stays open locally when Redis goes away: no stampede."""
    caplog.set_level(logging.WARNING, logger="failover")
    store = make_store(srv, bpolicy(), timeout=0.05)
    assert store.force("open", "test") is not None
    srv.stop()
    time.sleep(0.15)  # the local copy is stale: the next acquire must ask Redis
    assert store.acquire()[0] is False
    assert store.shared == "degraded"
    assert store.current == "open"
    assert store.snapshot().state == "open"
    assert len(mode_lines(caplog)) == 1


def test_slow_redis_costs_at_most_the_timeout(
    srv: RedisServer, fakes: list[FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that stops answering costs a call at most the 50 ms timeout, and is tried
    again once a second, not on every call."""
    caplog.set_level(logging.WARNING, logger="failover")
    primary = fakes[0]
    pid = int(srv.client().info("server")["process_id"])
    with redis_router(srv, [primary]) as router:
        baseline = []
        for _ in range(20):
            t0 = time.perf_counter()
            router.complete(MSG, max_tokens=16)
            baseline.append(time.perf_counter() - t0)
        store = router.breaker("primary")._store
        assert isinstance(store, RedisBreakerStore)
        tries = [0]
        script = store._conn.script

        def counting(*args: Any, **kwargs: Any) -> Any:
            tries[0] += 1
            return script(*args, **kwargs)

        store._conn.script = counting  # type: ignore[method-assign]
        os.kill(pid, signal.SIGSTOP)
        try:
            latencies = []
            started = time.monotonic()
            while time.monotonic() - started < 1.5:
                t0 = time.perf_counter()
                router.complete(MSG, max_tokens=16)
                latencies.append(time.perf_counter() - t0)
        finally:
            os.kill(pid, signal.SIGCONT)
        stalled_tries = tries[0]
        time.sleep(1.05)
        router.complete(MSG, max_tokens=16)
        store._conn.script = script  # type: ignore[method-assign]
    assert len(latencies) > 50
    assert max(latencies) < max(baseline) + 0.05 + 0.05
    assert 1 <= stalled_tries <= 3  # the call that found out, then one probe a second
    assert store.shared == "redis"
    assert len(mode_lines(caplog)) == 2


def test_permit_from_before_a_restart_does_not_count_after_it(srv: RedisServer) -> None:
    """Generations start from the server's clock, so old permits never match new state."""
    store = make_store(srv, bpolicy(failure_threshold=1), timeout=0.05)
    _, trial, gen, _ = store.acquire()
    srv.stop()
    srv.start()
    time.sleep(1.05)  # the first call after the restart finds a dead connection: back off
    store.acquire()
    time.sleep(1.05)
    assert store.record(gen, trial, failed=True) is None
    assert store.shared == "redis"
    h = srv.client().hgetall(store.key)
    assert (h[b"state"], h[b"fail"], h[b"cf"]) == (b"closed", b"1", b"0")
