"""The normalized result of a call and the record of each attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Attempt", "Outcome", "Response", "Usage"]

Outcome = Literal["ok", "error", "skipped"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one endpoint, or one endpoint skipped because its breaker was open.

    Attributes:
        endpoint: the endpoint's name.
        outcome: ``"ok"``, ``"error"``, or ``"skipped"`` (open breaker, no request made).
        error: a short failure kind such as ``"connect"``, ``"timeout"``, ``"overloaded"``,
            ``"breaker_open"``; ``None`` when it succeeded.
        status_code: the HTTP status received; ``None`` when no response came.
        latency: seconds spent on this attempt (0 for a skipped one).
        retry: 0 for the first request to this endpoint in this call, 1 for the first retry...
        detail: a short human-readable message (never holds a key or the prompt).
    """

    endpoint: str
    outcome: Outcome
    error: str | None = None
    status_code: int | None = None
    latency: float = 0.0
    retry: int = 0
    detail: str = ""

    def describe(self) -> str:
        """One line for error messages and logs."""
        if self.outcome == "ok":
            return f"{self.endpoint}: ok in {self.latency * 1000:.0f} ms"
        if self.outcome == "skipped":
            return f"{self.endpoint}: skipped ({self.error or 'breaker open'})"
        status = f" HTTP {self.status_code}" if self.status_code is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return (
            f"{self.endpoint}: {self.error}{status} after {self.latency * 1000:.0f} ms"
            f" (try {self.retry + 1}){detail}"
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the provider (0 when it reported none)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to one call, whichever endpoint (or the cache) produced it.

    Attributes:
        text: the answer's text.
        endpoint: the endpoint that produced it (for a cached answer, the one that
            produced the cache entry).
        provider: ``"anthropic"`` or ``"litellm"``.
        model: the model name.
        from_cache: ``True`` when served from the fallback cache.
        cache_age: age of the cached answer in seconds, ``None`` when fresh from a provider.
        attempts: every try in order, failed and skipped ones too.
        latency: seconds for the whole call.
        usage: token counts.
        stop_reason: why generation stopped, as the provider said (``"end_turn"``,
            ``"max_tokens"``, ``"stop"``...).
        raw: the provider's own response object, ``None`` when from the cache.
    """

    text: str
    endpoint: str
    provider: str
    model: str
    attempts: tuple[Attempt, ...] = ()
    latency: float = 0.0
    usage: Usage = field(default_factory=Usage)
    stop_reason: str | None = None
    from_cache: bool = False
    cache_age: float | None = None
    raw: Any = field(default=None, repr=False, compare=False)
