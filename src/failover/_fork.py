"""Fork safety: a forked child never uses the connections its parent opened.

A Router made before ``os.fork()`` (gunicorn ``--preload``, multiprocessing's fork start
method) would otherwise hand the child the parent's pooled sockets: both processes then
read from the same connection and receive each other's answers. Every provider adapter
registers here; in the child, right after the fork, each one forgets its clients
(without closing them: closing would shut the parent's connections down) and resets its
locks, so the child's first call builds fresh clients. Breaker stores, retry budgets and
the fallback cache register too: a lock another thread held at the fork would otherwise
stay held in the child for ever. (redis-py's pools notice a new PID by themselves.)
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["ForkAware", "abandon", "after_fork_in_child", "register", "register_hook"]


class ForkAware(Protocol):
    """Something holding connections or locks that a forked child must not reuse."""

    def _after_fork(self) -> None:
        """Forget clients and reset locks (runs in the child, single-threaded)."""


_LIVE: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_HOOKS: list[Callable[[], None]] = []
_LOCK = threading.Lock()
_INSTALLED = False


def register(obj: ForkAware) -> None:
    """Have ``obj._after_fork()`` run in every child forked from now on."""
    global _INSTALLED  # noqa: PLW0603 - one at-fork hook per process
    with _LOCK:
        _LIVE.add(obj)
        if not _INSTALLED and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=after_fork_in_child)
            _INSTALLED = True


def register_hook(hook: Callable[[], None]) -> None:
    """Run ``hook()`` in every forked child (module-level state such as a thread pool)."""
    global _INSTALLED  # noqa: PLW0603
    with _LOCK:
        if hook not in _HOOKS:
            _HOOKS.append(hook)
        if not _INSTALLED and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=after_fork_in_child)
            _INSTALLED = True


def after_fork_in_child() -> None:
    """Reset every registered provider and hook (the at-fork callback; callable in tests)."""
    global _LOCK  # noqa: PLW0603 - the parent may have held it while forking
    _LOCK = threading.Lock()
    for hook in list(_HOOKS):
        hook()
    for obj in list(_LIVE):
        obj._after_fork()


_ABANDONED: list[object] = []


def abandon(*objects: object) -> None:
    """Keep the parent's clients alive, unused, in the child.

    Dropped, they would be garbage-collected and close themselves, and an async
    client's close would be scheduled on whatever loop runs next; kept, their sockets
    simply stay open in the child until it exits (the parent still owns them).
    """
    _ABANDONED.extend(obj for obj in objects if obj is not None)
