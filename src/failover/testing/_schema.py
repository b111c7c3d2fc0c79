"""Request validation for the fake provider: the shared machinery.

The fake answers a request the real API would refuse with the 400 the real API gives, so
a translation bug shows in tests instead of in production. The checks themselves live in
:mod:`._schema_anthropic` and :mod:`._schema_openai`; this module holds the small typed
helpers they share and the public entry point :func:`request_problem`.

The checks are hand-written from the documented schemas (and the errors the real APIs are
known to return); they are stricter than a lenient fake and looser than the real APIs only
where the real rule is obscure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Invalid",
    "Path",
    "SchemaProblem",
    "check_keys",
    "check_one_of",
    "check_range",
    "check_type",
    "field",
    "request_problem",
]

Path = tuple[str | int, ...]
Kind = Literal["missing", "type", "extra", "value"]
TypeName = Literal["str", "int", "number", "bool", "dict", "list"]


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """Why a request body is invalid, as the real API would word it.

    Attributes:
        message: the error message the fake answers with; it names the wrong field.
        param: the wrong field's path (``messages.1.content.0`` on Anthropic,
            ``messages[1].content[0]`` on OpenAI), ``None`` when it is the whole body.
    """

    message: str
    param: str | None


class Invalid(Exception):
    """Raised by a check: ``kind`` of problem at ``path``; ``detail`` completes the message."""

    def __init__(self, path: Path, kind: Kind, detail: str = "") -> None:
        super().__init__(path, kind, detail)
        self.path = path
        self.kind = kind
        self.detail = detail


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
}


def check_type(value: Any, path: Path, kind: TypeName) -> Any:
    """Return ``value`` when it has type ``kind`` (a bool is never a number), else raise."""
    if isinstance(value, bool) and kind in ("int", "number"):
        raise Invalid(path, "type", kind)
    if not isinstance(value, _TYPES[kind]):
        raise Invalid(path, "type", kind)
    return value


def field(
    obj: dict[str, Any], key: str, path: Path, kind: TypeName, *, required: bool = False
) -> Any:
    """``obj[key]`` checked to be a ``kind``; ``None`` when absent (or null) and optional."""
    value = obj.get(key)
    if value is None:
        if required:
            raise Invalid((*path, key), "missing")
        return None
    return check_type(value, (*path, key), kind)


def check_keys(obj: dict[str, Any], allowed: Iterable[str], path: Path) -> None:
    """Refuse the first key of ``obj`` that is not ``allowed``."""
    known = set(allowed)
    for key in obj:
        if key not in known:
            raise Invalid((*path, key), "extra")


def check_range(
    value: Any, path: Path, low: float | None = None, high: float | None = None
) -> None:
    """Refuse a number outside ``[low, high]`` (``None`` values are not checked)."""
    if value is None:
        return
    if low is not None and value < low:
        raise Invalid(path, "value", f"Input should be greater than or equal to {low}")
    if high is not None and value > high:
        raise Invalid(path, "value", f"Input should be less than or equal to {high}")


def check_one_of(value: Any, path: Path, choices: Iterable[str]) -> None:
    """Refuse a value that is not one of ``choices`` (``None`` is not checked)."""
    options = tuple(choices)
    if value is not None and value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise Invalid(path, "value", f"Input should be one of {listed}, not {value!r}")


def request_problem(api: Literal["anthropic", "openai"], body: Any) -> SchemaProblem | None:
    """Check a request body against the API's documented schema.

    Args:
        api: ``"anthropic"`` (Messages API, ``POST /v1/messages``) or ``"openai"`` (Chat
            Completions, ``POST /v1/chat/completions``).
        body: the parsed JSON body.

    Returns:
        ``None`` for a valid body, else the problem the real API would answer 400 with.
    """
    if api == "anthropic":
        from ._schema_anthropic import anthropic_problem

        return anthropic_problem(body)
    from ._schema_openai import openai_problem

    return openai_problem(body)
