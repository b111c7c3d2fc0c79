"""Checks on the merged timeouts: ``first_token`` must fit inside ``read``.

Each block is valid on its own, but ``first_token`` set in ``defaults:`` can end up longer
than a ``read`` an endpoint or route shortens; only the merge (defaults -> endpoint ->
route, as the router sees it) tells. The problem is reported at the ``first_token`` in
effect, once.
"""

from __future__ import annotations

from ._durations import format_duration
from ._sections import TimeoutPolicy, merge
from ._spec import PolicySpec
from ._yaml import KeyPath

__all__ = ["timing_problems"]

Located = tuple[KeyPath, str]


def timing_problems(spec: PolicySpec) -> list[Located]:
    """A problem for every ``first_token`` longer than the ``read`` it is merged with."""
    base = merge(TimeoutPolicy(), spec.defaults.timeout)
    found: dict[KeyPath, str] = {}
    for name, endpoint in spec.endpoints.items():
        where = _written_at(
            (("endpoints", name), endpoint.timeout), (("defaults",), spec.defaults.timeout)
        )
        _check(merge(base, endpoint.timeout), where, f"endpoint {name!r}", found)
    for route_name, route in spec.routes.items():
        for name in route.endpoints:
            listed = spec.endpoints.get(name)
            if listed is None:
                continue  # reported by the cross-checks
            timeout = merge(merge(base, listed.timeout), route.timeout)
            where = _written_at(
                (("routes", route_name), route.timeout),
                (("endpoints", name), listed.timeout),
                (("defaults",), spec.defaults.timeout),
            )
            _check(timeout, where, f"endpoint {name!r} on route {route_name!r}", found)
    return list(found.items())


def _written_at(*blocks: tuple[KeyPath, object]) -> KeyPath:
    """The path of the most specific ``first_token`` written among ``blocks``."""
    for prefix, block in blocks:
        if block is not None and "first_token" in getattr(block, "model_fields_set", ()):
            return (*prefix, "timeout", "first_token")
    return ("defaults", "timeout", "first_token")


def _check(timeout: TimeoutPolicy, where: KeyPath, what: str, found: dict[KeyPath, str]) -> None:
    first = timeout.first_token
    if first is None or first <= timeout.read or where in found:
        return
    found[where] = (
        f"{format_duration(first)} is longer than read ({format_duration(timeout.read)}) "
        f"for {what}; first_token must be at most read"
    )
