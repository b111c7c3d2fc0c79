"""What a failure is and what it does: the contract's failure table as plain functions.

Providers turn their own exceptions into a :class:`Failure` (one function each); the
router decides from it alone whether to retry, fail over, or stop. Nothing here does I/O,
so the sync and async paths, and the simulator, share it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "KINDS",
    "Failure",
    "FailureKind",
    "describe",
    "failure_from_status",
    "kind_for_status",
    "meaning_of",
    "parse_retry_after",
    "status_for_error_type",
]

FailureKind = Literal[
    "connect",  # refused, reset, DNS: no response came
    "timeout",  # connect or read timeout: the endpoint did not answer in time
    "first_token",  # a stream's headers came, its first content event did not in time
    "stream_idle",  # a stream went silent between two events for longer than stream_idle
    "stream_cut",  # the stream ended (or broke) before its final event
    "deadline",  # the route's deadline ran out during this attempt
    "request_timeout",  # HTTP 408
    "rate_limited",  # HTTP 429
    "server",  # HTTP 500, 502, 503, 504 and other 5xx
    "overloaded",  # HTTP 529, or an overloaded_error event in a 200 stream
    "auth",  # HTTP 401, 403: the provider refused the key
    "not_found",  # HTTP 404: wrong model or URL
    "misconfigured",  # no key, or the provider's SDK extra is not installed: no request sent
    "client",  # other 4xx: the endpoint refuses this caller
    "invalid_request",  # HTTP 400, 422, or a request that cannot be encoded: wrong everywhere
    "context_window",  # the request is too long for this endpoint's model (400/413)
    "content_filter",  # the provider refused the content (policy): wrong everywhere
    "unsupported",  # this endpoint cannot express the request (LiteLLM validation)
    "unknown",  # anything else the provider raised
]

# One line per kind, for logs, attempt details and docs: what happened, not what to do.
_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "connect": "could not connect (refused, reset or DNS): no response came",
    "timeout": "the endpoint did not answer within the read timeout",
    "first_token": "the stream started but its first token did not come within first_token",
    "stream_idle": "the stream went silent for longer than stream_idle",
    "stream_cut": "the stream broke before its end",
    "deadline": "the route's deadline ran out during the attempt",
    "request_timeout": "the endpoint timed out the request (HTTP 408)",
    "rate_limited": "rate limited (HTTP 429)",
    "server": "server error (HTTP 5xx)",
    "overloaded": "the endpoint is overloaded (HTTP 529 or an overloaded_error event)",
    "auth": "the endpoint refused the API key (HTTP 401/403)",
    "not_found": "model or URL not found (HTTP 404)",
    "misconfigured": "the endpoint is misconfigured (no API key, or its SDK is not installed)",
    "client": "the endpoint refused the request (HTTP 4xx)",
    "invalid_request": "the request itself is invalid",
    "context_window": "the request is too long for this endpoint's model",
    "content_filter": "the provider refused the content (content policy)",
    "unsupported": "this endpoint cannot take the request (unsupported parameter or content)",
    "unknown": "unexpected error from the provider",
}

KINDS: Final[tuple[str, ...]] = tuple(_DESCRIPTIONS)
"""Every failure kind, in the order of the table above."""

# How Anthropic's error types map to the status they stand for, for errors that arrive
# as an event inside a 200 stream (anthropic 2.13 raises APIStatusError with status 200).
_ERROR_TYPE_STATUS: Final[Mapping[str, int]] = {
    "overloaded_error": 529,
    "api_error": 500,
    "rate_limit_error": 429,
    "timeout_error": 504,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "invalid_request_error": 400,
    "billing_error": 402,
}

_RETRYABLE: Final = frozenset(
    {"connect", "timeout", "request_timeout", "rate_limited", "server", "overloaded"}
)
_REQUEST_ERRORS: Final = frozenset({"invalid_request", "content_filter"})
# The request, not the endpoint's health, caused these: a breaker must not open on them.
_NOT_ENDPOINT_FAULTS: Final = frozenset(
    {"invalid_request", "content_filter", "context_window", "unsupported"}
)


def describe(kind: str) -> str:
    """A short human message saying what a failure kind means (for logs and docs)."""
    return _DESCRIPTIONS.get(kind, kind)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt, reduced to what the policy decides on.

    Attributes:
        kind: the failure's category.
        status_code: the HTTP status received (the status an in-stream error event stands
            for), ``None`` when no response came.
        retry_after: seconds the server asked us to wait, when it said.
        detail: a short message for attempts and logs (no key, no prompt).
        request_id: the provider's request id, when it sent one.
    """

    kind: FailureKind
    status_code: int | None = None
    retry_after: float | None = None
    detail: str = ""
    request_id: str | None = None

    @property
    def retryable(self) -> bool:
        """Whether the same endpoint may be tried again."""
        return self.kind in _RETRYABLE

    @property
    def is_request_error(self) -> bool:
        """Whether the request itself was rejected: stop the route, raise RequestError."""
        return self.kind in _REQUEST_ERRORS

    @property
    def fails_over(self) -> bool:
        """Whether the next endpoint of the route may be tried."""
        return self.kind not in _REQUEST_ERRORS

    @property
    def counts_against_breaker(self) -> bool:
        """Whether the endpoint's breaker records this as a failure."""
        return self.kind not in _NOT_ENDPOINT_FAULTS

    @property
    def message(self) -> str:
        """What happened, in one line: the kind's description, then the detail."""
        return f"{describe(self.kind)}: {self.detail}" if self.detail else describe(self.kind)


def status_for_error_type(error_type: str | None) -> int | None:
    """The HTTP status an Anthropic error ``type`` stands for (``overloaded_error`` → 529)."""
    if error_type is None:
        return None
    return _ERROR_TYPE_STATUS.get(error_type)


def kind_for_status(status: int) -> FailureKind:
    """The failure kind of an HTTP status (only called for error statuses)."""
    if status in (400, 422):
        return "invalid_request"
    if status in (401, 403):
        return "auth"
    kinds: dict[int, FailureKind] = {
        404: "not_found",
        408: "request_timeout",
        413: "context_window",
        429: "rate_limited",
        529: "overloaded",
    }
    if status in kinds:
        return kinds[status]
    if status >= 500:
        return "server"
    return "client"


def meaning_of(status: int, error_type: str | None, message: str) -> FailureKind | None:
    """The kind a 4xx stands for by its body, when that says more than its status."""
    if status not in (400, 413, 422):
        return None
    text = f"{error_type or ''} {message}".lower()
    if any(mark in text for mark in _CONTEXT_MARKS):
        return "context_window"
    if any(mark in text for mark in _FILTER_MARKS):
        return "content_filter"
    return None


_CONTEXT_MARKS = (
    "prompt is too long",
    "request_too_large",
    "context_length_exceeded",
    "maximum context length",
    "context window",
)
_FILTER_MARKS = ("content_policy_violation", "content_filter", "content policy")


def failure_from_status(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    detail: str = "",
    request_id: str | None = None,
    now: float | None = None,
    kind: FailureKind | None = None,
) -> Failure:
    """Build the :class:`Failure` for an HTTP error status and its headers.

    ``kind`` overrides the status's own kind when the body says more (a 400 that means
    the prompt is too long for this model is ``context_window``).
    """
    retry_after = None
    if headers is not None and status in (408, 429, 503, 529):
        retry_after = parse_retry_after(headers, now=now)
    return Failure(
        kind or kind_for_status(status),
        status_code=status,
        retry_after=retry_after,
        detail=detail,
        request_id=request_id,
    )


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (preferred) or ``retry-after``.

    ``retry-after`` may be seconds or an HTTP date. Unparsable or negative values are
    ignored, as if absent.
    """
    value = _header(headers, "retry-after-ms")
    if value is not None:
        try:
            ms = float(value)
        except ValueError:
            ms = -1.0
        if ms >= 0:
            return ms / 1000.0
    value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(seconds, 0.0)
    return seconds if seconds >= 0 else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value
