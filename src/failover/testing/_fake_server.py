"""The HTTP machinery behind :class:`~failover.testing.FakeProvider`.

A ``ThreadingHTTPServer`` whose handler records each request, asks its owner which mode
applies, and shapes the wire response (from :mod:`._fake_protocol`) as that mode says.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._fake_protocol import (
    Api,
    Wire,
    api_for_path,
    echo_reply,
    error_reply,
    malformed_body,
    malformed_part,
    ok_reply,
    status_for_error_type,
    stream_error_part,
)
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
from ._reply import Reply
from ._schema import SchemaProblem, request_problem

__all__ = ["CapturedRequest", "FakeServer", "Ticket", "accept_loop"]


@dataclass(frozen=True, slots=True)
class CapturedRequest:
    """One request the fake received.

    Attributes:
        path: the request path, query string included.
        method: the HTTP method.
        headers: the request headers, names lowercased.
        body: the parsed JSON body; the raw text when it was not JSON, ``None`` when empty.
        received_at: ``time.monotonic()`` when the request was read.
        schema_error: why the body breaks the API's documented schema (the message of
            the 400 the real API would give), ``None`` when it is valid. Checked even
            when the fake does not validate.
    """

    path: str
    method: str
    headers: dict[str, str]
    body: Any
    received_at: float
    schema_error: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """What the owner decided for one request: its mode, sequence number and answer."""

    mode: Mode
    seq: int
    name: str
    text: str
    reply: Reply = field(default_factory=Reply)
    validate: bool = True


class FakeServer(ThreadingHTTPServer):
    """The HTTP server: tracks its connections so stopping can shut them all down."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], admit: Callable[[CapturedRequest], Ticket]
    ) -> None:
        self.admit = admit
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # HTTPServer.server_bind would look up the host's FQDN, which can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = self.socket.accept()
        # Nagle plus delayed ACK would add ~40 ms to a response written in two pieces.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(True)  # BSDs let accepted sockets inherit O_NONBLOCK
        with self._connections_lock:
            self._connections.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def shutdown_connections(self) -> None:
        """Wake every handler blocked on a read by shutting its socket down."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up mid-response is what the fault modes provoke; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests (keep-alive) as the request's mode says."""

    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        """Answer any POST as the mode says."""
        self._serve_one()

    def do_GET(self) -> None:
        """Answer any GET as the mode says (an unknown path gets a 404)."""
        self._serve_one()

    def _serve_one(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        body = _parse_body(raw)
        api = api_for_path(self.path)
        problem = request_problem(api, body) if api and isinstance(body, dict) else None
        captured = CapturedRequest(
            path=self.path,
            method=self.command,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
            schema_error=problem.message if problem else None,
        )
        ticket = self.server.admit(captured)
        try:
            self._apply(ticket, captured, problem)
        except OSError:
            # The client went away, or stop() shut the socket down under us.
            self.close_connection = True

    def _apply(
        self, ticket: Ticket, request: CapturedRequest, problem: SchemaProblem | None
    ) -> None:
        mode = ticket.mode
        if isinstance(mode, Reset):
            self._reset()
            return
        if isinstance(mode, Blackhole):
            self._hold()
            return
        if isinstance(mode, Latency) and self.server.stopping.wait(mode.seconds):
            self.close_connection = True
            return
        api = api_for_path(self.path)
        wire = _answer(api, ticket, request, problem)
        if not wire.head.startswith(b"HTTP/1.1 200"):
            # Errors (a refused body, Status, Echo) go out whole whatever the mode.
            self.wfile.write(wire.whole())
        elif isinstance(mode, CutStream):
            self._cut(wire, mode)
        elif isinstance(mode, StreamError) and wire.streaming:
            count = max(0, min(mode.after_events, len(wire.parts) - 1))
            error = stream_error_part(api or "anthropic", mode.error_type, mode.message)
            self.wfile.write(wire.head + b"".join(wire.parts[:count]) + error + wire.tail)
            self.close_connection = True
        elif isinstance(mode, MalformedEvent) and wire.streaming:
            count = min(mode.after_events, len(wire.parts))
            bad = malformed_part(api or "anthropic")
            parts = (*wire.parts[:count], bad, *wire.parts[count:])
            self.wfile.write(wire.head + b"".join(parts) + wire.tail)
        elif isinstance(mode, MalformedStream) and wire.streaming:
            bad = malformed_part(api or "anthropic") * mode.events
            self.wfile.write(wire.head + bad + wire.tail)
        elif isinstance(mode, Trickle):
            self._trickle(wire.whole(), mode)
        else:
            self.wfile.write(wire.whole())

    def _reset(self) -> None:
        self.close_connection = True
        # Linger on with a zero timeout turns close() into an RST instead of a FIN. The
        # descriptor really closes when the handler drops its read buffer, right after this.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _hold(self) -> None:
        self.close_connection = True
        # recv() returns b"" once the client closes or stop() shuts the socket down.
        while self.connection.recv(65536):
            pass

    def _cut(self, wire: Wire, mode: CutStream) -> None:
        if wire.streaming:
            count = max(0, min(mode.after_events, len(wire.parts) - 1))
            data = wire.head + b"".join(wire.parts[:count])
        else:
            body = b"".join(wire.parts)
            data = wire.head + body[: len(body) // 2]
        self.wfile.write(data)
        if mode.reset:
            self._reset()
        self.close_connection = True

    def _trickle(self, data: bytes, mode: Trickle) -> None:
        for start in range(0, len(data), mode.chunk):
            if start and self.server.stopping.wait(mode.interval):
                self.close_connection = True
                return
            self.wfile.write(data[start : start + mode.chunk])


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _answer(
    api: Api | None, ticket: Ticket, request: CapturedRequest, problem: SchemaProblem | None
) -> Wire:
    """The response a mode starts from, before any cutting or trickling."""
    mode, seq, body = ticket.mode, ticket.seq, request.body
    if api is None:
        return error_reply("anthropic", 404, seq=seq, message="Not found")
    if isinstance(mode, Status):
        headers: dict[str, str] = {}
        if mode.retry_after is not None:
            headers["retry-after"] = _number(mode.retry_after)
        if mode.retry_after_ms is not None:
            headers["retry-after-ms"] = _number(mode.retry_after_ms)
        return error_reply(
            api,
            mode.code,
            seq=seq,
            error_type=mode.error_type,
            message=mode.message,
            headers=headers,
        )
    if isinstance(mode, Echo):
        return echo_reply(api, mode.code, request.headers, body, seq=seq)
    if not isinstance(body, dict):
        return error_reply(api, 400, seq=seq, message="The request body is not valid JSON.")
    if problem is not None and ticket.validate:
        return error_reply(api, 400, seq=seq, message=problem.message, param=problem.param)
    stream = body.get("stream") is True
    if isinstance(mode, MalformedEvent | MalformedStream) and not stream:
        return malformed_body(seq)
    if isinstance(mode, StreamError) and not stream:
        status = status_for_error_type(mode.error_type)
        return error_reply(api, status, seq=seq, error_type=mode.error_type, message=mode.message)
    reply = mode.reply if isinstance(mode, Ok) and mode.reply is not None else ticket.reply
    return ok_reply(api, body, reply, text=ticket.text, model=ticket.name, seq=seq)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def accept_loop(server: FakeServer, wake: socket.socket) -> None:
    """Hand each new connection to a handler thread until ``wake`` becomes readable.

    ``serve_forever()`` polls for shutdown every half second; waiting on a wake-up socket
    as well lets ``FakeProvider.stop()`` return in about a millisecond.
    """
    with selectors.DefaultSelector() as selector:
        selector.register(server.socket, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        server.socket.setblocking(False)
        while True:
            for key, _ in selector.select():
                if key.fileobj is wake:
                    return
                try:
                    conn, addr = server.get_request()
                except OSError:  # BlockingIOError when the client gave up before accept
                    continue
                server.process_request(conn, addr)
