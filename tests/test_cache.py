"""The fallback cache: its key, when it answers, what it never holds, and its backends."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from failover import AllEndpointsFailed, RequestError, Router, StreamInterrupted
from failover.cache._backends import MAX_ENTRY_BYTES, SCHEMA_VERSION, cache_key
from failover.testing import CutStream, FakeProvider, Ok, Status

from _redis import RedisServer, redis_server
from _support import make_policy

MSG = [{"role": "user", "content": "hello there"}]
FALLBACK = {"ttl": "1h", "stale_if_error": "1h"}


def router_for(
    fakes: list[FakeProvider],
    *,
    cache: dict[str, Any] | None = None,
    backend: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Router:
    """A one-route router over ``fakes``; ``cache`` is the route's, ``backend`` the top level."""
    policy = make_policy({f.name: f.url for f in fakes}, **kwargs)
    if cache is not None:
        policy["routes"]["chat"]["cache"] = cache
    if backend is not None:
        policy["cache"] = backend
    return Router.from_dict(policy)


def all_down(fakes: list[FakeProvider]) -> None:
    for fake in fakes:
        fake.set_mode(Status(503))


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "failover" and r.levelno == logging.WARNING]


# --- the key ---------------------------------------------------------------------------------

PARAMS: dict[str, Any] = {
    "max_tokens": 64,
    "temperature": 0.2,
    "system": "Be brief.",
    "tools": [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}],
}


def test_key_ignores_dict_order() -> None:
    """Equal requests give equal keys whatever the order of their dict keys."""
    reordered_msg = [{"content": "hello there", "role": "user"}]
    reordered = {k: PARAMS[k] for k in reversed(list(PARAMS))}
    reordered["tools"] = [{"input_schema": {"properties": {}, "type": "object"}, "name": "lookup"}]
    assert cache_key("chat", MSG, PARAMS) == cache_key("chat", reordered_msg, reordered)


@pytest.mark.parametrize(
    ("route", "messages", "params"),
    [
        ("other", MSG, PARAMS),
        ("chat", [{"role": "user", "content": "hello there!"}], PARAMS),
        ("chat", MSG, {**PARAMS, "system": "Be thorough."}),
        ("chat", MSG, {**PARAMS, "tools": []}),
        ("chat", MSG, {**PARAMS, "temperature": 0.3}),
        ("chat", MSG, {**PARAMS, "max_tokens": 65}),
        ("chat", [{"role": "system", "content": "x"}, *MSG], PARAMS),
    ],
    ids=["route", "message", "system", "tools", "temperature", "max_tokens", "system-message"],
)
def test_key_differs_for_a_different_request(
    route: str, messages: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    """Anything that changes the answer (or the route) changes the key."""
    assert cache_key(route, messages, params) != cache_key("chat", MSG, PARAMS)


def test_key_ignores_params_that_do_not_change_the_answer() -> None:
    """Per-call plumbing (metadata, timeout, extra_headers, user) does not split the cache."""
    plumbing = {"metadata": {"user_id": "u1"}, "timeout": 3, "extra_headers": {"x": "1"}}
    assert cache_key("chat", MSG, {**PARAMS, **plumbing, "user": "u"}) == cache_key(
        "chat", MSG, PARAMS
    )


_KEY_SCRIPT = """
import json, sys
from failover.cache._backends import cache_key
route, messages, params = json.loads(sys.stdin.read())
params["stop_set"] = {"gamma", "alpha", "beta", "delta"}
print(cache_key(route, messages, params))
"""


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_key_is_stable_across_processes(seed: str) -> None:
    """Another process with another hash seed computes the same key (sets included)."""
    params = {**PARAMS, "stop_set": {"alpha", "beta", "gamma", "delta"}}
    expected = cache_key("chat", MSG, params)
    payload = json.dumps(["chat", MSG, PARAMS])
    out = subprocess.run(
        [sys.executable, "-c", _KEY_SCRIPT],
        input=payload,
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
        env={**os.environ, "PYTHONHASHSEED": seed},
    )
    assert out.stdout.strip() == expected


def test_key_is_pinned() -> None:
    """The key's algorithm does not drift: a change would orphan every shared cache entry.

    Change the expected value only together with ``failover.cache._backends.KEY_VERSION``.
    """
    expected = "0fa213a95d1b80c4a56504a41c1fc798bddaed2bb2c01407bb90d7424a80177c"
    assert cache_key("chat", MSG, {"max_tokens": 64}) == expected


# --- when the cache answers --------------------------------------------------------------------


def test_fallback_serves_the_last_good_answer(
    fakes: list[FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    """All endpoints down: the cached answer, its age, the failures, its producing endpoint."""
    fakes[0].set_mode(Status(503))  # the answer that gets cached comes from the secondary
    router = router_for(fakes, cache=FALLBACK, breaker={"failure_threshold": 10})
    first = router.complete(MSG, max_tokens=64)
    assert first.endpoint == "secondary"
    assert first.from_cache is False
    all_down(fakes)
    caplog.set_level(logging.INFO, logger="failover")
    resp = router.complete(MSG, max_tokens=64)
    router.close()
    assert resp.from_cache is True
    assert resp.text == "Hello from secondary"
    assert resp.endpoint == "secondary"
    assert resp.provider == "anthropic"
    assert resp.raw is None
    assert resp.cache_age is not None
    assert 0 <= resp.cache_age < 5
    assert resp.usage == first.usage
    assert resp.stop_reason == "end_turn"
    assert [(a.endpoint, a.outcome, a.status_code) for a in resp.attempts] == [
        (name, "error", 503) for name in ("primary", "secondary", "backup") for _ in range(2)
    ]
    served = [
        r
        for r in caplog.records
        if getattr(r, "failover_route", None) == "chat" and "cache" in r.getMessage()
    ]
    assert len(served) == 1
    assert served[0].levelno == logging.INFO
    assert served[0].name == "failover"
    assert served[0].failover_endpoint == "secondary"


async def test_async_fallback_serves_the_cached_answer(fakes: list[FakeProvider]) -> None:
    """acomplete falls back to the cache like complete."""
    router = router_for(fakes, cache=FALLBACK)
    await router.acomplete(MSG)
    all_down(fakes)
    resp = await router.acomplete(MSG)
    await router.aclose()
    assert resp.from_cache is True
    assert resp.text == "Hello from primary"


def test_a_fallback_answer_is_not_written_back(fakes: list[FakeProvider]) -> None:
    """Serving from the cache does not refresh the entry: its age keeps growing."""
    router = router_for(fakes, cache=FALLBACK)
    router.complete(MSG)
    all_down(fakes)
    first = router.complete(MSG)
    time.sleep(0.05)
    second = router.complete(MSG)
    router.close()
    assert first.cache_age is not None
    assert second.cache_age is not None
    assert second.cache_age >= first.cache_age + 0.04


def test_no_cache_on_the_route_raises(fakes: list[FakeProvider]) -> None:
    """Without cache: on the route, a past success does not stand in for failed endpoints."""
    router = router_for(fakes)
    router.complete(MSG)
    all_down(fakes)
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG)
    router.close()


def test_a_different_request_is_not_served(fakes: list[FakeProvider]) -> None:
    """A cached answer serves only the same request on the same route."""
    router = router_for(fakes, cache=FALLBACK)
    router.complete(MSG, max_tokens=64)
    all_down(fakes)
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG, max_tokens=65)
    router.close()


def test_stale_if_error_bounds_the_fallback(fakes: list[FakeProvider]) -> None:
    """An entry older than stale_if_error is not served, even while it is still stored."""
    # ttl keeps the entry stored; stale_if_error alone must stop it being served. One
    # endpoint, one try: the fallback check right after the write takes milliseconds.
    cache = {"ttl": "10s", "stale_if_error": "200ms"}
    router = router_for(fakes[:1], cache=cache, retry={"attempts": 1})
    router.complete(MSG)
    all_down(fakes)
    assert router.complete(MSG).from_cache is True
    time.sleep(0.25)
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG)
    router.close()


def test_serve_fresh_answers_without_a_call(fakes: list[FakeProvider]) -> None:
    """serve: fresh answers within ttl from the cache, sending no request at all."""
    router = router_for(fakes, cache={"ttl": "1h", "serve": "fresh"})
    first = router.complete(MSG)
    counts = [f.request_count for f in fakes]
    resp = router.complete(MSG)
    router.close()
    assert [f.request_count for f in fakes] == counts == [1, 0, 0]
    assert resp.from_cache is True
    assert resp.text == first.text
    assert resp.endpoint == "primary"
    assert resp.attempts == ()


def test_serve_fresh_calls_again_after_ttl(fakes: list[FakeProvider]) -> None:
    """Past ttl, serve: fresh calls the endpoints again."""
    router = router_for(fakes, cache={"ttl": "100ms", "stale_if_error": "1h", "serve": "fresh"})
    router.complete(MSG)
    time.sleep(0.15)
    resp = router.complete(MSG)
    router.close()
    assert resp.from_cache is False
    assert fakes[0].request_count == 2


def test_serve_fallback_always_calls(fakes: list[FakeProvider]) -> None:
    """By default (serve: fallback) every call goes to the endpoints, cache or not."""
    router = router_for(fakes, cache=FALLBACK)
    router.complete(MSG)
    resp = router.complete(MSG)
    router.close()
    assert resp.from_cache is False
    assert fakes[0].request_count == 2


# --- what is never cached ----------------------------------------------------------------------


def test_request_errors_are_not_cached(fakes: list[FakeProvider]) -> None:
    """A rejected request (400) leaves nothing to fall back on."""
    fakes[0].set_mode(Status(400))
    router = router_for(fakes, cache=FALLBACK)
    with pytest.raises(RequestError):
        router.complete(MSG)
    all_down(fakes)
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG)
    router.close()


def test_failed_calls_are_not_cached(fakes: list[FakeProvider]) -> None:
    """A call that fails everywhere writes nothing: the next one fails too."""
    all_down(fakes)
    router = router_for(fakes, cache=FALLBACK)
    for _ in range(2):
        with pytest.raises(AllEndpointsFailed):
            router.complete(MSG)
    router.close()


def test_interrupted_streams_are_not_cached(fakes: list[FakeProvider]) -> None:
    """A stream broken after text is never cached: its partial text is not an answer."""
    fakes[0].set_mode(CutStream(after_events=5))  # two words, then the cut
    router = router_for(fakes, cache=FALLBACK)
    with pytest.raises(StreamInterrupted), router.stream(MSG) as s:
        for _ in s:
            pass
    all_down(fakes)
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG)
    router.close()


def test_completed_streams_are_cached(fakes: list[FakeProvider]) -> None:
    """A stream that completes is cached, and complete() serves it on fallback."""
    router = router_for(fakes, cache=FALLBACK)
    with router.stream(MSG, max_tokens=64) as s:
        streamed = "".join(s)
    all_down(fakes)
    resp = router.complete(MSG, max_tokens=64)
    router.close()
    assert streamed == "Hello from primary"
    assert resp.from_cache is True
    assert resp.text == streamed


@pytest.mark.parametrize(
    ("text", "cached"),
    [
        ("a" * MAX_ENTRY_BYTES, True),
        ("a" * (MAX_ENTRY_BYTES + 1), False),
        # Fewer characters than the bound, more bytes: the bound is on UTF-8 bytes.
        ("é" * (MAX_ENTRY_BYTES // 2 + 1), False),
    ],
    ids=["at-bound", "over-bound", "over-bound-in-bytes"],
)
def test_entry_size_bound(fakes: list[FakeProvider], text: str, cached: bool) -> None:
    """An answer larger than MAX_ENTRY_BYTES is not cached; one at the bound is."""
    fakes[0].text = text
    router = router_for(fakes, cache=FALLBACK)
    assert router.complete(MSG).text == text
    all_down(fakes)
    if cached:
        assert router.complete(MSG).text == text
    else:
        with pytest.raises(AllEndpointsFailed):
            router.complete(MSG)
    router.close()


# --- the memory backend ------------------------------------------------------------------------


def test_memory_backend_is_a_bounded_lru(fakes: list[FakeProvider]) -> None:
    """max_entries bounds the memory cache; the least recently used entry goes first."""
    router = router_for(fakes, cache={"ttl": "1h", "serve": "fresh"}, backend={"max_entries": 2})

    def ask(word: str) -> bool:
        """Whether the answer for ``word`` came from the cache."""
        return router.complete([{"role": "user", "content": word}]).from_cache

    assert not ask("a")
    assert not ask("b")
    assert ask("a")  # a is now the most recently used
    assert not ask("c")  # evicts b, not a
    assert ask("a")
    assert ask("c")
    assert not ask("b")
    router.close()


# --- SQLite ------------------------------------------------------------------------------------


def sqlite_backend(path: Path) -> dict[str, Any]:
    return {"backend": f"sqlite:///{path}"}


def test_sqlite_file_wal_and_schema_version(fakes: list[FakeProvider], tmp_path: Path) -> None:
    """The SQLite backend creates its file in WAL mode and records its schema version."""
    db = tmp_path / "cache.db"
    router = router_for(fakes, cache=FALLBACK, backend=sqlite_backend(db))
    router.complete(MSG)
    router.close()
    assert db.exists()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = conn.execute(
            "SELECT value FROM failover_meta WHERE key = 'schema_version'"
        ).fetchone()
        assert version == (str(SCHEMA_VERSION),)
        assert conn.execute("SELECT count(*) FROM failover_cache").fetchone()[0] == 1
    finally:
        conn.close()


def test_sqlite_survives_a_restart(fakes: list[FakeProvider], tmp_path: Path) -> None:
    """A new Router on the same file serves the answer the old one cached."""
    db = tmp_path / "cache.db"
    with router_for(fakes, cache=FALLBACK, backend=sqlite_backend(db)) as router:
        router.complete(MSG)
    all_down(fakes)
    with router_for(fakes, cache=FALLBACK, backend=sqlite_backend(db)) as router:
        resp = router.complete(MSG)
    assert resp.from_cache is True
    assert resp.text == "Hello from primary"
    assert resp.endpoint == "primary"


_WRITER_SCRIPT = """
import json, sys
from failover import Router
with Router.from_dict(json.loads(sys.stdin.read())) as router:
    resp = router.complete([{"role": "user", "content": "hello there"}])
print(resp.text)
"""


def test_sqlite_is_shared_between_processes(fakes: list[FakeProvider], tmp_path: Path) -> None:
    """An answer cached by another process (file open in both) serves this one's fallback."""
    db = tmp_path / "cache.db"
    policy = make_policy({f.name: f.url for f in fakes})
    policy["routes"]["chat"]["cache"] = FALLBACK
    policy["cache"] = sqlite_backend(db)
    router = Router.from_dict(policy)
    router.complete([{"role": "user", "content": "warm up"}])  # this process has it open
    fakes[0].text = "written by another process"
    out = subprocess.run(
        [sys.executable, "-c", _WRITER_SCRIPT],
        input=json.dumps(policy),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout.strip() == "written by another process"
    all_down(fakes)
    resp = router.complete(MSG)
    router.close()
    assert resp.from_cache is True
    assert resp.text == "written by another process"


@pytest.mark.parametrize(
    ("serve", "side"),
    # serve: fresh reads the cache before every call; fallback only writes on success.
    [("fresh", "read"), ("fallback", "write")],
)
def test_sqlite_garbage_file_never_fails_a_call(
    fakes: list[FakeProvider],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    serve: str,
    side: str,
) -> None:
    """A file that is not a database: reads and writes fail quietly, calls go on, one warning."""
    db = tmp_path / "cache.db"
    db.write_bytes(b"this is not a database\n" * 200)
    caplog.set_level(logging.INFO, logger="failover")
    router = router_for(fakes, cache={"ttl": "1h", "serve": serve}, backend=sqlite_backend(db))
    for _ in range(3):
        resp = router.complete(MSG)
        assert resp.from_cache is False
        assert resp.endpoint == "primary"
    all_down(fakes)
    with pytest.raises(AllEndpointsFailed) as info:
        router.complete(MSG)
    router.close()
    assert not isinstance(info.value.__cause__, sqlite3.Error)
    [warning] = warnings_of(caplog)  # once, not once per call
    assert f"cache {side} failed" in warning.getMessage()
    assert warning.failover_cache_backend == "sqlite"


def test_sqlite_unreadable_entry_is_a_miss(
    fakes: list[FakeProvider], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupt entry in a healthy file is a miss on the read side, not a failed call."""
    db = tmp_path / "cache.db"
    router = router_for(fakes, cache=FALLBACK, backend=sqlite_backend(db))
    router.complete(MSG)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE failover_cache SET entry = '{not json'")
    conn.close()
    all_down(fakes)
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG)
    router.close()
    assert len(warnings_of(caplog)) == 1


def test_sqlite_locked_database_never_fails_a_call(
    fakes: list[FakeProvider], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database locked by another writer: the write is skipped quickly, reads still work."""
    db = tmp_path / "cache.db"
    router = router_for(fakes, cache=FALLBACK, backend=sqlite_backend(db))
    router.complete(MSG)
    locker = sqlite3.connect(db, isolation_level=None, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        for word in ("one", "two", "three"):
            resp = router.complete([{"role": "user", "content": word}])
            assert resp.from_cache is False
        elapsed = time.monotonic() - started
        all_down(fakes)
        assert router.complete(MSG).from_cache is True  # WAL: readers are not blocked
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    router.close()
    assert elapsed < 2.0  # generous: each skipped write waits ~50 ms busy timeout
    [warning] = warnings_of(caplog)
    assert "locked" in warning.getMessage()


def test_sqlite_newer_schema_is_left_alone(
    fakes: list[FakeProvider], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file from a newer failover (higher schema version) is not used, and calls go on."""
    db = tmp_path / "cache.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE failover_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO failover_meta VALUES ('schema_version', ?)", (SCHEMA_VERSION + 1,))
    conn.close()
    router = router_for(fakes, cache=FALLBACK, backend=sqlite_backend(db))
    assert router.complete(MSG).from_cache is False
    router.close()
    [warning] = warnings_of(caplog)
    assert "schema version" in warning.getMessage()


# --- Redis -------------------------------------------------------------------------------------


@pytest.fixture
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def redis_router(fakes: list[FakeProvider], srv: RedisServer, cache: dict[str, Any]) -> Router:
    return router_for(fakes, cache=cache, backend={"backend": srv.url})


def redis_key(srv: RedisServer, key: str) -> bytes:
    """The one Redis key holding the entry for cache key ``key`` (whatever its prefix)."""
    client = srv.client()
    try:
        [found] = list(client.scan_iter(match=f"*{key}"))
    finally:
        client.close()
    assert isinstance(found, bytes)
    return found


@pytest.mark.redis
def test_redis_serves_the_fallback(fakes: list[FakeProvider], redis_srv: RedisServer) -> None:
    """Through the Redis backend, the cached answer stands in for failed endpoints."""
    router = redis_router(fakes, redis_srv, FALLBACK)
    router.complete(MSG)
    all_down(fakes)
    resp = router.complete(MSG)
    router.close()
    assert resp.from_cache is True
    assert resp.text == "Hello from primary"
    assert resp.endpoint == "primary"


@pytest.mark.redis
@pytest.mark.parametrize(
    ("ttl", "stale"), [("2s", "5s"), ("5s", "2s")], ids=["stale-longer", "ttl-longer"]
)
def test_redis_entries_expire_after_the_longer_window(
    fakes: list[FakeProvider], redis_srv: RedisServer, ttl: str, stale: str
) -> None:
    """Each Redis entry expires by itself after max(ttl, stale_if_error)."""
    router = redis_router(fakes, redis_srv, {"ttl": ttl, "stale_if_error": stale})
    router.complete(MSG)
    router.close()
    client = redis_srv.client()
    pttl = client.pttl(redis_key(redis_srv, cache_key("chat", MSG, {})))
    client.close()
    assert 4000 < pttl <= 5000


@pytest.mark.redis
def test_redis_entries_really_expire(fakes: list[FakeProvider], redis_srv: RedisServer) -> None:
    """An entry is gone from Redis once its keep-for time has passed."""
    router = redis_router(fakes, redis_srv, {"ttl": "100ms", "stale_if_error": "200ms"})
    router.complete(MSG)
    router.close()
    client = redis_srv.client()
    found = redis_key(redis_srv, cache_key("chat", MSG, {}))
    give_up = time.monotonic() + 2.0
    while client.exists(found) and time.monotonic() < give_up:
        time.sleep(0.02)
    assert not client.exists(found)
    client.close()


@pytest.mark.redis
def test_redis_outage_never_fails_a_call(
    fakes: list[FakeProvider], redis_srv: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down: calls succeed with one warning, no fallback; back up: the cache works again."""
    router = redis_router(fakes, redis_srv, FALLBACK)
    router.complete(MSG)
    redis_srv.stop()
    started = time.monotonic()
    for word in ("one", "two", "three"):
        assert router.complete([{"role": "user", "content": word}]).endpoint == "primary"
    assert time.monotonic() - started < 2.0  # generous: the backend fails fast
    [warning] = warnings_of(caplog)  # not one per call
    assert warning.failover_cache_backend == "redis"
    all_down(fakes)
    with pytest.raises(AllEndpointsFailed):
        router.complete(MSG)

    redis_srv.start()  # back, empty: nothing was persisted
    for fake in fakes:
        fake.set_mode(Ok())
    assert router.complete(MSG).from_cache is False
    all_down(fakes)
    resp = router.complete(MSG)
    router.close()
    assert resp.from_cache is True
    assert resp.text == "Hello from primary"
