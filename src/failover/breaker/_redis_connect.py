"""Redis clients for shared state: one URL form per deployment shape, sync and asyncio.

``redis://`` and ``rediss://`` name one server; ``redis+sentinel://[user:pass@]h:p,h:p/
service[/db]`` asks Sentinel which server is the master of ``service`` (again after each
failover); ``redis+cluster://[user:pass@]h:p,h:p`` (``rediss+...`` for TLS) talks to a
Redis Cluster, seeded by the nodes given. redis-py does the work: these helpers only
parse the URL and build its clients with short timeouts and no retries of their own.

:class:`Connection` is shared by every store of a process using one URL: it holds the
clients (an asyncio client per event loop, since its sockets belong to one loop), and the
mode (Redis answering or not), so that a process logs one line per change of mode
however many breakers it has, and probes a dead Redis once per interval, not per call.

This module imports redis; it is imported only for a policy that uses Redis.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..policy._fields import redact_url

__all__ = ["Connection", "RedisTarget", "async_client", "connection", "parse_url", "sync_client"]

_log = logging.getLogger("failover")

# redis-py leaves these untyped; mypy strict wants them named as Any.
_Sentinel: Any = redis.sentinel.Sentinel
_AsyncSentinel: Any = redis.asyncio.sentinel.Sentinel
_ClusterNode: Any = redis.cluster.ClusterNode
_AsyncClusterNode: Any = redis.asyncio.cluster.ClusterNode

# After Redis failed, one call tries it again this often (seconds of real time: this
# paces network I/O, whatever clock the breakers run on).
PROBE_EVERY = 1.0

Mode = Literal["redis", "degraded"]


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed state or cache URL.

    Attributes:
        kind: ``"single"``, ``"sentinel"`` or ``"cluster"``.
        url: the URL as given (for ``single``, handed to redis-py as is).
        nodes: ``(host, port)`` of the sentinels or the cluster's seed nodes.
        service: the Sentinel service name.
        db: the database number (single and sentinel).
        username: from the URL's user part, if any.
        password: from the URL's user part, if any.
        ssl: ``rediss+...``.
    """

    kind: Literal["single", "sentinel", "cluster"]
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False


def parse_url(url: str) -> RedisTarget:
    """Split a state/cache URL into what redis-py's constructors take.

    Raises:
        ValueError: a sentinel URL without a service, a node without a port number.
    """
    scheme, _, rest = url.partition("://")
    if scheme not in ("redis+sentinel", "redis+cluster", "rediss+sentinel", "rediss+cluster"):
        return RedisTarget("single", url)
    userinfo, at, rest = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    nodes = tuple(_node(part, url) for part in hosts.split(",") if part)
    if not nodes:
        raise ValueError(f"{redact_url(url)}: no host:port")
    kind: Literal["sentinel", "cluster"] = "sentinel" if "sentinel" in scheme else "cluster"
    service, _, db = path.partition("/")
    if kind == "sentinel" and not service:
        raise ValueError(f"{redact_url(url)}: no service name (redis+sentinel://h:p/service)")
    return RedisTarget(
        kind,
        url,
        nodes,
        service,
        int(db) if db else 0,
        username,
        password,
        scheme.startswith("rediss"),
    )


def _node(part: str, url: str) -> tuple[str, int]:
    host, _, port = part.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{redact_url(url)}: {part!r} is not host:port")
    return host.strip("[]"), int(port)


def _driver() -> dict[str, Any]:
    """Who we are, given, so redis-py does not look its own version up in the installed
    packages' metadata for every new connection (7 ms of blocked event loop each time)."""
    try:
        from redis.driver_info import DriverInfo  # redis-py >= 7.1
    except ImportError:
        return {"lib_version": redis.__version__}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


_DRIVER = _driver()


def _common(target: RedisTarget, timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": True,
        **_DRIVER,
    }
    if target.username is not None:
        options["username"] = target.username
    if target.password is not None:
        options["password"] = target.password
    if target.ssl:
        options["ssl"] = True
    return options


def sync_client(target: RedisTarget, timeout: float) -> Any:
    """A blocking redis-py client for ``target``.

    No retries inside redis-py (its default since 6.0 is three, with backoff): a retry
    would multiply the time a call can lose to a dead Redis, and the local fallback
    answers at once anyway. A cluster client keeps one, for MOVED after a failover.
    """
    options = _common(target, timeout)
    if target.kind == "single":
        return redis.Redis.from_url(target.url, retry=Retry(NoBackoff(), 0), **options)
    if target.kind == "sentinel":
        sentinels = _Sentinel(
            list(target.nodes),
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        )
        return sentinels.master_for(
            target.service, db=target.db, retry=Retry(NoBackoff(), 0), **options
        )
    return redis.cluster.RedisCluster(
        startup_nodes=[_ClusterNode(h, p) for h, p in target.nodes],
        retry=Retry(NoBackoff(), 1),
        **options,
    )


def async_client(target: RedisTarget, timeout: float) -> Any:
    """The ``redis.asyncio`` twin of :func:`sync_client` (bound to the running loop)."""
    options = _common(target, timeout)
    no_retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    if target.kind == "single":
        return redis.asyncio.Redis.from_url(target.url, retry=no_retry, **options)
    if target.kind == "sentinel":
        sentinels = _AsyncSentinel(
            list(target.nodes),
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        )
        return sentinels.master_for(target.service, db=target.db, retry=no_retry, **options)
    return redis.asyncio.cluster.RedisCluster(
        startup_nodes=[_AsyncClusterNode(h, p) for h, p in target.nodes],
        retry=redis.asyncio.retry.Retry(NoBackoff(), 1),
        **options,
    )


class Connection:
    """The clients and the up/down mode for one URL and timeout, shared process-wide.

    Args:
        url: the state URL (any form :func:`parse_url` reads).
        timeout: seconds to wait for Redis (connect and each reply).
        script: Lua source to register on every client (``None``: none).
    """

    def __init__(self, url: str, timeout: float, script: str | None = None) -> None:
        self.url = redact_url(url)
        self.timeout = timeout
        self._target = parse_url(url)
        self._source = script
        self.client = sync_client(self._target, timeout)
        self.script: Any = None if script is None else self.client.register_script(script)
        self.healthy = True
        self._probe_at = 0.0
        self._lock = threading.Lock()
        # One asyncio client per event loop: its sockets cannot serve another loop.
        self._aio: dict[int, tuple[weakref.ref[asyncio.AbstractEventLoop], Any, Any]] = {}

    def aio(self) -> tuple[Any, Any]:
        """The running loop's asyncio client and its registered script."""
        loop = asyncio.get_running_loop()
        found = self._aio.get(id(loop))
        if found is not None and found[0]() is loop:
            return found[1], found[2]
        with self._lock:
            for key, (ref, _, _) in list(self._aio.items()):
                gone = ref()
                if gone is None or gone.is_closed():
                    del self._aio[key]
            client = async_client(self._target, self.timeout)
            script = None if self._source is None else client.register_script(self._source)
            self._aio[id(loop)] = (weakref.ref(loop), client, script)
        return client, script

    @property
    def mode(self) -> Mode:
        """``"redis"`` while Redis answers, ``"degraded"`` after it failed."""
        return "redis" if self.healthy else "degraded"

    def claim_probe(self) -> bool:
        """Whether this caller is the one to try Redis again now (one per interval)."""
        now = time.monotonic()
        with self._lock:
            if now < self._probe_at:
                return False
            self._probe_at = now + PROBE_EVERY
            return True

    def failed(self, exc: BaseException) -> None:
        """Redis did not answer: fall back, and say so if this changes the mode."""
        with self._lock:
            self._probe_at = time.monotonic() + PROBE_EVERY
            if not self.healthy:
                return
            self.healthy = False
        _log.warning(
            "failover: breaker state in Redis at %s unreachable (%s: %s); "
            "using process-local breakers, retrying every %g s",
            self.url,
            type(exc).__name__,
            exc,
            PROBE_EVERY,
            extra={
                "failover_shared": "degraded",
                "failover_shared_was": "redis",
                "failover_redis": self.url,
                "failover_error": type(exc).__name__,
            },
        )

    def recovered(self) -> None:
        """A probe got through: shared state again, said once."""
        with self._lock:
            if self.healthy:
                return
            self.healthy = True
        _log.warning(
            "failover: breaker state in Redis at %s reachable again; shared",
            self.url,
            extra={
                "failover_shared": "redis",
                "failover_shared_was": "degraded",
                "failover_redis": self.url,
            },
        )


_connections: weakref.WeakValueDictionary[tuple[str, float, str | None], Connection] = (
    weakref.WeakValueDictionary()
)
_connections_lock = threading.Lock()


def connection(url: str, timeout: float, script: str | None = None) -> Connection:
    """The process's :class:`Connection` for ``url`` and ``timeout`` (made on first use)."""
    key = (url, timeout, script)
    with _connections_lock:
        conn = _connections.get(key)
        if conn is None:
            conn = _connections[key] = Connection(url, timeout, script)
        return conn


def forget_connections() -> None:
    """Drop every shared connection (tests: a new server may reuse an old port)."""
    with _connections_lock:
        _connections.clear()
