"""The fault modes of :class:`~failover.testing.FakeProvider`.

Each mode is a small frozen value saying how the fake answers one request; the server
reads it and shapes its response accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._reply import Reply

__all__ = [
    "Blackhole",
    "CutStream",
    "Echo",
    "Latency",
    "MalformedEvent",
    "MalformedStream",
    "Mode",
    "Ok",
    "Reset",
    "Status",
    "StreamError",
    "Trickle",
]


@dataclass(frozen=True, slots=True)
class Ok:
    """Answer normally.

    Attributes:
        reply: what this answer contains (tool calls, thinking, cache usage...); by default
            the fake's standing ``reply``.
    """

    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class Latency:
    """Wait ``seconds`` before answering normally.

    Attributes:
        seconds: the delay before the first byte of the response.
    """

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("Latency seconds must be >= 0")


@dataclass(frozen=True, slots=True)
class Status:
    """Answer with an HTTP error status and the API's own error body.

    Attributes:
        code: the HTTP status, 400-599.
        retry_after: when set, sent as the ``retry-after`` header (seconds).
        retry_after_ms: when set, sent as the ``retry-after-ms`` header (milliseconds).
        error_type: the body's error ``type``; by default the one the API uses for ``code``
            (Anthropic: 429 ``rate_limit_error``, 529 ``overloaded_error``...).
        message: the body's error message; by default a short one for ``code``.
    """

    code: int
    retry_after: float | None = None
    retry_after_ms: float | None = None
    error_type: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.code <= 599:
            raise ValueError(f"Status code must be 400-599, not {self.code}")


@dataclass(frozen=True, slots=True)
class Reset:
    """Read the request, then abort the connection with a TCP RST (no response at all)."""


@dataclass(frozen=True, slots=True)
class Blackhole:
    """Read the request and never answer; the connection stays open until the client gives up."""


@dataclass(frozen=True, slots=True)
class CutStream:
    """Start the response, then drop the connection before it is complete.

    For a stream: the headers and ``after_events`` SSE events (never the last one), then the
    connection closes. For a non-stream request: the headers and half the body.

    Attributes:
        after_events: how many SSE events to send before cutting (``ping`` counts).
        reset: close with a TCP RST instead of a FIN (httpx2 then raises ``ReadError``
            rather than ``RemoteProtocolError``).
    """

    after_events: int = 0
    reset: bool = False


@dataclass(frozen=True, slots=True)
class StreamError:
    """Answer HTTP 200, send ``after_events`` SSE events, then an error event, then close.

    This is how Anthropic reports overload mid-stream. The OpenAI endpoint sends a
    ``data: {"error": {...}}`` line instead. A request that did not ask for a stream gets
    the HTTP status the error type stands for (``overloaded_error`` = 529,
    ``rate_limit_error`` = 429, ``api_error`` = 500...).

    Attributes:
        error_type: the error event's ``type``.
        after_events: normal events sent before the error event (``ping`` counts; at most
            all but the last, so the message never completes).
        message: the error message; by default a short one for the type.
    """

    error_type: str = "overloaded_error"
    after_events: int = 0
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Trickle:
    """Answer normally, but send the response ``chunk`` bytes every ``interval`` seconds.

    Every read on the client side gets a few bytes well within any per-read timeout, so
    only an overall deadline stops the call. A whole response takes
    ``len(response) / chunk * interval`` seconds.

    Attributes:
        interval: seconds between writes.
        chunk: bytes per write.
    """

    interval: float = 0.2
    chunk: int = 1

    def __post_init__(self) -> None:
        if self.interval < 0 or self.chunk < 1:
            raise ValueError("Trickle needs interval >= 0 and chunk >= 1")


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """Answer a healthy stream with one malformed SSE event (invalid JSON) inserted.

    The bad event goes after ``after_events`` good ones (``ping`` counts) and the rest of
    the stream follows unchanged. A request that did not ask for a stream gets HTTP 200
    with a body that is not valid JSON.

    Attributes:
        after_events: good events sent before the malformed one.
    """

    after_events: int = 1

    def __post_init__(self) -> None:
        if self.after_events < 0:
            raise ValueError("MalformedEvent after_events must be >= 0")


@dataclass(frozen=True, slots=True)
class MalformedStream:
    """Answer HTTP 200 with a stream of nothing but malformed SSE events, then end it.

    A request that did not ask for a stream gets HTTP 200 with a body that is not valid
    JSON.

    Attributes:
        events: how many malformed events to send.
    """

    events: int = 3

    def __post_init__(self) -> None:
        if self.events < 1:
            raise ValueError("MalformedStream events must be >= 1")


@dataclass(frozen=True, slots=True)
class Echo:
    """Answer an error status whose message echoes the request's credentials and prompt.

    Some providers quote the API key they were given ("Incorrect API key provided:
    sk-...") or the offending input back in an error. This mode does both, so a test can
    check that the key and the prompt never reach an exception, a log line or a repr.

    Attributes:
        code: the HTTP status, 400-599.
    """

    code: int = 401

    def __post_init__(self) -> None:
        if not 400 <= self.code <= 599:
            raise ValueError(f"Echo code must be 400-599, not {self.code}")


Mode = (
    Ok
    | Latency
    | Status
    | Reset
    | Blackhole
    | CutStream
    | StreamError
    | Trickle
    | MalformedEvent
    | MalformedStream
    | Echo
)
"""Any fault mode."""
