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
    "Failure",
    "FailureKind",
    "failure_from_status",
    "parse_retry_after",
    "status_for_error_type",
]

FailureKind = Literal[
    "connect",  # refused, reset, DNS: no response came
    "timeout",  # connect or read timeout, stalled stream
    "request_timeout",  # HTTP 408
    "rate_limited",  # HTTP 429
    "server",  # HTTP 500, 502, 503, 504 and other 5xx
    "overloaded",  # HTTP 529, or an overloaded_error event in a 200 stream
    "auth",  # HTTP 401, 403
    "not_found",  # HTTP 404
    "client",  # other 4xx: the endpoint refuses this caller
    "invalid_request",  # HTTP 400, 413, 422: the request itself is wrong
    "stream_cut",  # the stream ended before its final event
    "unknown",  # anything else the provider raised
]

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
        """Whether the request itself was rejected: no retry, no failover."""
        return self.kind == "invalid_request"

    @property
    def counts_against_breaker(self) -> bool:
        """Whether the endpoint's breaker records this as a failure."""
        return self.kind != "invalid_request"


def status_for_error_type(error_type: str | None) -> int | None:
    """The HTTP status an Anthropic error ``type`` stands for (``overloaded_error`` → 529)."""
    if error_type is None:
        return None
    return _ERROR_TYPE_STATUS.get(error_type)


def kind_for_status(status: int) -> FailureKind:
    """The failure kind of an HTTP status (only called for error statuses)."""
    if status in (400, 413, 422):
        return "invalid_request"
    if status in (401, 403):
        return "auth"
    kinds: dict[int, FailureKind] = {
        404: "not_found",
        408: "request_timeout",
        429: "rate_limited",
        529: "overloaded",
    }
    if status in kinds:
        return kinds[status]
    if status >= 500:
        return "server"
    return "client"


def failure_from_status(
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    detail: str = "",
    request_id: str | None = None,
    now: float | None = None,
) -> Failure:
    """Build the :class:`Failure` for an HTTP error status and its headers."""
    retry_after = None
    if headers is not None and status in (408, 429, 503, 529):
        retry_after = parse_retry_after(headers, now=now)
    return Failure(
        kind_for_status(status),
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
