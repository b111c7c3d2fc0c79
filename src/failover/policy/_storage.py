"""Policy blocks about storage: a route's answer cache, and where caches and breaker state live.

Backends are written as one string (``memory``, ``sqlite:///answers.db``,
``redis://host:6379/0``) and parsed here once, so the cache and state modules receive a
``kind`` to dispatch on and never parse URLs themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, WithJsonSchema

from ._fields import Duration, describe, integer, one_of, redact_url
from ._sections import Frozen

__all__ = ["CacheBackendPolicy", "RouteCachePolicy", "StateBackendPolicy", "parse_backend"]

BackendKind = Literal["memory", "sqlite", "redis"]
_CACHE_HINT = "use memory, sqlite:///path.db or redis://host:port/db"
_STATE_HINT = "use memory or redis://host:port/db"


def parse_backend(value: str, *, sqlite: bool) -> tuple[BackendKind, str | None]:
    """Split a backend string into its kind and its path (sqlite) or URL (redis).

    Args:
        value: ``memory``, ``sqlite:///path.db`` (when ``sqlite``), ``redis://host:port/db``
            or ``rediss://host:port/db``.
        sqlite: whether a sqlite file is acceptable (caches yes, shared state no).

    Returns:
        ``("memory", None)``, ``("sqlite", path)`` or ``("redis", url)``.

    Raises:
        ValueError: an unknown scheme, an empty sqlite path, a bad redis port or database.
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
    if scheme in ("redis", "rediss"):
        _check_redis(value)
        return "redis", value
    what = f"unknown backend scheme {scheme!r}" if scheme else "unknown backend"
    raise ValueError(f"{what} in {describe(redact_url(value))} ({hint})")


def _check_redis(url: str) -> None:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{describe(redact_url(url))} has no host (redis://host:port/db)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and port < 1:
        raise ValueError(f"{describe(redact_url(url))}: the port must be 1 to 65535")
    database = parts.path.lstrip("/")
    if database and not database.isdigit():
        raise ValueError(
            f"{describe(redact_url(url))}: the database must be a non-negative integer, "
            f"got {database!r}"
        )


def _backend_check(sqlite: bool) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a backend string, got {describe(value)}")
        parse_backend(value, sqlite=sqlite)
        return value

    return check


class RouteCachePolicy(Frozen):
    """A route's answer cache: a fallback when every endpoint fails, optionally a fast path."""

    ttl: Duration = Field(
        default=3600.0,
        description="An answer is fresh for this long after it was written. Default 1h.",
    )
    stale_if_error: Duration = Field(
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
        WithJsonSchema({"type": "string", "pattern": r"^(memory|sqlite:///.+|rediss?://.+)$"}),
    ] = Field(
        default="memory",
        description="memory (default, per process), sqlite:///path.db or redis://host:port/db.",
    )
    max_entries: Annotated[
        int, BeforeValidator(integer(1)), WithJsonSchema({"type": "integer", "minimum": 1})
    ] = Field(default=10000, description="Most answers kept; the oldest go first. Default 10000.")

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
        WithJsonSchema({"type": "string", "pattern": r"^(memory|rediss?://.+)$"}),
    ] = Field(
        default="memory",
        description="memory (default, per process) or redis://host:port/db (shared breakers).",
    )

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
