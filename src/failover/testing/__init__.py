"""Test helpers: a loopback fake LLM provider with switchable fault modes.

Point your policy's endpoints at :class:`FakeProvider` instances to test retries,
failover, breakers and deadlines against real sockets, without mocks and without keys.
"""

from ._fake import CapturedRequest, FakeProvider
from ._modes import (
    Blackhole,
    CutStream,
    Latency,
    Mode,
    Ok,
    Reset,
    Status,
    StreamError,
    Trickle,
)

__all__ = [
    "Blackhole",
    "CapturedRequest",
    "CutStream",
    "FakeProvider",
    "Latency",
    "Mode",
    "Ok",
    "Reset",
    "Status",
    "StreamError",
    "Trickle",
]
