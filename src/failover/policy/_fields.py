"""Field types and validators shared by the policy models.

Every check raises ``ValueError`` with a finished, plain-words message, so the pydantic
error only has to be placed (file, line, key path), not reworded. Values are echoed
through :func:`describe`, which shortens them and never dumps a whole mapping.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, FieldSerializationInfo, WithJsonSchema

from ._durations import DAY, DURATION_PATTERN, YEAR, parse_duration

__all__ = [
    "DURATION_SCHEMA",
    "Duration",
    "LongDuration",
    "NullableDuration",
    "OptionalDuration",
    "describe",
    "did_you_mean",
    "http_url",
    "integer",
    "kind",
    "not_null",
    "number",
    "one_of",
    "redact_url",
    "reveal_requested",
]

_INTEGER = re.compile(r"^-?[0-9]+$")


def _duration_schema(maximum: float) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "pattern": DURATION_PATTERN},
            {"type": "number", "exclusiveMinimum": 0, "maximum": maximum},
        ]
    }


#: A duration of at most one day (timeouts, deadlines, backoff, breaker spans).
DURATION_SCHEMA: dict[str, Any] = _duration_schema(DAY)
_LONG_DURATION_SCHEMA = _duration_schema(YEAR)
# The password in `user:password@`, and a password or token given as a query parameter.
_QUERY_SECRET = re.compile(r"([?&](?:password|pass|pwd|token|auth)=)[^&#]*", re.IGNORECASE)
_PURE_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def describe(value: object) -> str:
    """Show a value inside a message: scalars as written, containers by kind only."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (str, int, float)):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__}"


def kind(value: object) -> str:
    """Name a value's type without showing it (for secrets)."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return describe(value)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def redact_url(url: str, *, keep_references: bool = False) -> str:
    """Hide the password (or token) of a URL: in ``scheme://user:password@host...`` and in a
    ``?password=`` query parameter. Several hosts (``redis+sentinel://:pw@h1:1,h2:2/svc``)
    are handled too.

    Args:
        url: the URL, as written or expanded.
        keep_references: keep a password written as a plain ``${VAR}`` reference (it is
            not the secret itself), for :meth:`failover.Policy.to_dict`.
    """
    url = _QUERY_SECRET.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The userinfo ends at the last "@" before the query; a "/" inside an unencoded
    # password must not stop the search (masking too much is the safe way to be wrong).
    head = rest.split("?", 1)[0].split("#", 1)[0]
    at = head.rfind("@")
    if at < 0:
        return url
    userinfo, host = rest[:at], rest[at + 1 :]
    user, colon, password = userinfo.partition(":")
    if keep_references and _PURE_REFERENCE.match(password if colon else userinfo):
        return url
    return f"{scheme}://{user}:***@{host}" if colon else f"{scheme}://***@{host}"


def reveal_requested(info: FieldSerializationInfo) -> bool:
    """Whether a dump asked for secrets in clear: ``model_dump(context={"reveal": True})``."""
    context = info.context
    return isinstance(context, Mapping) and context.get("reveal") is True


def not_null(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a check so an explicit ``null`` is an error (the key should be left out instead)."""

    def checked(value: Any) -> Any:
        if value is None:
            raise ValueError("null is not allowed here (leave the key out to inherit)")
        return check(value)

    return checked


def integer(minimum: int) -> Callable[[Any], int]:
    """A check for an integer ``>= minimum``; digit strings (from ``${VAR}``) are accepted."""

    def check(value: Any) -> int:
        number: Any = value
        if isinstance(value, str) and _INTEGER.match(value.strip()):
            number = int(value.strip())
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"expected an integer, got {describe(value)}")
        if number < minimum:
            raise ValueError(f"must be at least {minimum}, got {describe(value)}")
        return number

    return check


def number(
    *, minimum: float, inclusive: bool = True, maximum: float | None = None
) -> Callable[[Any], float]:
    """A check for a finite number in a range; numeric strings (from ``${VAR}``) are accepted."""
    low = "[" if inclusive else "("
    shown = f"in {low}{minimum:g}, {maximum:g}]" if maximum is not None else ""

    def check(value: Any) -> float:
        result = _to_float(value)
        too_low = result < minimum if inclusive else result <= minimum
        if maximum is not None and (too_low or result > maximum):
            raise ValueError(f"must be a number {shown}, got {describe(value)}")
        if too_low:
            relation = "at least" if inclusive else "greater than"
            raise ValueError(f"must be {relation} {minimum:g}, got {describe(value)}")
        return result

    return check


def _to_float(value: Any) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: reported just below
            value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {describe(value)}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {describe(value)}")
    return result


def one_of(what: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    """A check for one of a fixed set of words, with a did-you-mean on a near miss."""
    valid = ", ".join(choices)

    def check(value: Any) -> str:
        if isinstance(value, str) and value in choices:
            return value
        hint = did_you_mean(value, choices)
        if not isinstance(value, str):
            raise ValueError(f"expected one of: {valid}, got {describe(value)}")
        raise ValueError(f"unknown {what} {describe(value)}{hint}; valid: {valid}")

    return check


def http_url(value: Any) -> str:
    """A check for an ``http://`` or ``https://`` URL with a host."""
    if not isinstance(value, str):
        raise ValueError(f"expected a URL string, got {describe(value)}")
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = urlsplit(""), False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"{describe(redact_url(value))} is not an http(s) URL with a host")
    return value


def _duration(value: Any) -> float:
    return parse_duration(value, DAY)


def _long_duration(value: Any) -> float:
    return parse_duration(value, YEAR)


def _duration_or_none(value: Any) -> float | None:
    return None if value is None else _duration(value)


#: Seconds, at most a day; written as ``250ms``/``3s``/``1.5m``/``1h`` or a bare number.
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(DURATION_SCHEMA)]

#: Seconds, at most a year (cache lifetimes).
LongDuration = Annotated[
    float, BeforeValidator(_long_duration), WithJsonSchema(_LONG_DURATION_SCHEMA)
]

#: An override of a duration: absent means inherit, ``null`` is refused.
OptionalDuration = Annotated[
    float | None, BeforeValidator(not_null(_duration)), WithJsonSchema(DURATION_SCHEMA)
]

#: A duration that may be switched off with ``null``.
NullableDuration = Annotated[
    float | None,
    BeforeValidator(_duration_or_none),
    WithJsonSchema({"anyOf": [DURATION_SCHEMA, {"type": "null"}]}),
]
