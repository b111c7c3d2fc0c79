"""Test helpers: a loopback fake LLM provider with switchable fault modes, and time.

Point your policy's endpoints at :class:`FakeProvider` instances to test retries,
failover, breakers and deadlines against real sockets, without mocks and without keys.
Give the Router a :class:`VirtualClock` to pass reset timeouts and cache ages in no time,
or switch :func:`set_testing` on to make the real clock's backoff sleeps instant.
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
from ._time import VirtualClock, is_testing, set_testing

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
    "VirtualClock",
    "is_testing",
    "request_problem",
    "set_testing",
]
