"""Closing an async HTTP client whose event loop is gone, quietly.

An ``httpx2.AsyncClient``'s pooled connections belong to the event loop that opened
them. After ``asyncio.run()`` returns, that loop is closed, and closing the client the
normal way (from another loop, or from the client's own ``__del__``) fails inside
asyncio with ``RuntimeError: Event loop is closed`` ("Task exception was never
retrieved") and leaves ``ResourceWarning: unclosed transport``. Here each connection's
socket transport is aborted directly (finishing, where its loop is closed, what
``abort()`` would have scheduled on it), and the client is marked closed so it never
tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["close_async_quietly"]

# Attributes leading from a pooled connection down to its socket transport, through
# httpcore2, our deadline wrapper, anyio and asyncio's SSL layer.
_LINKS = ("_connection", "_network_stream", "_inner", "_stream", "_ssl_protocol", "_transport")


def close_async_quietly(http_client: Any) -> None:
    """Drop every pooled connection of ``http_client`` and mark it closed; never raises."""
    with contextlib.suppress(Exception):
        for pool in _pools(http_client):
            connections = list(getattr(pool, "_connections", ()))
            with contextlib.suppress(Exception):
                pool._connections = []
            for connection in connections:
                transport = _socket_transport(connection)
                if transport is not None:
                    _abort(transport)
        from httpx2._client import ClientState

        http_client._state = ClientState.CLOSED


def _pools(http_client: Any) -> list[Any]:
    transports = [getattr(http_client, "_transport", None)]
    transports += list(getattr(http_client, "_mounts", {}).values())
    return [t._pool for t in transports if t is not None and hasattr(t, "_pool")]


def _socket_transport(connection: Any) -> Any:
    """The innermost asyncio transport under a pooled connection (the one owning the socket)."""
    found = None
    node, seen = connection, set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, asyncio.BaseTransport) and hasattr(node, "_call_connection_lost"):
            found = node
        node = next((getattr(node, name) for name in _LINKS if hasattr(node, name)), None)
    return found


def _abort(transport: Any) -> None:
    try:
        transport.abort()
    except RuntimeError:
        # Its loop is closed: abort() got as far as scheduling the final step on it.
        with contextlib.suppress(Exception):
            transport._call_connection_lost(None)
