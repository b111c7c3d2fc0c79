"""HTTP framing for the fake provider: status lines, JSON bodies, chunked SSE streams."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

__all__ = ["Wire", "body_wire", "chunk", "dumps", "json_wire", "sse_wire"]

_REASONS = {200: "OK", 413: "Payload Too Large", 529: "Overloaded"}


@dataclass(frozen=True)
class Wire:
    """One HTTP response split where the fault modes need to cut it.

    Attributes:
        head: status line and headers, ending in the blank line.
        parts: the body: one chunk-framed SSE event each for a stream, else the whole body.
        tail: what ends the body (the last chunk of a chunked stream), often empty.
        streaming: whether ``parts`` are SSE events.
    """

    head: bytes
    parts: tuple[bytes, ...]
    tail: bytes = b""
    streaming: bool = False

    def whole(self) -> bytes:
        """The complete response, to be sent in one write."""
        return self.head + b"".join(self.parts) + self.tail


def _head(status: int, headers: dict[str, str]) -> bytes:
    reason = _REASONS.get(status) or _default_reason(status)
    lines = [f"HTTP/1.1 {status} {reason}", "server: failover-fake"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _default_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def chunk(data: bytes) -> bytes:
    """``data`` framed as one HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n"


def dumps(obj: Any) -> bytes:
    """Compact JSON, as the APIs send it."""
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def json_wire(status: int, obj: Any, headers: dict[str, str]) -> Wire:
    """A JSON response with a ``content-length``."""
    return body_wire(status, dumps(obj), headers)


def body_wire(status: int, body: bytes, headers: dict[str, str]) -> Wire:
    """A response with a JSON content type, ``body`` as is and its ``content-length``."""
    head = _head(
        status,
        {"content-type": "application/json", "content-length": str(len(body)), **headers},
    )
    return Wire(head=head, parts=(body,))


def sse_wire(events: list[bytes], headers: dict[str, str]) -> Wire:
    """A chunked ``text/event-stream`` response, one chunk per event."""
    head = _head(
        200,
        {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
            **headers,
        },
    )
    return Wire(head=head, parts=tuple(chunk(e) for e in events), tail=b"0\r\n\r\n", streaming=True)
