"""Shared state for a fleet: keys by identity, asyncio without blocking, Sentinel failover."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from failover._clock import SystemClock
from failover.breaker._breaker import Breaker
from failover.breaker._keys import breaker_key, cache_prefix, settings_fingerprint
from failover.breaker._redis import RedisBreakerStore
from failover.breaker._redis_connect import forget_connections, parse_url
from failover.cache._backends import CacheEntry, RedisCache, open_cache
from failover.policy._model import BreakerPolicy

from _redis import RedisServer, redis_server, sentinel_group

pytestmark = pytest.mark.redis

MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server
    forget_connections()


def bpolicy(**values: Any) -> BreakerPolicy:
    return BreakerPolicy(**{"failure_threshold": 3, "reset_timeout": 30.0, **values})


# --- keys by identity -----------------------------------------------------------------------


def test_breaker_key_depends_on_identity_and_rules_only() -> None:
    """Same endpoint and rules: same key; another URL, model or threshold: another key."""
    fp = settings_fingerprint(bpolicy())
    key = breaker_key(None, "anthropic", "claude", "http://a", fp)
    assert key == breaker_key(None, "anthropic", "claude", "http://a", fp)
    assert key.startswith("failover:breaker:{")
    assert key.endswith("}:anthropic/claude")
    others = {
        breaker_key(None, "litellm", "claude", "http://a", fp),
        breaker_key(None, "anthropic", "claude-2", "http://a", fp),
        breaker_key(None, "anthropic", "claude", "http://b", fp),
        breaker_key(
            None,
            "anthropic",
            "claude",
            "http://a",
            settings_fingerprint(bpolicy(failure_threshold=4)),
        ),
        breaker_key("staging", "anthropic", "claude", "http://a", fp),
    }
    assert key not in others
    assert len(others) == 5
    # slow_call is judged by the caller: processes differing in it still share a breaker.
    assert settings_fingerprint(bpolicy(slow_call=5.0)) == fp


def test_namespace_overrides_the_prefix_and_cannot_break_the_hash_tag() -> None:
    """An explicit namespace prefixes both key kinds; braces in it never make a hash tag."""
    from redis.crc import key_slot

    assert cache_prefix(None) == "failover:cache:"
    assert cache_prefix("prod") == "failover:prod:cache:"
    key = breaker_key("a{b}", "anthropic", "m{x}", None, "fp")
    assert key.startswith("failover:a(b):breaker:{")
    tag = key.split("{", 1)[1].split("}", 1)[0]
    assert key_slot(key.encode()) == key_slot(tag.encode())
    assert all(c in "0123456789abcdef" for c in tag)


def test_state_urls_parse_for_sentinel_and_cluster() -> None:
    """redis+sentinel and redis+cluster URLs name their nodes, service, db and credentials."""
    target = parse_url("redis+sentinel://:s3cret@h1:26379,h2:26380/mymaster/2")
    assert (target.kind, target.nodes, target.service, target.db) == (
        "sentinel",
        (("h1", 26379), ("h2", 26380)),
        "mymaster",
        2,
    )
    assert target.password == "s3cret"
    cluster = parse_url("redis+cluster://h1:7000,h2:7001")
    assert (cluster.kind, cluster.nodes) == ("cluster", (("h1", 7000), ("h2", 7001)))
    assert parse_url("redis://h:1/0").kind == "single"
    with pytest.raises(ValueError, match="service"):
        parse_url("redis+sentinel://h1:26379")


_VERSION_SCRIPT = """
import json, sys
from failover import Router

action, policy = sys.argv[1], json.loads(sys.argv[2])
msg = [{"role": "user", "content": "hi"}]
with Router.from_dict(policy, listeners=[]) as router:
    for _ in range(3 if action == "open" else 1):
        resp = router.complete(msg, route="chat", max_tokens=8)
    print(json.dumps([router.breaker("primary").snapshot().state, resp.endpoint,
                      resp.from_cache, [a.outcome for a in resp.attempts]]))
"""


def _policy(version: int, urls: dict[str, str], redis_url: str) -> dict[str, Any]:
    endpoints: dict[str, Any] = {
        name: {"provider": "anthropic", "model": f"m-{name}", "api_key": "k", "base_url": url}
        for name, url in urls.items()
    }
    routes: dict[str, Any] = {
        "chat": {"endpoints": ["primary", "secondary"], "cache": {"ttl": "1h"}}
    }
    if version == 2:  # a rolling deploy adds an endpoint and a route, and bumps a deadline
        endpoints["tertiary"] = {**endpoints["secondary"], "model": "m-tertiary"}
        routes["batch"] = {"endpoints": ["tertiary", "primary"], "deadline": "300s"}
        routes["chat"]["endpoints"] = ["primary", "secondary", "tertiary"]
    return {
        "version": 1,
        "defaults": {"retry": {"attempts": 1}, "breaker": {"failure_threshold": 2}},
        "endpoints": endpoints,
        "routes": routes,
        "state": {"backend": redis_url},
        "cache": {"backend": redis_url},
    }


def test_two_policy_versions_share_breakers_and_the_cache(srv: RedisServer) -> None:
    """Routers in two processes, v1 and v2 of a policy (v2 has one more endpoint and
    route): v1's calls open the primary's breaker and cache an answer; v2 finds the breaker
    open and, with every endpoint down, serves v1's answer. The keys ignore the rest of
    the policy, so a rolling deploy neither splits the breakers nor orphans the cache."""
    from failover.testing import FakeProvider, Status

    def run(action: str, version: int, urls: dict[str, str]) -> list[Any]:
        policy = json.dumps(_policy(version, urls, srv.url))
        out = subprocess.run(
            [sys.executable, "-c", _VERSION_SCRIPT, action, policy],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        result: list[Any] = json.loads(out.stdout)
        return result

    with FakeProvider("primary", mode=Status(529)) as primary, FakeProvider("secondary") as ok:
        urls = {"primary": primary.url, "secondary": ok.url}
        assert run("open", 1, urls) == ["open", "secondary", False, ["skipped", "ok"]]
        assert primary.request_count == 2  # then its breaker turned the third call away
    # every endpoint is down now (the fakes are gone): v2 serves v1's cached answer
    state, endpoint, from_cache, outcomes = run("read", 2, urls)
    assert (state, endpoint, from_cache) == ("open", "secondary", True)
    assert outcomes[0] == "skipped"
    keys = [k.decode() for k in srv.client().keys("*")]
    # one key per endpoint, whichever policy version wrote it; one cached answer
    breakers = sorted(k.rsplit(":", 1)[1] for k in keys if k.startswith("failover:breaker:"))
    assert breakers == ["anthropic/m-primary", "anthropic/m-secondary", "anthropic/m-tertiary"]
    assert len([k for k in keys if k.startswith("failover:cache:")]) == 1


# --- asyncio: the loop never waits on Redis -------------------------------------------------


class Blackhole:
    """A TCP listener that accepts connections and never answers (a silent Redis)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()
    forget_connections()


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    """Sleep 1 ms at a time and record how late each wake-up was."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(0.001)
        lags.append(loop.time() - t0 - 0.001)


def test_blackholed_redis_never_blocks_the_event_loop(blackhole: Blackhole) -> None:
    """With Redis accepting and never answering, 400 async calls go on through local
    breakers and the loop keeps ticking: lag p95 <= 5 ms, and never near the 200 ms a
    blocking call would cost (the max allows for a loaded 2-core machine's scheduling)."""
    store = RedisBreakerStore(
        blackhole.url,
        None,
        "ep",
        bpolicy(),
        SystemClock(),
        key="failover:breaker:{x}:ep",
        timeout=0.2,
    )
    cache = RedisCache(blackhole.url, timeout=0.2)
    outcomes: list[bool] = []

    async def calls(n: int) -> None:
        for i in range(n):
            admission = await store.aio.acquire()
            outcomes.append(admission.admitted)
            if admission.admitted:
                await store.aio.record(admission.generation, admission.trial, failed=False)
            if i % 10 == 0:
                with pytest.raises((redis.RedisError, asyncio.TimeoutError, OSError)):
                    await cache.aget("k")  # the cache times out without blocking either
            await asyncio.sleep(0.002)

    async def main() -> list[float]:
        lags: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(_ticker(lags, stop))
        await asyncio.sleep(0.05)  # the ticker's own start-up is not Redis's doing
        lags.clear()
        await asyncio.gather(*(calls(40) for _ in range(10)))
        stop.set()
        await ticker
        return lags

    lags = asyncio.run(main())
    assert len(outcomes) == 400
    assert all(outcomes)  # every call went on, on the local breaker
    assert store.shared == "degraded"
    assert len(lags) > 100
    lags.sort()
    assert lags[int(len(lags) * 0.95)] <= 0.005, lags[-10:]
    assert lags[-1] < 0.05, lags[-10:]


def test_async_and_sync_callers_share_one_breaker(srv: RedisServer) -> None:
    """Failures recorded through the asyncio store open the breaker for sync callers too."""
    store = RedisBreakerStore(
        srv.url, None, "ep", bpolicy(), SystemClock(), key="k:{a}", timeout=2.0
    )
    cache = open_cache("redis", srv.url, 10, "ns")

    async def main() -> None:
        for _ in range(3):
            admission = await store.aio.acquire()
            await store.aio.record(admission.generation, admission.trial, failed=True)
        entry = CacheEntry("hi", "ep", "anthropic", "m", time.time())
        await cache.aput("key", entry, 60)  # type: ignore[attr-defined]
        assert await cache.aget("key") == entry  # type: ignore[attr-defined]

    asyncio.run(main())
    assert store.acquire().admitted is False
    assert store.snapshot().state == "open"
    assert store.shared == "redis"
    assert srv.client().exists("failover:ns:cache:key")


# --- Sentinel: the master dies, the replica takes over ---------------------------------------


def _calls_until(breaker: Breaker, until: float) -> tuple[int, int]:
    """Calls through ``breaker`` (each a success) until ``until``: (made, failed)."""
    made = failed = 0
    while time.monotonic() < until:
        try:
            permit = breaker.acquire()
            if permit is not None:
                permit.success(0.001)
            made += 1
        except Exception:
            failed += 1
        time.sleep(0.002)
    return made, failed


def test_sentinel_failover_loses_no_call_and_breakers_converge(tmp_path: Any) -> None:
    """Kill the master mid-run: calls go on locally while Sentinel promotes the replica,
    then two processes' stores (two connections) agree on the shared state again."""
    with sentinel_group(str(tmp_path)) as (master, replica, sentinel):
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/svc"
        policy = bpolicy(reset_timeout=60.0)
        clock = SystemClock()
        # Two timeouts: two Connections, as two processes would have.
        mine = RedisBreakerStore(url, None, "ep", policy, clock, key="failover:breaker:{s}:ep")
        theirs = RedisBreakerStore(
            url, None, "ep", policy, clock, key="failover:breaker:{s}:ep", timeout=0.051
        )
        other = RedisBreakerStore(url, None, "db", policy, clock, key="failover:breaker:{t}:db")
        breaker = Breaker("ep", policy, clock, store=mine)
        assert other.force("open", "before the failover") is not None
        wait_for(lambda: sentinel.client().execute_command("SENTINEL", "REPLICAS", "svc"), 10)
        master.client().execute_command("WAIT", 1, 2000)  # the replica has the state
        made, failed = _calls_until(breaker, time.monotonic() + 0.3)
        master.stop()
        more, failed_more = _calls_until(breaker, time.monotonic() + 0.5)
        assert mine.shared == "degraded"

        def promoted() -> bool:
            addr = sentinel.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "svc")
            return int(addr[1]) == replica.port

        wait_for(promoted, 20)
        rest = failed_rest = 0
        give_up = time.monotonic() + 10
        while mine.shared != "redis" and time.monotonic() < give_up:  # probes once a second
            made_now, failed_now = _calls_until(breaker, time.monotonic() + 0.1)
            rest, failed_rest = rest + made_now, failed_rest + failed_now
        assert failed + failed_more + failed_rest == 0
        assert made
        assert more
        assert rest
        assert mine.shared == "redis"
        assert other.snapshot().state == "open"  # replicated before the kill: kept
        assert theirs.force("open", "after the failover") is not None
        assert mine.snapshot().state == "open"
        assert breaker.acquire() is None  # converged: the other process's open holds here


def wait_for(check: Any, seconds: float) -> None:
    give_up = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        if time.monotonic() > give_up:
            raise AssertionError(f"not true within {seconds} s: {check}")
        time.sleep(0.05)


# --- Cluster: three masters, breakers in different slots -------------------------------------


@contextlib.contextmanager
def _cluster(masters: int = 3, replicas: int = 0) -> Iterator[list[RedisServer]]:
    """A Redis Cluster on loopback, every replica in sync; its nodes (removed after)."""
    import shutil

    from _redis import require_redis_server

    binary = require_redis_server()
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli not found")
    options = ("--cluster-enabled", "yes", "--cluster-node-timeout", "500")
    count = masters * (1 + replicas)
    nodes = [RedisServer(binary, port, args=options) for port in _cluster_ports(count)]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        wait_for(
            lambda: all(n.client().cluster("info")["cluster_state"] == "ok" for n in nodes), 10
        )
        # A replica takes over only once it has synced: a test that kills a master
        # right after the cluster is made would find no replica able to.
        wait_for(
            lambda: all(
                n.client().info("replication").get("master_link_status", "up") == "up"
                for n in nodes
            ),
            15,
        )
        yield nodes
    finally:
        for node in nodes:
            node.remove()


def _cluster_stores(nodes: list[RedisServer], count: int = 6) -> list[RedisBreakerStore]:
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes)
    policy = bpolicy(failure_threshold=1)
    keys = [breaker_key(None, "anthropic", f"m{i}", None, "fp") for i in range(count)]
    return [
        RedisBreakerStore(url, None, f"b{i}", policy, SystemClock(), key=k, timeout=0.2)
        for i, k in enumerate(keys)
    ]


def _open_all(stores: list[RedisBreakerStore]) -> None:
    for store in stores:
        admission = store.acquire()
        assert store.record(admission.generation, admission.trial, failed=True) is not None
    assert [s.snapshot().state for s in stores] == ["open"] * len(stores)
    assert all(s.shared == "redis" for s in stores)


def _keys_on(node: RedisServer) -> set[str]:
    return {k.decode() if isinstance(k, bytes) else k for k in node.client().keys("*")}


def test_cluster_runs_each_breaker_in_its_own_slot() -> None:
    """On a 3-master Redis Cluster the script runs per breaker on the node owning its slot."""
    with _cluster() as nodes:
        stores = _cluster_stores(nodes)
        _open_all(stores)
        holding = [n.client().dbsize() for n in nodes]
        assert sum(holding) == 6
        assert sum(1 for h in holding if h) > 1  # the breakers really are spread over masters


def test_cluster_master_loss_fails_over_to_its_replica() -> None:
    """A master dies: no call waits on it, its replica takes over, and the breakers it held
    are back on Redis with the state they had (open), not reset."""
    with _cluster(replicas=1) as nodes:
        stores = _cluster_stores(nodes)
        _open_all(stores)
        masters = [n for n in nodes if n.client().info("replication")["role"] == "master"]
        victim = next(n for n in masters if _keys_on(n))
        on_victim = [s for s in stores if s.key in _keys_on(victim)]
        victim.stop()
        slowest = 0.0
        give_up = time.monotonic() + 15
        while True:  # until every breaker is back on Redis (the replica promoted)
            for store in stores:
                t0 = time.monotonic()
                snapshot = store.snapshot()
                slowest = max(slowest, time.monotonic() - t0)
                assert snapshot.state == "open"  # shared or local, the state is kept
            if all(s.shared == "redis" for s in stores):
                break
            assert time.monotonic() < give_up, [s.shared for s in stores]
            time.sleep(0.1)
        assert slowest < 1.0  # a dead node costs a refused connection, never a hang
        assert on_victim
        assert all(s.snapshot().state == "open" for s in on_victim)  # from the replica


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (+10000) is free and valid too."""
    import random

    found: list[int] = []
    while len(found) < count:
        port = random.randrange(20000, 30000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        if port not in found:
            found.append(port)
    return found


def _router_lags(fake_url: str, extra: dict[str, Any]) -> tuple[list[str], list[float], Any]:
    """Run 4 tasks x 10 acomplete calls (5 ms apart) beside a 1 ms ticker; the answers,
    the ticker's lags (sorted) and the Router's status."""
    from failover import Router

    policy = {
        "version": 1,
        "endpoints": {
            "primary": {
                "provider": "anthropic",
                "model": "claude-test",
                "api_key": "k",
                "base_url": fake_url,
            }
        },
        "routes": {"chat": {"endpoints": ["primary"], "cache": {"ttl": "1h"}}},
        **extra,
    }
    router = Router.from_dict(policy, listeners=[])
    answered: list[str] = []

    async def calls(n: int) -> None:
        for _ in range(n):
            resp = await router.acomplete(MSG, max_tokens=8)
            answered.append(resp.endpoint)
            await asyncio.sleep(0.005)

    async def main() -> list[float]:
        lags: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(_ticker(lags, stop))
        await asyncio.sleep(0.05)
        lags.clear()
        await asyncio.gather(*(calls(10) for _ in range(4)))
        stop.set()
        await ticker
        await router.aclose()
        return lags

    lags = sorted(asyncio.run(main()))
    return answered, lags, router.status()


def test_acomplete_never_waits_on_a_blackholed_redis(blackhole: Blackhole) -> None:
    """Through the Router, with state and cache on a Redis that accepts and never answers:
    every acomplete is answered on local breakers, and the event loop lags no more than
    with memory state (a call waiting on Redis would block it for the 50 ms timeout)."""
    from failover.testing import FakeProvider

    with FakeProvider("primary") as fake:
        _, baseline, _ = _router_lags(fake.url, {})
        answered, lags, status = _router_lags(
            fake.url, {"state": {"backend": blackhole.url}, "cache": {"backend": blackhole.url}}
        )
    assert answered == ["primary"] * 40
    assert {s.shared for s in status} == {"degraded"}
    p95 = lags[int(len(lags) * 0.95)]
    assert p95 <= baseline[int(len(baseline) * 0.95)] + 0.005, (lags[-10:], baseline[-10:])
    # A call that waited on Redis would stall the loop ~50 ms on most of the 40 calls;
    # one stall more than the baseline is the scheduler of a loaded 2-core machine.
    assert sum(lag >= 0.045 for lag in lags) <= sum(lag >= 0.045 for lag in baseline) + 1
