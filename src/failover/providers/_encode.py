"""Naming what in a request cannot be sent, when the SDK failed to encode it.

A request holding ``float("nan")`` or an object JSON cannot carry fails inside the SDK,
before any byte is sent, with a bare ``ValueError``/``TypeError``. That is the caller's
bug, not the endpoint's: the adapters classify it as ``invalid_request`` (no retry, no
failover, no breaker count) with a detail naming the parameter, found here. Runs on the
failure path only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["encoding_detail", "unencodable"]

_JSON_SCALARS = (str, int, bool, type(None))
# Keywords the SDKs take that never go into the JSON body.
_NOT_BODY = frozenset({"extra_headers", "extra_query", "timeout"})


def unencodable(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str | None:
    """Where the request holds a value JSON cannot carry, e.g. ``"temperature: nan"``."""
    for key, value in params.items():
        if key in _NOT_BODY:
            continue
        found = _find(value, str(key), 0)
        if found:
            return found
    for index, message in enumerate(messages):
        found = _find(message, f"messages[{index}]", 0)
        if found:
            return found
    return None


def _find(value: Any, path: str, depth: int) -> str | None:
    if depth > 20 or isinstance(value, _JSON_SCALARS):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{path}: {value!r} is not a finite number"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"{path}: key of type {type(key).__name__} is not JSON"
            found = _find(item, f"{path}.{key}", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
        return None
    return f"{path}: a {type(value).__name__} cannot be sent as JSON"


_ENCODING_MARKS = ("JSON", "serializ", "Out of range float")


def encoding_detail(exc: BaseException, call: Any) -> str | None:
    """The detail for a request that failed to encode, or ``None`` if ``exc`` is not that.

    ``call`` is the :class:`~failover.providers.ProviderRequest` (or ``None``). An
    exception counts as an encoding failure when the request holds a value JSON cannot
    carry, or when it is a ``ValueError``/``TypeError`` saying so.
    """
    if not isinstance(exc, (ValueError, TypeError)):
        return None
    where = unencodable(call.messages, call.params) if call is not None else None
    if where is None and not any(mark in str(exc) for mark in _ENCODING_MARKS):
        return None
    what = where or f"{type(exc).__name__}: {str(exc)[:120]}"
    return f"the request cannot be encoded as JSON ({what}); nothing was sent"
