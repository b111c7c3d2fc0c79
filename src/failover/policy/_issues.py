"""Turning validation failures into ``FILE:LINE: key.path: message`` issues.

Pydantic reports where (``loc``) and what (``type``); this module finds the YAML line for
the location, writes the message in plain words, and adds the checks that need the whole
document (a route naming an endpoint that does not exist, an unknown ``default_route``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .._errors import PolicyIssue
from ._fields import describe, did_you_mean, kind
from ._observability import observability_problems
from ._spec import PolicySpec
from ._yaml import KeyPath

__all__ = ["Located", "cross_check", "line_for", "to_issues", "translate"]

#: A problem before it is placed: key path and message.
Located = tuple[KeyPath, str]

# Keys the router itself passes to the SDKs; in `params` they would fight it.
RESERVED_PARAMS = frozenset(
    {"messages", "model", "stream", "api_key", "api_base", "base_url", "timeout", "max_retries"}
)


def line_for(path: KeyPath, lines: Mapping[KeyPath, int]) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one (a missing key's parent)."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def to_issues(
    problems: Iterable[Located], source: str | None, lines: Mapping[KeyPath, int]
) -> list[PolicyIssue]:
    """Place problems on their lines and sort them by line (stable for equal lines)."""
    issues = [
        PolicyIssue(source, line_for(path, lines), ".".join(str(p) for p in path), message)
        for path, message in problems
    ]
    unique = list(dict.fromkeys(issues))
    unique.sort(key=lambda issue: (issue.line is None, issue.line or 0))
    return unique


# Pydantic error types whose message only needs the value's shape.
_TYPE_MESSAGES = {
    "model_type": "expected a mapping, got {}",
    "dict_type": "expected a mapping, got {}",
    "model_attributes_type": "expected a mapping, got {}",
    "list_type": "expected a list, got {}",
    "tuple_type": "expected a list, got {}",
    "string_type": "expected a string, got {}",
    "invalid_key": "a key must be a string, got {}",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "missing": "required, but missing",
}


def translate(error: ErrorDetails) -> Located:
    """Reword one pydantic error as ``(key path, plain message)``."""
    loc: KeyPath = tuple(error["loc"])
    kind_ = error["type"]
    if loc and loc[-1] == "[key]":  # a dict key of the wrong type (from_dict only)
        loc = loc[:-1]
        return loc, f"a name must be a string, got {describe(loc[-1] if loc else None)}"
    if loc == ("version",) and kind_ == "missing":
        return loc, "unsupported version: 'version' is missing (add version: 1 at the top)"
    if kind_ == "value_error":  # our own validators: the message is already written
        return loc, str(error.get("ctx", {}).get("error", error["msg"]))
    if kind_ == "extra_forbidden":
        return loc, _unknown_key(loc)
    template = _TYPE_MESSAGES.get(kind_)
    if template is not None:
        value = error.get("input")
        secret = bool(loc) and loc[-1] == "api_key"
        return loc, template.format(kind(value) if secret else describe(value))
    # Anything else: pydantic's own words minus its jargon; never its input (may be a key).
    message = error["msg"].replace("Input should be", "expected")
    return loc, message[:1].lower() + message[1:]


def _unknown_key(loc: KeyPath) -> str:
    model = _model_at(loc[:-1])
    valid = list(model.model_fields) if model is not None else []
    hint = did_you_mean(loc[-1], valid)
    if hint or not valid:
        return f"unknown key{hint}"
    return f"unknown key (valid keys: {', '.join(valid)})"


def _model_at(loc: KeyPath) -> type[BaseModel] | None:
    """The model validating the mapping at ``loc``, found by walking the annotations."""
    current: Any = PolicySpec
    skip_key = False
    for part in loc:
        if skip_key:  # the name in `endpoints.<name>` / `routes.<name>`
            skip_key = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
        if typing.get_origin(current) is dict:
            current, skip_key = _unwrap(typing.get_args(current)[1]), True
    is_model = isinstance(current, type) and issubclass(current, BaseModel) and not skip_key
    return current if is_model else None


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = _unwrap(options[0]) if len(options) == 1 else annotation
    return annotation


def cross_check(data: Mapping[Any, Any]) -> list[Located]:
    """The checks that span the document, run on the raw data so they report even when
    other parts fail validation: route endpoint names, duplicates, ``default_route``,
    reserved ``params`` keys."""
    problems: list[Located] = []
    endpoints = data.get("endpoints")
    known = [n for n in endpoints if isinstance(n, str)] if isinstance(endpoints, Mapping) else None
    routes = data.get("routes")
    if isinstance(routes, Mapping):
        for name, route in routes.items():
            if isinstance(route, Mapping) and isinstance(route.get("endpoints"), list):
                path: KeyPath = ("routes", name, "endpoints")
                problems.extend(_check_names(path, route["endpoints"], known))
    if isinstance(endpoints, Mapping):
        for name, endpoint in endpoints.items():
            params = endpoint.get("params") if isinstance(endpoint, Mapping) else None
            if isinstance(params, Mapping):
                problems.extend(
                    (("endpoints", name, "params", key), "is set by failover itself; not a param")
                    for key in params
                    if key in RESERVED_PARAMS
                )
    observability = data.get("observability")
    if isinstance(observability, Mapping):
        problems.extend(
            (("observability", *path), message)
            for path, message in observability_problems(observability)
        )
    default = data.get("default_route")
    if isinstance(default, str) and isinstance(routes, Mapping) and default not in routes:
        names = [n for n in routes if isinstance(n, str)]
        hint = did_you_mean(default, names) or f" (routes: {', '.join(names)})"
        problems.append((("default_route",), f"unknown route {describe(default)}{hint}"))
    return problems


def _check_names(path: KeyPath, listed: Sequence[Any], known: list[str] | None) -> list[Located]:
    problems: list[Located] = []
    first: dict[str, int] = {}
    for index, name in enumerate(listed):
        if not isinstance(name, str):
            continue  # the schema reports the wrong type
        if name in first:
            message = f"endpoint {name!r} is listed twice (first as item {first[name] + 1})"
            problems.append(((*path, index), message))
            continue
        first[name] = index
        if known is not None and name not in known:
            hint = did_you_mean(name, known) or f" (endpoints: {', '.join(known)})"
            problems.append(((*path, index), f"unknown endpoint {describe(name)}{hint}"))
    return problems
