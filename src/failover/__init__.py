"""failover: keep LLM calls working when providers fail.

Declare endpoints and routes in a YAML policy, then call ``Router.complete()``: every
endpoint sits behind a circuit breaker, transient failures are retried with backoff and
jitter, failing endpoints are skipped in favour of the next, and the whole call is
bounded by the route's deadline.

``import failover`` is cheap: the provider SDKs and pybreaker are imported when a Router
is built.
"""

from typing import TYPE_CHECKING, Any

from ._errors import (
    AllEndpointsFailed,
    DeadlineExceeded,
    FailoverError,
    PolicyError,
    PolicyIssue,
    RequestError,
    RouteNotFound,
    StreamInterrupted,
)
from ._response import Attempt, Response, Thinking, ToolCall, Usage
from ._router import Router
from ._status import EndpointStatus
from ._stream_events import (
    Finished,
    Restarted,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
)
from ._version import __version__

if TYPE_CHECKING:
    from .policy._model import Policy

__all__ = [
    "AllEndpointsFailed",
    "Attempt",
    "DeadlineExceeded",
    "EndpointStatus",
    "FailoverError",
    "Finished",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "RequestError",
    "Response",
    "Restarted",
    "RouteNotFound",
    "Router",
    "StreamEvent",
    "StreamInterrupted",
    "TextDelta",
    "Thinking",
    "ThinkingDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallStart",
    "Usage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # The policy models (pydantic) take ~0.2 s to build; load them when first asked for.
    if name == "Policy":
        from .policy._model import Policy

        return Policy
    raise AttributeError(f"module 'failover' has no attribute {name!r}")
