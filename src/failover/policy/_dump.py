"""A policy written back as plain data, in the form ``Policy.from_dict`` reads.

Endpoints are written fully merged, so the output needs no ``defaults:`` block and does
not depend on the built-in defaults of the version that reads it back.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ._fields import redact_url
from ._sections import Override

if TYPE_CHECKING:
    from ._model import EndpointPolicy, Policy, RoutePolicy

__all__ = ["policy_to_dict"]


def policy_to_dict(policy: Policy, *, reveal: bool) -> dict[str, Any]:
    """Implement :meth:`failover.Policy.to_dict` (see there for the format)."""
    out: dict[str, Any] = {"version": policy.version, "endpoints": {}, "routes": {}}
    context = {"reveal": reveal}
    for name, ep in policy.endpoints.items():
        out["endpoints"][name] = _endpoint(ep, reveal=reveal)
    for name, route in policy.routes.items():
        out["routes"][name] = _route(route)
    if policy.default_route is not None:
        out["default_route"] = policy.default_route
    if policy.namespace is not None:
        out["namespace"] = policy.namespace
    out["cache"] = policy.cache.model_dump(context=context)
    out["state"] = policy.state.model_dump(context=context)
    if policy.observability:
        out["observability"] = copy.deepcopy(dict(policy.observability))
    out = _escape(out)
    # Keys go in after the escaping: a ${VAR} reference must stay a reference.
    for name, ep in policy.endpoints.items():
        if ep.api_key is None:
            continue
        if reveal:
            out["endpoints"][name]["api_key"] = _escape(ep.api_key.reveal())
        else:
            out["endpoints"][name]["api_key"] = ep.api_key.reference or "***"
    return out


def _endpoint(ep: EndpointPolicy, *, reveal: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"provider": ep.provider, "model": ep.model}
    if ep.base_url is not None:
        entry["base_url"] = ep.base_url if reveal else redact_url(ep.base_url)
    entry["params"] = copy.deepcopy(dict(ep.params))
    if ep.prefill is not None:
        entry["prefill"] = ep.prefill
    entry["timeout"] = ep.timeout.model_dump()
    entry["retry"] = ep.retry.model_dump()
    entry["breaker"] = ep.breaker.model_dump()
    return entry


def _route(route: RoutePolicy) -> dict[str, Any]:
    item: dict[str, Any] = {"endpoints": list(route.endpoints), "deadline": route.deadline}
    if route.cache is not None:
        item["cache"] = route.cache.model_dump()
    item["on_interrupt"] = route.on_interrupt
    for block in ("timeout", "retry", "breaker"):
        override: Override | None = getattr(route, block)
        if override is not None:
            item[block] = override.to_dict()
    return item


def _escape(value: Any) -> Any:
    """Write every ``$`` in string values as ``$$``, so loading does not substitute again."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: _escape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escape(item) for item in value]
    return value
