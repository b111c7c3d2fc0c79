"""Bounding every socket operation by the call's deadline.

Per-read socket timeouts cannot bound a call against a server that trickles a byte at
a time: each read succeeds within its timeout and the response never ends. So the
router puts the call's deadline in a context variable, and the provider's HTTP pool gets
a network backend whose reads, writes and connects each wait at most until that deadline.
Past it, the next socket operation times out at once. Connections are pooled and reused
by other calls; the deadline is read at each operation, so it is always the current
call's own.

The hook sits on httpcore2's public ``NetworkBackend`` interface; wiring it into a client
needs the pool's private attribute, checked at set-up (see :func:`install`).
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import Any

__all__ = [
    "DEADLINE",
    "install",
    "remaining",
    "reset_deadline",
    "set_deadline",
    "tighten",
]

# The current deadline (time.monotonic), None for none: set around each request by the
# call drivers (set_deadline, reset_deadline).
DEADLINE: ContextVar[float | None] = ContextVar("failover_deadline", default=None)


def set_deadline(seconds: float) -> Token[float | None]:
    """Bound socket operations in this context to ``seconds`` from now (real time);
    undo with :func:`reset_deadline`."""
    return DEADLINE.set(time.monotonic() + seconds)


def reset_deadline(token: Token[float | None]) -> None:
    DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline, ``None`` when there is none."""
    deadline = DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def _bound(
    timeout: float | None,
    _get: Any = DEADLINE.get,
    _now: Any = time.monotonic,
) -> float | None:
    # Runs on every socket operation: remaining() inlined, no max()/min() calls, and
    # the two lookups bound as defaults.
    deadline = _get()
    if deadline is None:
        return timeout
    left = deadline - _now()
    if left < 0.001:  # noqa: PLR1730 - max() is a call; zero would make the socket non-blocking
        left = 0.001
    return left if timeout is None or timeout > left else timeout


def _sync_classes() -> tuple[type[Any], type[Any]]:
    import httpcore2

    class DeadlineStream(httpcore2.NetworkStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            data: bytes = self._inner.read(max_bytes, _bound(timeout))
            return data

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, _bound(timeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> Any:
            return DeadlineStream(
                self._inner.start_tls(ssl_context, server_hostname, _bound(timeout))
            )

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class DeadlineBackend(httpcore2.NetworkBackend):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            return DeadlineStream(
                self._inner.connect_tcp(host, port, _bound(timeout), local_address, socket_options)
            )

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> Any:
            return DeadlineStream(
                self._inner.connect_unix_socket(path, _bound(timeout), socket_options)
            )

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    return DeadlineStream, DeadlineBackend


def _async_classes() -> tuple[type[Any], type[Any]]:
    import httpcore2

    class AsyncDeadlineStream(httpcore2.AsyncNetworkStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            data: bytes = await self._inner.read(max_bytes, _bound(timeout))
            return data

        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            await self._inner.write(buffer, _bound(timeout))

        async def aclose(self) -> None:
            await self._inner.aclose()

        async def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> Any:
            return AsyncDeadlineStream(
                await self._inner.start_tls(ssl_context, server_hostname, _bound(timeout))
            )

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class AsyncDeadlineBackend(httpcore2.AsyncNetworkBackend):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            return AsyncDeadlineStream(
                await self._inner.connect_tcp(
                    host, port, _bound(timeout), local_address, socket_options
                )
            )

        async def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> Any:
            return AsyncDeadlineStream(
                await self._inner.connect_unix_socket(path, _bound(timeout), socket_options)
            )

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    return AsyncDeadlineStream, AsyncDeadlineBackend


_CLASSES: dict[bool, type[Any]] = {}


def install(http_client: Any) -> bool:
    """Wrap the network backend of every connection pool behind ``http_client``.

    ``http_client`` is an ``httpx2.Client`` or ``httpx2.AsyncClient``. Returns ``False``
    (and changes nothing) when the client is not built the way this expects; the call is
    then bounded by per-operation timeouts only.
    """
    is_async = hasattr(http_client, "aclose")
    if is_async not in _CLASSES:
        _CLASSES[is_async] = (_async_classes() if is_async else _sync_classes())[1]
    backend_cls = _CLASSES[is_async]
    transports = [getattr(http_client, "_transport", None)]
    transports += list(getattr(http_client, "_mounts", {}).values())
    pools: list[Any] = [getattr(t, "_pool", None) for t in transports if t is not None]
    pools = [p for p in pools if hasattr(p, "_network_backend")]
    if not pools:
        return False
    for pool in pools:
        if not isinstance(pool._network_backend, backend_cls):
            pool._network_backend = backend_cls(pool._network_backend)
    return True


def tighten(seconds: float) -> Token[float | None]:
    """Bound socket operations to ``seconds`` from now, or the current deadline if sooner.

    The provider adapters use it to hold a stream's wait for its response headers (and
    its first event) to the read timeout while the route's deadline is longer. Undo
    with :func:`reset_deadline` before yielding to the caller.
    """
    until = time.monotonic() + seconds
    current = DEADLINE.get()
    return DEADLINE.set(until if current is None or until < current else current)
