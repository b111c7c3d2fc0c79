"""The validated, frozen policy that the router consumes.

Loading goes one way: YAML text (:mod:`failover.policy._yaml`, which keeps every key's line) or a
dict -> ``${VAR}`` substitution -> validation of the document as written
(:mod:`failover.policy._spec`) -> every problem reported at once, each with file, line
and key path -> a :class:`Policy` with the ``defaults:`` already merged into every
endpoint. Nothing downstream reads YAML or the environment again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    ValidationError,
    field_serializer,
)

from .._errors import PolicyError, PolicyIssue, RouteNotFound
from ._dump import policy_to_dict
from ._env import expand_env
from ._fields import did_you_mean, kind, redact_url, reveal_requested
from ._issues import Located, cross_check, to_issues, translate
from ._observability import (
    LoggingSettings,
    ObservabilityPolicy,
    PrometheusSettings,
    StatsSettings,
)
from ._scan import non_finite_problems, null_problems
from ._secret import Secret
from ._sections import (
    BackoffOverride,
    BackoffPolicy,
    BreakerOverride,
    BreakerPolicy,
    Frozen,
    RetryBudgetOverride,
    RetryBudgetPolicy,
    RetryOverride,
    RetryPolicy,
    TimeoutOverride,
    TimeoutPolicy,
    merge,
)
from ._source import read_policy_text
from ._spec import OnInterrupt, PolicySpec
from ._storage import CacheBackendPolicy, RouteCachePolicy, StateBackendPolicy
from ._timing import timing_problems
from ._yaml import KeyPath, load_yaml

__all__ = [
    "BackoffOverride",
    "BackoffPolicy",
    "BreakerOverride",
    "BreakerPolicy",
    "CacheBackendPolicy",
    "EndpointPolicy",
    "LoggingSettings",
    "ObservabilityPolicy",
    "Policy",
    "PolicyFileNotFound",
    "PrometheusSettings",
    "RetryBudgetOverride",
    "RetryBudgetPolicy",
    "RetryOverride",
    "RetryPolicy",
    "RouteCachePolicy",
    "RoutePolicy",
    "StateBackendPolicy",
    "StatsSettings",
    "TimeoutOverride",
    "TimeoutPolicy",
]

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class PolicyFileNotFound(PolicyError, FileNotFoundError):
    """The policy file does not exist (a :class:`PolicyError` and a ``FileNotFoundError``)."""

    def __init__(self, source: str) -> None:
        super().__init__([PolicyIssue(source, None, "", "no such file")])
        self.filename = source

    def __str__(self) -> str:
        # OSError's own __str__ ("[Errno None] ...") would win in the MRO.
        return "\n".join(str(issue) for issue in self.issues)


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


class EndpointPolicy(Frozen):
    """One endpoint, with ``defaults:`` and the built-in defaults merged in."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(description="The endpoint's name in the policy.")
    provider: Literal["anthropic", "litellm"] = Field(description="Which SDK serves it.")
    model: str = Field(description="Model name as the provider knows it.")
    api_key: Secret | None = Field(
        default=None, description="None: the SDK's own environment variable."
    )
    base_url: str | None = Field(
        default=None, description="API root, or None for the SDK's default."
    )
    params: Annotated[Mapping[str, Any], AfterValidator(_read_only)] = Field(
        default_factory=lambda: MappingProxyType({}), description="Request parameters (read-only)."
    )
    prefill: bool | None = Field(
        default=None,
        description="Accepts an assistant prefill; None: decided per model family.",
    )
    timeout: TimeoutPolicy = Field(default=TimeoutPolicy(), description="Effective timeouts.")
    retry: RetryPolicy = Field(default=RetryPolicy(), description="Effective retry settings.")
    breaker: BreakerPolicy = Field(
        default=BreakerPolicy(), description="Effective breaker settings."
    )

    @field_serializer("api_key")
    def _mask(self, value: Secret | None) -> str | None:
        return None if value is None else str(value)

    @field_serializer("base_url")
    def _mask_url(self, value: str | None, info: FieldSerializationInfo) -> str | None:
        if value is None or reveal_requested(info):
            return value
        return redact_url(value)

    @field_serializer("params")
    def _plain(self, value: Mapping[str, Any]) -> dict[str, Any]:
        return dict(value)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" and value else value

    def __hash__(self) -> int:
        # params may hold lists; equal endpoints still hash equal without them.
        return hash((self.name, self.provider, self.model, self.api_key, self.base_url,
                     self.prefill, self.timeout, self.retry, self.breaker))  # fmt: skip


class RoutePolicy(Frozen):
    """One route: endpoints in order of preference, its deadline, cache and overrides."""

    name: str = Field(description="The route's name in the policy.")
    endpoints: tuple[str, ...] = Field(description="Endpoint names, most preferred first.")
    deadline: float = Field(default=90.0, description="Seconds for the whole call.")
    cache: RouteCachePolicy | None = Field(
        default=None, description="The answer cache, or None: off."
    )
    on_interrupt: OnInterrupt = Field(
        default="raise", description="Broken streams: raise, continue or restart."
    )
    timeout: TimeoutOverride | None = Field(
        default=None, description="Route-only timeout overrides."
    )
    retry: RetryOverride | None = Field(default=None, description="Route-only retry overrides.")
    breaker: BreakerOverride | None = Field(
        default=None, description="Route-only breaker overrides."
    )


def _observability(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, ObservabilityPolicy):
        return ObservabilityPolicy.from_config(value)
    return value


class Policy(Frozen):
    """A validated failover policy. Build it with :meth:`from_yaml` or :meth:`from_dict`."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    version: int = Field(default=1, description="Policy format version.")
    endpoints: Annotated[Mapping[str, EndpointPolicy], AfterValidator(_read_only)] = Field(
        description="Endpoints by name, defaults merged in (read-only)."
    )
    routes: Annotated[Mapping[str, RoutePolicy], AfterValidator(_read_only)] = Field(
        description="Routes by name (read-only)."
    )
    default_route: str | None = Field(
        default=None, description="Route used when a call names none."
    )
    cache: CacheBackendPolicy = Field(
        default=CacheBackendPolicy(), description="Answer cache storage."
    )
    state: StateBackendPolicy = Field(
        default=StateBackendPolicy(), description="Breaker state storage."
    )
    observability: Annotated[ObservabilityPolicy, BeforeValidator(_observability)] = Field(
        default=ObservabilityPolicy(),
        description="The listeners' settings, resolved; also a read-only mapping of the "
        "section as written (empty: the default).",
    )
    namespace: str | None = Field(
        default=None, description="Key prefix for shared state and cache; None: by identity."
    )
    source: str | None = Field(default=None, description="File it came from; not part of equality.")

    @field_serializer("endpoints", "routes")
    def _plain_mapping(self, value: Mapping[str, Any]) -> dict[str, Any]:
        # Read-only views are not serialisable as they are (model_dump_json).
        return dict(value)

    @field_serializer("observability")
    def _as_written(self, value: ObservabilityPolicy) -> dict[str, Any]:
        return dict(value)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Policy:
        """Load and validate a YAML policy file.

        Args:
            path: the file; messages show it as given (not made absolute).

        Returns:
            The policy.

        Raises:
            PolicyFileNotFound: there is no such file (also a ``PolicyError``).
            PolicyError: anything else wrong (a file over 1 MiB is refused unread), every
                problem at once, each as ``FILE:LINE: key.path: message``.
        """
        source = os.fspath(path)
        try:
            text = read_policy_text(source)
        except FileNotFoundError:
            raise PolicyFileNotFound(source) from None
        loaded = load_yaml(text, source)
        lines = {(): loaded.root_line, **loaded.lines}
        return _build(loaded.data, source, lines, loaded.issues, loaded.dropped)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> Policy:
        """Validate a policy given as plain data (the same schema as the YAML file).

        Args:
            data: the policy, as ``yaml.safe_load`` would return it. ``${VAR}`` references
                in string values are substituted, as in a file.
            source: a name to show in messages, if any.

        Returns:
            The policy.

        Raises:
            PolicyError: every problem at once, each naming its key path.
        """
        return _build(data, source, {}, [], [])

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of the policy file, as ``failover schema`` prints it."""
        schema = PolicySpec.model_json_schema()
        return {"$schema": _SCHEMA_DIALECT, **schema, "title": "failover policy"}

    def route(self, name: str | None = None) -> RoutePolicy:
        """The named route; with ``None``, the ``default_route`` or else the only route.

        Raises:
            RouteNotFound: no such route (with a did-you-mean), or no name and no default.
        """
        if name is None:
            if self.default_route is not None:
                return self.routes[self.default_route]
            if len(self.routes) == 1:
                return next(iter(self.routes.values()))
            names = ", ".join(self.routes)
            raise RouteNotFound(f"no route given and the policy has no default_route ({names})")
        if name not in self.routes:
            hint = did_you_mean(name, self.routes) or f" (routes: {', '.join(self.routes)})"
            raise RouteNotFound(f"unknown route {name!r}{hint}")
        return self.routes[name]

    def effective(
        self, route: str, endpoint: str
    ) -> tuple[TimeoutPolicy, RetryPolicy, BreakerPolicy]:
        """The settings for ``endpoint`` when called through ``route``.

        Merge order, key by key: built-in < ``defaults:`` < endpoint < route.

        Raises:
            RouteNotFound: no such route.
            KeyError: no such endpoint.
        """
        overrides = self.route(route)
        ep = self.endpoints[endpoint]
        return (
            merge(ep.timeout, overrides.timeout),
            merge(ep.retry, overrides.retry),
            merge(ep.breaker, overrides.breaker),
        )

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """The policy as plain data that :meth:`from_dict` loads back to an equal policy.

        Endpoints come out fully merged (no ``defaults:`` block); durations are seconds;
        every ``$`` is written ``$$`` so nothing is substituted twice. An ``api_key``
        written as ``${VAR}`` comes out as that reference; a literal one (or one with a
        ``${VAR:-fallback}``) as ``'***'``, unless ``reveal`` is true: then as the key
        itself, which round-trips too. Passwords in URLs (``base_url``, the cache and state
        backends) come out masked as ``***`` unless ``reveal`` is true.

        Args:
            reveal: emit API keys and URL passwords themselves instead of references or
                the mask.
        """
        return policy_to_dict(self, reveal=reveal)

    def _identity(self) -> tuple[Any, ...]:
        return (self.version, dict(self.endpoints), dict(self.routes), self.default_route,
                self.cache, self.state, self.observability, self.namespace)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        endpoints, routes = frozenset(self.endpoints.items()), frozenset(self.routes.items())
        return hash(
            (self.version, endpoints, routes, self.default_route, self.cache, self.state,
             self.observability, self.namespace)
        )  # fmt: skip


# --- loading --------------------------------------------------------------------------


def _build(
    data: Any,
    source: str | None,
    lines: dict[KeyPath, int],
    early: list[PolicyIssue],
    dropped: list[KeyPath],
) -> Policy:
    """Validate raw data and resolve it, or raise one PolicyError listing every problem.

    ``early`` are the loader's issues; ``dropped`` the paths it already reported.
    """
    if data is None and early:  # the whole document was unreadable, and said so
        raise PolicyError(early)
    if data is None or (isinstance(data, Mapping) and not data and not early):
        raise PolicyError([PolicyIssue(source, 1 if lines else None, "", "the policy is empty")])
    if not isinstance(data, Mapping):
        message = f"the top level must be a mapping (version, endpoints...), got {kind(data)}"
        raise PolicyError(to_issues([((), message)], source, lines))
    expanded = expand_env(data, os.environ)
    problems: list[Located] = list(expanded.problems)
    # A value already dropped by the loader stands as None: not a null the user wrote.
    problems += [p for p in null_problems(expanded.data) if p[0] not in dropped]
    problems += non_finite_problems(expanded.data)
    # A value already reported (unreadable YAML, failed substitution, a null, a NaN) would
    # fail validation again, less helpfully.
    failed = [*dropped, *(path for path, _ in problems)]
    spec: PolicySpec | None = None
    try:
        spec = PolicySpec.model_validate(expanded.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            path, message = translate(error)
            if not any(path[: len(bad)] == bad for bad in failed):
                problems.append((path, message))
    problems.extend(cross_check(expanded.data))
    if spec is not None:
        problems.extend(timing_problems(spec))
    issues = [*early, *to_issues(problems, source, lines)]
    if issues or spec is None:
        raise PolicyError(sorted(issues, key=lambda i: (i.line is None, i.line or 0)))
    return _resolve(spec, expanded.references, source)


def _resolve(spec: PolicySpec, references: Mapping[KeyPath, str], source: str | None) -> Policy:
    defaults = spec.defaults
    timeout = merge(TimeoutPolicy(), defaults.timeout)
    retry = merge(RetryPolicy(), defaults.retry)
    breaker = merge(BreakerPolicy(), defaults.breaker)
    endpoints = {}
    for name, ep in spec.endpoints.items():
        key = None
        if ep.api_key is not None:
            reference = references.get(("endpoints", name, "api_key"))
            # `${KEY:-sk-...}` carries a literal fallback that may itself be a key.
            if reference is not None and ":-" in reference:
                reference = None
            key = Secret(ep.api_key, reference)
        endpoints[name] = EndpointPolicy(
            name=name,
            provider=ep.provider,
            model=ep.model,
            api_key=key,
            base_url=ep.base_url,
            params=ep.params,
            prefill=ep.prefill,
            timeout=merge(timeout, ep.timeout),
            retry=merge(retry, ep.retry),
            breaker=merge(breaker, ep.breaker),
        )
    routes = {
        name: RoutePolicy(
            name=name,
            endpoints=tuple(route.endpoints),
            deadline=route.deadline,
            cache=route.cache,
            on_interrupt=route.on_interrupt,
            timeout=route.timeout,
            retry=route.retry,
            breaker=route.breaker,
        )
        for name, route in spec.routes.items()
    }
    return Policy(
        version=spec.version,
        endpoints=endpoints,
        routes=routes,
        default_route=spec.default_route,
        cache=spec.cache,
        state=spec.state,
        observability=ObservabilityPolicy.from_config(spec.observability),
        namespace=spec.namespace,
        source=source,
    )
