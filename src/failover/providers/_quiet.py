"""Silencing LiteLLM's banners for the router's own calls only.

On every mapped exception LiteLLM prints "Give Feedback / Get Help ..." and a debug hint
to stdout unless ``litellm.suppress_debug_info`` is set, a process-wide switch the
application may own (and may want on for its own LiteLLM calls). So the switch is left
alone: the two LiteLLM modules that print get a module-level ``print`` that stays silent
while a context variable, set around the router's own LiteLLM calls, says so, and
otherwise forwards to the real ``print``. The application's own LiteLLM calls print as
before, and its settings are never changed.
"""

from __future__ import annotations

import builtins
import importlib
import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, TypeVar

__all__ = ["install", "quiet", "quiet_token", "reset_quiet"]

_QUIET: ContextVar[bool] = ContextVar("failover_litellm_quiet", default=False)
_PRINTING_MODULES = (
    "litellm.litellm_core_utils.exception_mapping_utils",
    "litellm.litellm_core_utils.get_llm_provider_logic",
)
_LOCK = threading.Lock()
_installed = False

T = TypeVar("T")


def install() -> None:
    """Give LiteLLM's printing modules the context-aware ``print`` (once; idempotent)."""
    global _installed  # noqa: PLW0603 - once per process
    with _LOCK:
        if _installed:
            return
        for name in _PRINTING_MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:  # a LiteLLM version without it: nothing to silence there
                continue
            forward = module.__dict__.get("print", builtins.print)
            module.print = _silenced(forward)  # type: ignore[attr-defined]
        _installed = True


def _silenced(forward: Callable[..., Any]) -> Callable[..., None]:
    def print_unless_quiet(*args: Any, **kwargs: Any) -> None:
        if not _QUIET.get():
            forward(*args, **kwargs)

    return print_unless_quiet


def quiet(fn: Callable[[], T]) -> T:
    """Call ``fn`` with LiteLLM's banners silenced (in this context only)."""
    token = _QUIET.set(True)
    try:
        return fn()
    finally:
        _QUIET.reset(token)


def quiet_token() -> Token[bool]:
    """Silence LiteLLM's banners in this context until :func:`reset_quiet`."""
    return _QUIET.set(True)


def reset_quiet(token: Token[bool]) -> None:
    """Undo :func:`quiet_token`."""
    _QUIET.reset(token)
