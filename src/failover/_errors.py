"""The exception hierarchy.

Every error the library raises derives from :class:`FailoverError`::

    FailoverError
    ├── PolicyError(FailoverError, ValueError)      bad policy file or dict
    ├── RouteNotFound(FailoverError, LookupError)
    ├── RequestError(FailoverError)                 the request itself was rejected (400/413/422)
    ├── AllEndpointsFailed(FailoverError)           every endpoint of the route failed
    │   └── DeadlineExceeded(AllEndpointsFailed, TimeoutError)
    └── StreamInterrupted(FailoverError)            a stream broke after text was yielded

Provider exceptions never escape raw: the router wraps each one with ``raise ... from err``,
so the original stays reachable as ``__cause__``. No message here ever holds an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._response import Attempt

__all__ = [
    "AllEndpointsFailed",
    "DeadlineExceeded",
    "FailoverError",
    "PolicyError",
    "PolicyIssue",
    "RequestError",
    "RouteNotFound",
    "StreamInterrupted",
]


class FailoverError(Exception):
    """Base class of every error raised by failover."""


class PolicyIssue:
    """One problem found in a policy: where it is and what is wrong.

    Attributes:
        source: the file name, or ``None`` for a policy given as a dict.
        line: 1-based line number in ``source``, or ``None`` when unknown.
        path: dotted key path such as ``endpoints.claude.timeout.read`` (may be empty).
        message: what is wrong, in words.
    """

    __slots__ = ("line", "message", "path", "source")

    def __init__(self, source: str | None, line: int | None, path: str, message: str) -> None:
        self.source = source
        self.line = line
        self.path = path
        self.message = message

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = f"{self.source}:{self.line}: " if self.line is not None else f"{self.source}: "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"

    def __repr__(self) -> str:
        return f"PolicyIssue({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicyIssue):
            return NotImplemented
        return (self.source, self.line, self.path, self.message) == (
            other.source,
            other.line,
            other.path,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.source, self.line, self.path, self.message))


class PolicyError(FailoverError, ValueError):
    """The policy file or dict is invalid.

    ``str()`` gives every issue, one per line, each starting ``FILE:LINE: `` when the
    policy came from YAML. ``issues`` holds them as :class:`PolicyIssue` objects.
    """

    def __init__(self, issues: Sequence[PolicyIssue] | str) -> None:
        if isinstance(issues, str):
            issues = [PolicyIssue(None, None, "", issues)]
        self.issues: tuple[PolicyIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class RouteNotFound(FailoverError, LookupError):
    """The named route is not in the policy, or no route was named and there is no default."""

    def __str__(self) -> str:
        # LookupError's str() would quote the message like a dict key.
        return str(self.args[0]) if self.args else ""


class RequestError(FailoverError):
    """The provider rejected the request itself (HTTP 400, 413 or 422).

    Another endpoint would reject it too, so there is no retry and no failover.

    Attributes:
        endpoint: the endpoint that rejected it.
        status_code: the HTTP status received.
        attempts: the attempts made so far in this call, this one last.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status_code: int | None,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status_code = status_code
        self.attempts: tuple[Attempt, ...] = tuple(attempts)


class AllEndpointsFailed(FailoverError):
    """Every endpoint of the route failed, and no cached answer could stand in.

    ``str()`` names the route and lists every attempt, one per line.

    Attributes:
        route: the route's name.
        attempts: every attempt in order, skipped ones included.
    """

    def __init__(self, route: str, attempts: Sequence[Attempt], reason: str = "") -> None:
        self.route = route
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
        self.reason = reason or "all endpoints failed"
        super().__init__(route, self.attempts)

    def __str__(self) -> str:
        lines = [f"route {self.route!r}: {self.reason} after {len(self.attempts)} attempt(s)"]
        lines.extend(f"  {attempt.describe()}" for attempt in self.attempts)
        return "\n".join(lines)


class DeadlineExceeded(AllEndpointsFailed, TimeoutError):
    """The route's deadline ran out before any endpoint answered."""


class StreamInterrupted(FailoverError):
    """A stream broke after some text had already been yielded.

    The text is never passed off as a complete answer.

    Attributes:
        partial_text: everything yielded before the break.
        attempts: every attempt of the call, the broken one last.
    """

    def __init__(self, message: str, *, partial_text: str, attempts: Sequence[Attempt]) -> None:
        super().__init__(message)
        self.partial_text = partial_text
        self.attempts: tuple[Attempt, ...] = tuple(attempts)
