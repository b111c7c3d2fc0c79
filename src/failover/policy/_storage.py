"""Policy blocks about storage: a route's answer cache, and where caches and breaker state live.

Backends are written as one string (``memory``, ``sqlite:///answers.db``,
``redis://host:6379/0``) and parsed here once, so the cache and state modules receive a
``kind`` to dispatch on and never parse URLs themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    FieldSerializationInfo,
    WithJsonSchema,
    field_serializer,
)

from ._fields import LongDuration, describe, integer, one_of, redact_url, reveal_requested
from ._sections import Frozen

__all__ = ["CacheBackendPolicy", "RouteCachePolicy", "StateBackendPolicy", "parse_backend"]

BackendKind = Literal["memory", "sqlite", "redis"]
#: Every scheme of a Redis (or Valkey) server: one server over TCP or TLS, Sentinel,
#: Cluster, or a local unix socket. The URL is kept as written; the connecting code
#: parses it.
REDIS_SCHEMES = ("redis", "rediss", "redis+sentinel", "redis+cluster", "unix")
_REDIS_FORMS = "a redis://, rediss://, redis+sentinel://, redis+cluster:// or unix:// URL"
_CACHE_HINT = f"use memory, sqlite:///path.db or {_REDIS_FORMS}"
_STATE_HINT = f"use memory or {_REDIS_FORMS}"


def parse_backend(value: str, *, sqlite: bool) -> tuple[BackendKind, str | None]:
    """Split a backend string into its kind and its path (sqlite) or URL (redis).

    Args:
        value: ``memory``, ``sqlite:///path.db`` (when ``sqlite``), or a Redis URL:
            ``redis://``/``rediss://host:port/db``,
            ``redis+sentinel://host:port[,host:port...]/service_name[/db]``,
            ``redis+cluster://host:port[,host:port...]`` or ``unix:///path.sock``.
        sqlite: whether a sqlite file is acceptable (caches yes, shared state no).

    Returns:
        ``("memory", None)``, ``("sqlite", path)`` or ``("redis", url)`` (the URL as
        written, whichever Redis form it is).

    Raises:
        ValueError: an unknown scheme, an empty sqlite path, a bad host, port or database.
            Any password in the URL is masked in the message.
    """
    hint = _CACHE_HINT if sqlite else _STATE_HINT
    if value == "memory":
        return "memory", None
    scheme = value.partition("://")[0] if "://" in value else ""
    if scheme == "sqlite" and sqlite:
        path = value[len("sqlite:///") :] if value.startswith("sqlite:///") else ""
        if not path:
            raise ValueError(f"a sqlite backend needs a file: sqlite:///path.db ({hint})")
        return "sqlite", path
    if scheme in REDIS_SCHEMES:
        problem = _redis_problem(scheme, value)
        if problem:
            raise ValueError(f"{describe(redact_url(value))}: {problem}")
        return "redis", value
    what = f"unknown backend scheme {scheme!r}" if scheme else "unknown backend"
    raise ValueError(f"{what} in {describe(redact_url(value))} ({hint})")


def _redis_problem(scheme: str, url: str) -> str | None:
    """What is wrong with a Redis URL of the given scheme, or ``None``."""
    rest = url.partition("://")[2]
    head = rest.split("?", 1)[0].split("#", 1)[0]
    hosts, _, path = head[head.rfind("@") + 1 :].partition("/")
    if scheme == "unix":
        return None if not hosts and path.strip("/") else "write unix:///path/to/redis.sock"
    listed = hosts.split(",") if hosts else []
    if not listed or any(not host for host in listed):
        return f"has no host ({_example(scheme)})"
    if len(listed) > 1 and scheme in ("redis", "rediss"):
        return "names several hosts; use redis+sentinel:// or redis+cluster:// for those"
    for host in listed:
        problem = _host_problem(host)
        if problem:
            return problem
    parts = path.split("/") if path else []
    if scheme == "redis+sentinel":
        if not parts or not parts[0]:
            return f"names no service (the master's name): {_example(scheme)}"
        parts = parts[1:]
    database = "/".join(parts)
    if scheme == "redis+cluster" and database not in ("", "0"):
        return "a Redis Cluster has only database 0"
    if database and not database.isdigit():
        return f"the database must be a non-negative integer, got {database!r}"
    return None


def _host_problem(host: str) -> str | None:
    try:
        parts = urlsplit(f"//{host}")
        port = parts.port
    except ValueError:
        return f"bad host or port {host!r}: the port must be 1 to 65535"
    if not parts.hostname:
        return f"bad host {host!r}"
    if port is not None and port < 1:
        return "the port must be 1 to 65535"
    return None


def _example(scheme: str) -> str:
    if scheme == "redis+sentinel":
        return "redis+sentinel://host:26379[,host:26379...]/mymaster[/db]"
    if scheme == "redis+cluster":
        return "redis+cluster://host:7000[,host:7001...]"
    return f"{scheme}://host:port/db"


_REDIS_PATTERN = r"(rediss?|redis\+sentinel|redis\+cluster|unix)://.+"
_CACHE_PATTERN = rf"^(memory|sqlite:///.+|{_REDIS_PATTERN})$"
_STATE_PATTERN = rf"^(memory|{_REDIS_PATTERN})$"


def _backend_check(sqlite: bool) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a backend string, got {describe(value)}")
        parse_backend(value, sqlite=sqlite)
        return value

    return check


class RouteCachePolicy(Frozen):
    """A route's answer cache: a fallback when every endpoint fails, optionally a fast path."""

    ttl: LongDuration = Field(
        default=3600.0,
        description="An answer is fresh for this long after it was written. Default 1h.",
    )
    stale_if_error: LongDuration = Field(
        default=86400.0,
        description="An answer may stand in for failed endpoints this long after it was "
        "written. Default 24h.",
    )
    serve: Annotated[
        Literal["fallback", "fresh"],
        BeforeValidator(one_of("serve mode", ("fallback", "fresh"))),
        WithJsonSchema({"enum": ["fallback", "fresh"]}),
    ] = Field(
        default="fallback",
        description="fallback: only when every endpoint failed; fresh: also answer from the "
        "cache without a call while within ttl. Default fallback.",
    )


class CacheBackendPolicy(Frozen):
    """Where cached answers are kept."""

    backend: Annotated[
        str,
        BeforeValidator(_backend_check(sqlite=True)),
        WithJsonSchema({"type": "string", "pattern": _CACHE_PATTERN}),
    ] = Field(
        default="memory",
        description="memory (default, per process), sqlite:///path.db, or a Redis URL: "
        "redis://host:port/db, rediss://, redis+sentinel://, redis+cluster://, unix://.",
    )
    max_entries: Annotated[
        int, BeforeValidator(integer(1)), WithJsonSchema({"type": "integer", "minimum": 1})
    ] = Field(default=10000, description="Most answers kept; the oldest go first. Default 10000.")

    @field_serializer("backend")
    def _mask(self, value: str, info: FieldSerializationInfo) -> str:
        # Dumps (model_dump, to_dict, JSON) mask the password unless asked to reveal it.
        return value if reveal_requested(info) else redact_url(value)

    @property
    def kind(self) -> BackendKind:
        """``"memory"``, ``"sqlite"`` or ``"redis"``."""
        return parse_backend(self.backend, sqlite=True)[0]

    @property
    def path(self) -> str | None:
        """The database file of a sqlite backend, else ``None``."""
        kind, where = parse_backend(self.backend, sqlite=True)
        return where if kind == "sqlite" else None

    @property
    def url(self) -> str | None:
        """The URL of a redis backend, else ``None``."""
        kind, where = parse_backend(self.backend, sqlite=True)
        return where if kind == "redis" else None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "backend", redact_url(self.backend)
        yield "max_entries", self.max_entries


class StateBackendPolicy(Frozen):
    """Where breaker state lives: per process, or shared through redis."""

    backend: Annotated[
        str,
        BeforeValidator(_backend_check(sqlite=False)),
        WithJsonSchema({"type": "string", "pattern": _STATE_PATTERN}),
    ] = Field(
        default="memory",
        description="memory (default, per process), or a Redis URL for shared breakers: "
        "redis://host:port/db, rediss://, redis+sentinel://, redis+cluster://, unix://.",
    )

    @field_serializer("backend")
    def _mask(self, value: str, info: FieldSerializationInfo) -> str:
        # Dumps (model_dump, to_dict, JSON) mask the password unless asked to reveal it.
        return value if reveal_requested(info) else redact_url(value)

    @property
    def kind(self) -> Literal["memory", "redis"]:
        """``"memory"`` or ``"redis"``."""
        return "redis" if parse_backend(self.backend, sqlite=False)[0] == "redis" else "memory"

    @property
    def url(self) -> str | None:
        """The URL of a redis backend, else ``None``."""
        return parse_backend(self.backend, sqlite=False)[1]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "backend", redact_url(self.backend)
