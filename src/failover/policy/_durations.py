"""Durations as the policy writes them (``250ms``, ``3s``, ``1.5m``, ``1h``) and as float seconds.

A bare number is seconds too, so ``read: 60`` and ``read: 60s`` mean the same. Parsing is
strict on purpose: ``3x`` or ``3 sec`` is far more likely a typo than an intent, and a
silently wrong timeout only shows up during an outage.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "DAY",
    "DURATION_HINT",
    "DURATION_PATTERN",
    "YEAR",
    "format_duration",
    "parse_duration",
]

#: The string form of a duration, as a regular expression (also used in the JSON Schema).
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)?$"

#: Appended to every "not a duration" message so the fix is in the message itself.
DURATION_HINT = "use 250ms, 3s, 1.5m, 1h"

#: The longest timeout, deadline, backoff or breaker span a policy may set: anything
#: longer is a typo (``10000000000000h``), and would overflow the clocks it is added to.
DAY = 86400.0
#: The longest cache lifetime (``ttl``, ``stale_if_error``).
YEAR = 365 * DAY

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
_RE = re.compile(DURATION_PATTERN)


def parse_duration(value: object, maximum: float | None = None) -> float:
    """Turn a policy duration into seconds.

    Args:
        value: a string such as ``"250ms"``, ``"3s"``, ``"1.5m"`` or ``"1h"``, or a bare
            int or float number of seconds.
        maximum: the longest duration accepted, in seconds (``None``: no bound).

    Returns:
        The duration in seconds, always a positive, finite float.

    Raises:
        ValueError: the value is not a duration, or it is zero, negative or not finite.
            Also when it exceeds ``maximum``. The message is meant for people and names
            the value.
    """
    if isinstance(value, bool):
        # YAML turns `yes`/`on` into True, and True is an int to Python.
        raise ValueError(f"expected a duration, got {str(value).lower()} ({DURATION_HINT})")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond float range
            seconds = math.inf
        shown = _short(value)
    elif isinstance(value, str):
        match = _RE.match(value)
        if match is None and value.startswith("-") and _RE.match(value[1:]):
            raise ValueError(f"must be a positive duration, got {_short(value)}")
        if match is None:
            raise ValueError(f"{_short(value)} is not a duration ({DURATION_HINT})")
        number = value[: match.start(2)] if match.group(2) else value
        seconds = float(number) * _UNITS[match.group(2) or ""]
        shown = _short(value)
    else:
        raise ValueError(f"expected a duration, got {_kind(value)} ({DURATION_HINT})")
    if not math.isfinite(seconds):
        raise ValueError(f"{shown} is not a finite duration")
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {shown}")
    if maximum is not None and seconds > maximum:
        raise ValueError(f"must be at most {_longest(maximum)}, got {shown}")
    return seconds


def _longest(seconds: float) -> str:
    if seconds == YEAR:
        return "1 year (8760h)"
    if seconds == DAY:
        return "1 day (24h)"
    return format_duration(seconds)


def format_duration(seconds: float) -> str:
    """Show seconds the way a policy would write them: ``0.25`` -> ``"250ms"``.

    The result parses back to a value within rounding of the input; it is meant for
    people (the CLI summary), not for exact round trips (use the float for that).

    Args:
        seconds: a duration in seconds.

    Returns:
        The shortest readable unit form.
    """
    if seconds < 1:
        return f"{_trim(seconds * 1000)}ms"
    # A bigger unit only when it divides evenly: "90s" reads better than "1.5m".
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds % size == 0:
            return f"{_trim(seconds / size)}{unit}"
    return f"{_trim(seconds)}s"


def _trim(number: float) -> str:
    text = f"{number:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__
