"""Test helpers: a loopback fake LLM provider with switchable fault modes.

Point your policy's endpoints at :class:`FakeProvider` instances to test retries,
failover, breakers and deadlines against real sockets, without mocks and without keys.
"""

from ._fake import CapturedRequest, FakeProvider
from ._modes import (
    Blackhole,
    CutStream,
    Echo,
    Latency,
    MalformedEvent,
    MalformedStream,
    Mode,
    Ok,
    Reset,
    Status,
    StreamError,
    Trickle,
)
from ._reply import FakeToolCall, Reply
from ._schema import SchemaProblem, request_problem

__all__ = [
    "Blackhole",
    "CapturedRequest",
    "CutStream",
    "Echo",
    "FakeProvider",
    "FakeToolCall",
    "Latency",
    "MalformedEvent",
    "MalformedStream",
    "Mode",
    "Ok",
    "Reply",
    "Reset",
    "SchemaProblem",
    "Status",
    "StreamError",
    "Trickle",
    "request_problem",
]
