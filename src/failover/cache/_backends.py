"""The fallback cache: the last good answer per route and request.

The key is the route plus the normalized request (messages and every parameter that
changes the output), hashed with SHA-256 over canonical JSON, so it is the same in every
process and Python version, and an answer from any endpoint serves the route.

Backends: memory (bounded LRU), SQLite (one file shared by processes, WAL, versioned
schema) and Redis (expiry by TTL). A backend error never fails a call: the router logs it
and goes on as if the cache had missed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .._response import Thinking, ToolCall, Usage

__all__ = [
    "MAX_ENTRY_BYTES",
    "CacheBackend",
    "CacheEntry",
    "MemoryCache",
    "RedisCache",
    "SQLiteCache",
    "cache_key",
    "open_cache",
]

KEY_VERSION = 1
SCHEMA_VERSION = 1
# An answer larger than this is not cached: the cache is a fallback, not a blob store.
MAX_ENTRY_BYTES = 1 << 20
# Parameters that do not change the answer, so do not split the cache.
_NEUTRAL_PARAMS = frozenset({"metadata", "timeout", "extra_headers", "user", "stream"})


def cache_key(route: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """A stable hex key for ``route`` plus the normalized request."""
    body = {
        "v": KEY_VERSION,
        "route": route,
        "messages": list(messages),
        "params": {k: v for k, v in params.items() if k not in _NEUTRAL_PARAMS},
    }
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_jsonable
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    return repr(value)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached answer and where it came from. ``created_at`` is a Unix timestamp.

    The answer is kept normalized (text, tool calls, finish reason, thinking, usage), so
    a cached tool-call answer still asks for its calls. Entries written before the tool
    call fields existed read back with none.
    """

    text: str
    endpoint: str
    provider: str
    model: str
    created_at: float
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    stop_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    thinking: tuple[Thinking, ...] = ()
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    def usage(self) -> Usage:
        """The answer's token counts."""
        return Usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens or 0,
            self.cache_write_tokens or 0,
            self.reasoning_tokens or 0,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> CacheEntry:
        fields = json.loads(data)
        known = {k: v for k, v in fields.items() if k in _ENTRY_FIELDS}  # newer writers' extras
        calls = known.pop("tool_calls", None) or ()
        thinking = known.pop("thinking", None) or ()
        return cls(
            **known,
            tool_calls=tuple(ToolCall(**call) for call in calls),
            thinking=tuple(Thinking(**block) for block in thinking),
        )


_ENTRY_FIELDS = frozenset(CacheEntry.__dataclass_fields__)


class CacheBackend(Protocol):
    """Where entries live. Methods may raise; the router treats that as a miss."""

    def get(self, key: str) -> CacheEntry | None: ...

    def put(self, key: str, entry: CacheEntry, keep_for: float) -> None: ...

    def close(self) -> None: ...


class MemoryCache:
    """A bounded, thread-safe LRU in this process.

    Args:
        max_entries: the most entries kept; the least recently used go first.
        now: the wall clock (Unix seconds) that expiry is measured on.
    """

    def __init__(self, max_entries: int = 10_000, now: Callable[[], float] = time.time) -> None:
        self._max = max_entries
        self._now = now
        self._data: OrderedDict[str, tuple[CacheEntry, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            entry, expires = item
            if self._now() >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return entry

    def put(self, key: str, entry: CacheEntry, keep_for: float) -> None:
        with self._lock:
            self._data[key] = (entry, entry.created_at + keep_for)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def close(self) -> None:
        """Nothing to release."""


class SQLiteCache:
    """Entries in one SQLite file: shared by processes, kept across restarts.

    WAL mode lets readers and one writer work at once; a short busy timeout keeps a
    locked database from stalling a call (the write is then skipped and logged).
    """

    def __init__(
        self,
        path: str,
        max_entries: int = 10_000,
        busy_timeout: float = 0.05,
        namespace: str = "",
    ) -> None:
        self.path = path
        # Several policies may share one file; their keys must not meet.
        self._prefix = f"{namespace}:" if namespace else ""
        self._max = max_entries
        self._busy = busy_timeout
        self._local = threading.local()
        self._puts = 0
        conn = self._conn()
        with conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS failover_meta (key TEXT PRIMARY KEY, value TEXT)"
            )
            row = conn.execute(
                "SELECT value FROM failover_meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is None:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS failover_cache (key TEXT PRIMARY KEY,"
                    " entry TEXT NOT NULL, expires_at REAL NOT NULL)"
                )
                conn.execute(
                    "CREATE INDEX IF NOT EXISTS failover_cache_expiry"
                    " ON failover_cache (expires_at)"
                )
                conn.execute(
                    "INSERT OR REPLACE INTO failover_meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{path}: cache schema version {row[0]} is newer than this failover"
                    f" understands ({SCHEMA_VERSION})"
                )

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, key: str) -> CacheEntry | None:
        row = (
            self._conn()
            .execute(
                "SELECT entry, expires_at FROM failover_cache WHERE key = ?", (self._prefix + key,)
            )
            .fetchone()
        )
        if row is None or row[1] <= time.time():
            return None
        return CacheEntry.from_json(row[0])

    def put(self, key: str, entry: CacheEntry, keep_for: float) -> None:
        conn = self._conn()
        conn.execute(
            "INSERT OR REPLACE INTO failover_cache (key, entry, expires_at) VALUES (?, ?, ?)",
            (self._prefix + key, entry.to_json(), entry.created_at + keep_for),
        )
        self._puts += 1
        if self._puts % 100 == 0:
            self._trim(conn)

    def _trim(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM failover_cache WHERE expires_at <= ?", (time.time(),))
        conn.execute(
            "DELETE FROM failover_cache WHERE key IN (SELECT key FROM failover_cache"
            " ORDER BY expires_at DESC LIMIT -1 OFFSET ?)",
            (self._max,),
        )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class RedisCache:
    """Entries in Redis under ``prefix``, each expiring on its own (``SET ... PX``).

    ``url`` takes every form shared state does: ``redis://``, ``rediss://``,
    ``redis+sentinel://h:p,h:p/service[/db]``, ``redis+cluster://h:p,h:p``. :meth:`aget`
    and :meth:`aput` are the coroutine versions (``redis.asyncio`` on the running loop,
    bounded by about twice ``timeout``), for ``acomplete`` and ``astream``: the event loop
    never waits on Redis.
    """

    def __init__(self, url: str, prefix: str = "failover:cache:", timeout: float = 0.05) -> None:
        from ..breaker._redis_connect import Connection

        # A connection of its own: close() must not close the breakers' clients.
        self._conn = Connection(url, timeout)
        self._redis = self._conn.client
        self._prefix = prefix

    def get(self, key: str) -> CacheEntry | None:
        data = self._redis.get(self._prefix + key)
        return None if data is None else CacheEntry.from_json(data)

    def put(self, key: str, entry: CacheEntry, keep_for: float) -> None:
        ttl_ms = int((entry.created_at + keep_for - time.time()) * 1000)
        if ttl_ms > 0:
            self._redis.set(self._prefix + key, entry.to_json(), px=ttl_ms)

    async def aget(self, key: str) -> CacheEntry | None:
        """As :meth:`get`, without blocking the event loop."""
        client, _ = self._conn.aio()
        data = await asyncio.wait_for(client.get(self._prefix + key), 2 * self._conn.timeout)
        return None if data is None else CacheEntry.from_json(data)

    async def aput(self, key: str, entry: CacheEntry, keep_for: float) -> None:
        """As :meth:`put`, without blocking the event loop."""
        ttl_ms = int((entry.created_at + keep_for - time.time()) * 1000)
        if ttl_ms > 0:
            client, _ = self._conn.aio()
            write = client.set(self._prefix + key, entry.to_json(), px=ttl_ms)
            await asyncio.wait_for(write, 2 * self._conn.timeout)

    def close(self) -> None:
        self._redis.close()


def open_cache(
    kind: str,
    location: str | None,
    max_entries: int,
    namespace: str | None,
    now: Callable[[], float] = time.time,
) -> CacheBackend:
    """The backend a policy's ``cache.backend`` names (``now``: the memory backend's clock).

    ``namespace`` is the policy's ``namespace:`` (``None``: the shared default), so that
    every version of a policy finds the answers another version cached.
    """
    if kind == "sqlite":
        assert location is not None
        return SQLiteCache(location, max_entries, namespace=namespace or "")
    if kind == "redis":
        assert location is not None
        from ..breaker._keys import cache_prefix

        return RedisCache(location, prefix=cache_prefix(namespace))
    return MemoryCache(max_entries, now)
