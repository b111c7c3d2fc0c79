"""The policy file as written: what ``failover schema`` describes and what is validated.

These models mirror the YAML one to one (partial overrides, ``defaults:``, names as
mapping keys). :mod:`failover.policy._model` resolves a validated document into the public,
merged :class:`~failover.Policy`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from ._fields import Duration, describe, http_url, kind, one_of
from ._observability import OBSERVABILITY_SCHEMA
from ._sections import BreakerOverride, Frozen, RetryOverride, TimeoutOverride, drop_null
from ._storage import CacheBackendPolicy, RouteCachePolicy, StateBackendPolicy

__all__ = ["PROVIDERS", "DefaultsSpec", "EndpointSpec", "PolicySpec", "RouteSpec"]

PROVIDERS = ("anthropic", "litellm")
Provider = Literal["anthropic", "litellm"]
OnInterrupt = Literal["raise", "continue", "restart"]
ON_INTERRUPT = ("raise", "continue", "restart")
#: A namespace goes into Redis keys and cache keys as written: a small, safe alphabet.
NAMESPACE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_NAMESPACE = re.compile(NAMESPACE_PATTERN)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {describe(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _api_key(value: Any) -> str | None:
    # Never echo the value: it is, or is meant to be, a credential.
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {kind(value)}")
    if not value:
        raise ValueError("is empty (leave api_key out to use the SDK's own environment variable)")
    return value


def _namespace(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {describe(value)}")
    if not _NAMESPACE.match(value):
        raise ValueError(
            f"{describe(value)} is not a namespace: 1 to 64 of the characters A-Z a-z 0-9 _ . : -"
        )
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {describe(value)}")
    return value


def _version(value: Any) -> int:
    if value == 1 and type(value) is int:
        return 1
    raise ValueError(f"unsupported version {describe(value)} (this failover reads version: 1)")


def _names(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of endpoint names, got {describe(value)}")
    if not value:
        raise ValueError("must name at least one endpoint")
    return list(value)


class DefaultsSpec(Frozen):
    """Settings merged under every endpoint and route (over the built-in defaults)."""

    timeout: TimeoutOverride | None = Field(default=None, description="Request timeouts.")
    retry: RetryOverride | None = Field(default=None, description="Retries of one endpoint.")
    breaker: BreakerOverride | None = Field(default=None, description="Circuit breaker settings.")


class EndpointSpec(Frozen):
    """One provider + model + credentials: a thing that can answer a request."""

    provider: Annotated[
        Provider,
        BeforeValidator(one_of("provider", PROVIDERS)),
        WithJsonSchema({"enum": list(PROVIDERS)}),
    ] = Field(description="anthropic (the Anthropic SDK) or litellm (any LiteLLM model).")
    model: Annotated[str, BeforeValidator(_text)] = Field(
        description="Model name as the provider knows it (claude-sonnet-4-5, openai/gpt-4o-mini)."
    )
    api_key: Annotated[str | None, BeforeValidator(_api_key)] = Field(
        default=None,
        description="The key, usually ${ENV_VAR}. Left out: the SDK reads its own variable.",
    )
    base_url: Annotated[
        str | None, BeforeValidator(lambda v: None if v is None else http_url(v))
    ] = Field(
        default=None, description="Another API root (a gateway, a proxy, LiteLLM's api_base)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Request parameters for this endpoint (temperature...); the caller's win.",
    )
    prefill: Annotated[bool | None, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})] = (
        Field(
            default=None,
            description="Whether the model accepts an assistant prefill (stream continuation). "
            "Left out: failover knows it per model family.",
            json_schema_extra=drop_null,
        )
    )
    timeout: TimeoutOverride | None = Field(default=None, description="Overrides defaults.timeout.")
    retry: RetryOverride | None = Field(default=None, description="Overrides defaults.retry.")
    breaker: BreakerOverride | None = Field(default=None, description="Overrides defaults.breaker.")


class RouteSpec(Frozen):
    """An ordered list of endpoints to try, under one deadline."""

    endpoints: Annotated[
        list[str],
        BeforeValidator(_names),
        WithJsonSchema(
            {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True}
        ),
    ] = Field(description="Endpoint names in order of preference.")
    deadline: Duration = Field(
        default=90.0, description="Bound on the whole call: retries, failover, sleeps. Default 90s."
    )
    cache: RouteCachePolicy | None = Field(
        default=None, description="The route's answer cache; off unless set."
    )
    on_interrupt: Annotated[
        OnInterrupt,
        BeforeValidator(one_of("on_interrupt", ON_INTERRUPT)),
        WithJsonSchema({"enum": list(ON_INTERRUPT)}),
    ] = Field(
        default="raise",
        description="A stream broken after text: raise StreamInterrupted; continue it on the "
        "next endpoint that accepts a prefill (else restart); or restart the answer there. "
        "Default raise.",
    )
    timeout: TimeoutOverride | None = Field(
        default=None, description="Overrides, for this route only."
    )
    retry: RetryOverride | None = Field(default=None, description="Overrides, for this route only.")
    breaker: BreakerOverride | None = Field(
        default=None,
        description="Overrides, for this route only (gives its endpoints own breakers).",
    )


class PolicySpec(Frozen):
    """A failover policy: endpoints, the routes over them, and shared settings."""

    version: Annotated[int, BeforeValidator(_version), WithJsonSchema({"const": 1})] = Field(
        description="Policy format version; must be 1."
    )
    defaults: DefaultsSpec = Field(
        default=DefaultsSpec(), description="Settings merged under every endpoint and route."
    )
    endpoints: dict[str, EndpointSpec] = Field(min_length=1, description="Endpoints by name.")
    routes: dict[str, RouteSpec] = Field(min_length=1, description="Routes by name.")
    default_route: str | None = Field(
        default=None,
        description="The route used when a call names none.",
        json_schema_extra=drop_null,
    )
    namespace: Annotated[
        str | None,
        BeforeValidator(_namespace),
        WithJsonSchema({"type": "string", "pattern": NAMESPACE_PATTERN}),
    ] = Field(
        default=None,
        description="Key prefix for shared breaker state and cached answers (e.g. staging and "
        "production on one Redis). Left out: keys come from each endpoint's and route's identity.",
        json_schema_extra=drop_null,
    )
    cache: CacheBackendPolicy = Field(
        default=CacheBackendPolicy(), description="Storage of the routes' answer caches."
    )
    state: StateBackendPolicy = Field(
        default=StateBackendPolicy(), description="Storage of breaker state: per process or shared."
    )
    observability: Annotated[dict[str, Any], WithJsonSchema(OBSERVABILITY_SCHEMA)] = Field(
        default_factory=dict,
        description="The listeners a Router built on this policy gets when the code gives"
        " none: logging (on unless false), stats, prometheus, otel, trace.",
    )
