"""A minimal asyncio HTTP/1.1 fake of the Anthropic and OpenAI APIs, for throughput runs.

``failover.testing.FakeProvider`` runs a thread per connection on ``http.server``; on two
cores it tops out near 500 requests/s, about the async SDK's own ceiling, so a throughput
benchmark against it measures the fake. This one is an ``asyncio.Protocol``: keep-alive,
requests parsed straight from the buffer, each response sent with a single ``write``,
``TCP_NODELAY`` on every connection. It runs in a process of its own so that it competes
with the client for a core, not for the client's GIL.

    python bench/fake_async_server.py [--port 0] [--latency SECONDS]

It prints its port on the first line of stdout, then serves until it is killed or, when
stdin is a pipe, until that pipe closes (so it never outlives the parent that started
it). Answers:

- ``POST /v1/messages``: a fixed Anthropic ``message`` (JSON);
- ``POST /v1/chat/completions`` (and ``/chat/completions``): a fixed OpenAI
  ``chat.completion`` (JSON);
- ``GET /count``: requests answered so far on the two POST routes, as a bare integer;
- ``GET /cpu``: CPU seconds this server process has used, so a benchmark can show the
  fake was not the bottleneck.

Loopback only; nothing it receives is parsed beyond the request line and headers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import stat
import sys
import time

ANTHROPIC_BODY = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": [{"type": "text", "text": "Hello from the async fake"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 6},
    },
    separators=(",", ":"),
).encode()

OPENAI_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the async fake"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    },
    separators=(",", ":"),
).encode()


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"content-type: " + content_type + b"\r\n"
        b"request-id: req_bench\r\n"
        b"connection: keep-alive\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


ANTHROPIC = _response("200 OK", ANTHROPIC_BODY)
OPENAI = _response("200 OK", OPENAI_BODY)
NOT_FOUND = _response("404 Not Found", b'{"error":"not found"}')


class Counter:
    served = 0


class HTTPProtocol(asyncio.Protocol):
    """One keep-alive connection: parse each request from the buffer, answer in one write."""

    def __init__(self, latency: float) -> None:
        self._latency = latency
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].decode("latin-1")
            length = 0
            close = False
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip())
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            if len(self._buffer) < end + 4 + length:
                return  # the body is still on its way
            self._buffer = self._buffer[end + 4 + length :]
            method, _, rest = head.partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            self._answer(method, path, close)

    def _answer(self, method: str, path: str, close: bool) -> None:
        if method == "POST" and path.endswith("/messages"):
            payload = ANTHROPIC
        elif method == "POST" and path.endswith("/chat/completions"):
            payload = OPENAI
        elif method == "GET" and path in ("/count", "/cpu"):
            value = Counter.served if path == "/count" else time.process_time()
            self._send(_response("200 OK", str(value).encode(), b"text/plain"), close)
            return
        else:
            payload = NOT_FOUND
        Counter.served += payload is not NOT_FOUND
        if self._latency > 0:
            asyncio.get_running_loop().call_later(self._latency, self._send, payload, close)
        else:
            self._send(payload, close)

    def _send(self, payload: bytes, close: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(payload)
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(port: int, latency: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HTTPProtocol(latency), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096):  # EOF: the parent is gone
            stop.set()

    try:
        if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
            loop.add_reader(sys.stdin.fileno(), on_stdin)
    except (OSError, ValueError, NotImplementedError):
        pass  # no pipe to watch: serve until killed
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.latency))


if __name__ == "__main__":
    main()
