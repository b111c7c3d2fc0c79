"""The per-endpoint settings blocks: timeout, retry (with backoff), breaker; and their overrides.

Each block exists twice. ``TimeoutPolicy`` and friends are complete, with the built-in
defaults, and are what the router consumes. ``TimeoutOverride`` and friends are what a
``defaults:``, endpoint or route block writes: only the keys written are set, and
:func:`merge` lays them over a complete block, key by key. Knowing which keys were
written (rather than treating ``None`` as "unset") lets ``failure_rate: null`` switch a
rate threshold off where ``defaults:`` turned it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from ._durations import DAY, parse_duration
from ._fields import (
    DURATION_SCHEMA,
    Duration,
    NullableDuration,
    OptionalDuration,
    describe,
    integer,
    not_null,
    number,
    one_of,
)

__all__ = [
    "BackoffOverride",
    "BackoffPolicy",
    "BreakerOverride",
    "BreakerPolicy",
    "Override",
    "RetryBudgetOverride",
    "RetryBudgetPolicy",
    "RetryOverride",
    "RetryPolicy",
    "TimeoutOverride",
    "TimeoutPolicy",
    "merge",
]

JITTERS = ("full", "none", "equal")

Count = Annotated[
    int, BeforeValidator(integer(1)), WithJsonSchema({"type": "integer", "minimum": 1})
]
OptionalCount = Annotated[
    int | None,
    BeforeValidator(not_null(integer(1))),
    WithJsonSchema({"type": "integer", "minimum": 1}),
]
_MULTIPLIER = {"type": "number", "minimum": 1}
Multiplier = Annotated[float, BeforeValidator(number(minimum=1)), WithJsonSchema(_MULTIPLIER)]
OptionalMultiplier = Annotated[
    float | None, BeforeValidator(not_null(number(minimum=1))), WithJsonSchema(_MULTIPLIER)
]
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
Share = Annotated[float, BeforeValidator(number(minimum=0, maximum=1)), WithJsonSchema(_SHARE)]
OptionalShare = Annotated[
    float | None, BeforeValidator(not_null(number(minimum=0, maximum=1))), WithJsonSchema(_SHARE)
]
_FLOOR = {"type": "integer", "minimum": 0}
Floor = Annotated[int, BeforeValidator(integer(0)), WithJsonSchema(_FLOOR)]
OptionalFloor = Annotated[int | None, BeforeValidator(not_null(integer(0))), WithJsonSchema(_FLOOR)]
_RATIO = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
_check_ratio = number(minimum=0, inclusive=False, maximum=1)
Ratio = Annotated[
    float | None,
    BeforeValidator(lambda v: None if v is None else _check_ratio(v)),
    WithJsonSchema({"anyOf": [_RATIO, {"type": "null"}]}),
]
_JITTER = {"enum": list(JITTERS)}
Jitter = Annotated[
    Literal["full", "none", "equal"],
    BeforeValidator(one_of("jitter", JITTERS)),
    WithJsonSchema(_JITTER),
]
OptionalJitter = Annotated[
    Literal["full", "none", "equal"] | None,
    BeforeValidator(not_null(one_of("jitter", JITTERS))),
    WithJsonSchema(_JITTER),
]


class Frozen(BaseModel):
    """Base of every policy model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- complete blocks, with the built-in defaults ---------------------------------------


class TimeoutPolicy(Frozen):
    """Time limits for one request to one endpoint, in seconds."""

    connect: Duration = Field(default=3.0, description="Time to open the connection. Default 3s.")
    read: Duration = Field(
        default=60.0, description="Longest wait for response bytes. Default 60s."
    )
    stream_idle: Duration = Field(
        default=30.0, description="Longest gap between two streamed text deltas. Default 30s."
    )
    first_token: NullableDuration = Field(
        default=None,
        description="Longest wait for a stream's first event, per attempt; at most read. "
        "Default off.",
    )


class BackoffPolicy(Frozen):
    """Sleeps between retries of one endpoint: exponential, capped, with jitter."""

    initial: Duration = Field(
        default=0.25, description="Sleep before the first retry. Default 250ms."
    )
    max: Duration = Field(default=4.0, description="Longest sleep between two retries. Default 4s.")
    multiplier: Multiplier = Field(
        default=2.0, description="Growth factor per retry (>= 1). Default 2."
    )
    jitter: Jitter = Field(
        default="full",
        description="full: random in [0, sleep]; equal: in [sleep/2, sleep]; none. Default full.",
    )


class RetryBudgetPolicy(Frozen):
    """A cap on retries as a share of an endpoint's recent calls (as Finagle and Envoy do),
    so that an outage never multiplies the load on it."""

    ratio: Share = Field(
        default=0.2,
        description="Retries allowed as a share of recent calls, in [0, 1]; 0: only the "
        "floor. Default 0.2.",
    )
    min_retries: Floor = Field(
        default=10, description="Retries always allowed per window (the floor). Default 10."
    )
    window: Duration = Field(
        default=10.0, description="How far back calls and retries are counted. Default 10s."
    )


class RetryPolicy(Frozen):
    """How often one endpoint is tried within one call before failing over."""

    attempts: Count = Field(
        default=2, description="Requests per endpoint per call; 1 means no retry. Default 2."
    )
    backoff: BackoffPolicy = Field(default=BackoffPolicy(), description="Sleeps between retries.")
    max_retry_after: Duration = Field(
        default=10.0,
        description="Longest retry-after honoured; a longer one fails over at once. Default 10s.",
    )
    budget: RetryBudgetPolicy = Field(
        default=RetryBudgetPolicy(), description="The endpoint's retry budget."
    )


class BreakerPolicy(Frozen):
    """When an endpoint's circuit breaker opens, and how it recovers."""

    failure_threshold: Count = Field(
        default=5, description="Consecutive failures that open the breaker. Default 5."
    )
    failure_rate: Ratio = Field(
        default=None,
        description="Also open at this failure ratio, in (0, 1], over the window. Default off.",
    )
    minimum_calls: Count = Field(
        default=20,
        description="Calls the window must hold before failure_rate applies. Default 20.",
    )
    window: Duration = Field(
        default=60.0, description="Span of the failure-rate window. Default 60s."
    )
    slow_call: NullableDuration = Field(
        default=None, description="Calls slower than this count as failures. Default off."
    )
    reset_timeout: Duration = Field(
        default=30.0, description="Time from open to half_open (a trial call). Default 30s."
    )
    half_open_max_calls: Count = Field(
        default=1,
        description="Trial calls admitted while half_open, across all callers. Default 1.",
    )


# --- overrides: only the keys written are set -------------------------------------------


class Override(Frozen):
    """A partial block: equality, hashing and merging see only the keys that were written."""

    def set_values(self) -> dict[str, Any]:
        """The keys that were written, with their values, in declaration order."""
        return {n: getattr(self, n) for n in type(self).model_fields if n in self.model_fields_set}

    def to_dict(self) -> dict[str, Any]:
        """The written keys as plain data (seconds for durations)."""
        return {
            name: value.to_dict() if isinstance(value, Override) else value
            for name, value in self.set_values().items()
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Override):
            return NotImplemented
        return type(self) is type(other) and self.set_values() == other.set_values()

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.set_values().items())))


def drop_null(schema: dict[str, Any]) -> None:
    """A key either written or left out: ``null`` is refused (see ``not_null``), so the
    JSON Schema should not offer it, nor a ``default: null`` that would not validate."""
    schema.pop("default", None)
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [option for option in options if option != {"type": "null"}]
        if len(kept) == 1:
            del schema["anyOf"]
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _written(description: str) -> Any:
    """A key of an override block: left out means inherited, ``null`` is refused."""
    return Field(default=None, description=description, json_schema_extra=drop_null)


def _switch(description: str) -> Any:
    """An override key where ``null`` means off (failure_rate, slow_call)."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


class TimeoutOverride(Override):
    """Timeouts to override; one duration alone sets ``connect`` and ``read``."""

    connect: OptionalDuration = _written("Time to open the connection (built-in: 3s).")
    read: OptionalDuration = _written("Longest wait for response bytes (built-in: 60s).")
    stream_idle: OptionalDuration = _written(
        "Longest gap between two streamed text deltas (built-in: 30s)."
    )
    first_token: NullableDuration = _switch(
        "Longest wait for a stream's first event per attempt, at most read; null: off (built-in)."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_duration(cls, data: Any) -> Any:
        # `timeout: 10s` is the short form for connect and read; stream_idle keeps its value.
        if isinstance(data, (Mapping, BaseModel)):
            return data
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            seconds = parse_duration(data, DAY)
            return {"connect": seconds, "read": seconds}
        raise ValueError(f"expected a duration or a mapping, got {describe(data)}")

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        return {"anyOf": [DURATION_SCHEMA, schema], "description": schema.get("description", "")}


class BackoffOverride(Override):
    """Backoff settings to override."""

    initial: OptionalDuration = _written("Sleep before the first retry (built-in: 250ms).")
    max: OptionalDuration = _written("Longest sleep between two retries (built-in: 4s).")
    multiplier: OptionalMultiplier = _written("Growth factor per retry, >= 1 (built-in: 2).")
    jitter: OptionalJitter = _written(
        "full: random in [0, sleep]; equal: in [sleep/2, sleep]; none (built-in: full)."
    )


class RetryBudgetOverride(Override):
    """Retry budget settings to override."""

    ratio: OptionalShare = _written(
        "Retries allowed as a share of recent calls, in [0, 1] (built-in: 0.2)."
    )
    min_retries: OptionalFloor = _written("Retries always allowed per window (built-in: 10).")
    window: OptionalDuration = _written(
        "How far back calls and retries are counted (built-in: 10s)."
    )


class RetryOverride(Override):
    """Retry settings to override."""

    attempts: OptionalCount = _written(
        "Requests per endpoint per call; 1 means no retry (built-in: 2)."
    )
    backoff: Annotated[BackoffOverride | None, BeforeValidator(not_null(lambda v: v))] = _written(
        "Sleeps between retries."
    )
    max_retry_after: OptionalDuration = _written(
        "Longest retry-after honoured; longer fails over at once (built-in: 10s)."
    )
    budget: Annotated[RetryBudgetOverride | None, BeforeValidator(not_null(lambda v: v))] = (
        _written("The endpoint's retry budget.")
    )


class BreakerOverride(Override):
    """Breaker settings to override; ``null`` switches failure_rate or slow_call off."""

    failure_threshold: OptionalCount = _written(
        "Consecutive failures that open the breaker (built-in: 5)."
    )
    failure_rate: Ratio = _switch(
        "Also open at this failure ratio, in (0, 1], over the window; null: off (built-in)."
    )
    minimum_calls: OptionalCount = _written(
        "Calls the window must hold before failure_rate applies (built-in: 20)."
    )
    window: OptionalDuration = _written("Span of the failure-rate window (built-in: 60s).")
    slow_call: NullableDuration = _switch(
        "Calls slower than this count as failures; null: off (built-in)."
    )
    reset_timeout: OptionalDuration = _written(
        "Time from open to half_open, when a trial call is let through (built-in: 30s)."
    )
    half_open_max_calls: OptionalCount = _written(
        "Trial calls admitted while half_open, across all callers (built-in: 1)."
    )


Block = TypeVar("Block", bound=BaseModel)


def merge(base: Block, override: Override | None) -> Block:
    """Lay the written keys of ``override`` over ``base``, nested blocks key by key.

    Args:
        base: a complete block (``TimeoutPolicy``, ``RetryPolicy``, ``BreakerPolicy``...).
        override: the matching override, or ``None``.

    Returns:
        A new complete block (``base`` itself when nothing changes).
    """
    if override is None:
        return base
    update: dict[str, Any] = {}
    for name, value in override.set_values().items():
        if isinstance(value, Override):
            update[name] = merge(getattr(base, name), value)
        else:
            update[name] = value
    return base.model_copy(update=update) if update else base
