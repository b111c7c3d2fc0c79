"""A loopback fake LLM provider with switchable faults.

:class:`FakeProvider` runs a real HTTP/1.1 server on ``127.0.0.1`` that answers the
Anthropic Messages API (``POST /v1/messages``) and the OpenAI Chat Completions API
(``POST /v1/chat/completions``), as JSON or as SSE streams, so the real SDKs can be pointed
at it. Each request takes the next mode from a per-request script, else the standing mode,
which decides whether it is answered, delayed, refused with an HTTP status, reset, held
forever, cut mid-stream, broken by an error event, or trickled byte by byte.
"""

from __future__ import annotations

import collections
import socket
import threading
from types import TracebackType

from ._fake_server import CapturedRequest, FakeServer, Ticket, accept_loop
from ._modes import Mode, Ok
from ._reply import Reply

__all__ = ["CapturedRequest", "FakeProvider"]


class FakeProvider:
    """A loopback fake of the Anthropic and OpenAI APIs with switchable faults.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`) and point a client
    at :attr:`url` (Anthropic SDK ``base_url``) or :attr:`openai_url` (LiteLLM ``api_base``
    with a model such as ``openai/fake-model``). Every request takes the next mode queued
    by :meth:`script`, else the standing mode set by :meth:`set_mode`. All methods are
    thread-safe.

    Example::

        with FakeProvider(name="primary") as fake:
            fake.script(Status(529), Ok())
            client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
            ...
            assert fake.request_count == 2

    Args:
        name: shows in the default answer text and as the default model name.
        text: the answer's text; defaults to ``f"Hello from {name}"``.
        mode: the initial standing mode; defaults to :class:`Ok`.
        host: the address to listen on.
        port: the port to listen on; 0 picks a free one. After :meth:`stop`, :meth:`start`
            listens on the same port again.
        reply: what answers contain (tool calls, thinking, cache usage...) unless an
            ``Ok(reply=...)`` says otherwise; may be changed later through :attr:`reply`.
        validate: answer a request body that breaks the API's documented schema with the
            400 the real API gives (the default); ``False`` answers it anyway. Either
            way :attr:`CapturedRequest.schema_error` says what is wrong with it.
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        text: str | None = None,
        mode: Mode | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: Reply | None = None,
        validate: bool = True,
    ) -> None:
        self.name = name
        self.text = f"Hello from {name}" if text is None else text
        self.reply = Reply() if reply is None else reply
        self.validate = validate
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._mode: Mode = Ok() if mode is None else mode
        self._script: collections.deque[Mode] = collections.deque()
        self._requests: list[CapturedRequest] = []
        self._seq = 0
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"<FakeProvider {self.name!r} {where}>"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Start listening (does nothing when already running).

        Returns:
            The provider itself, so ``fake = FakeProvider().start()`` works.
        """
        with self._lock:
            if self._server is not None:
                return self
            server = FakeServer((self._host, self._port), self._admit)
            self._port = server.server_port
            self._wake = socket.socketpair()
            self._server = server
            self._thread = threading.Thread(
                target=accept_loop,
                args=(server, self._wake[0]),
                name=f"FakeProvider-{self.name}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (does nothing when stopped).

        Fast even while requests are held open by :class:`Blackhole`, :class:`Latency` or
        :class:`Trickle`: their connections are shut down. Afterwards the port refuses
        connections until :meth:`start` is called again.
        """
        with self._lock:
            server, thread, wake = self._server, self._thread, self._wake
            self._server = self._thread = self._wake = None
        if server is None or thread is None or wake is None:
            return
        server.stopping.set()
        wake[1].send(b"x")
        thread.join()
        server.server_close()
        server.shutdown_connections()
        for end in wake:
            end.close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (it stays known after :meth:`stop`).

        Raises:
            RuntimeError: before the first :meth:`start` with ``port=0``.
        """
        if not self._port:
            raise RuntimeError("FakeProvider has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL for the Anthropic SDK (``base_url``), e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """The base URL for OpenAI-style clients and LiteLLM's ``api_base``: ``url + "/v1"``."""
        return self.url + "/v1"

    @staticmethod
    def refused_url(host: str = "127.0.0.1") -> str:
        """A URL on a loopback port where nothing listens, so connecting is refused."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        return f"http://{host}:{port}"

    # -- modes -----------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The standing mode, applied whenever the script is empty."""
        with self._lock:
            return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Set the standing mode for all later requests (a pending script still goes first)."""
        with self._lock:
            self._mode = mode

    def script(self, *modes: Mode) -> None:
        """Queue one mode per coming request, replacing any script still pending.

        Once the queue is used up the standing mode applies again. ``script()`` with no
        arguments clears it.
        """
        with self._lock:
            self._script = collections.deque(modes)

    # -- what was received -----------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """Requests received, faulted ones too, since creation or :meth:`reset_counts`.

        A :meth:`stop` and :meth:`start` keep the count, so an outage test can compare
        before and after.
        """
        with self._lock:
            return len(self._requests)

    @property
    def requests(self) -> list[CapturedRequest]:
        """A copy of the requests received, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_counts(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def _admit(self, request: CapturedRequest) -> Ticket:
        """Record a request and pick its mode, atomically (called by the handler threads)."""
        with self._lock:
            self._requests.append(request)
            self._seq += 1
            mode = self._script.popleft() if self._script else self._mode
            return Ticket(
                mode=mode,
                seq=self._seq,
                name=self.name,
                text=self.text,
                reply=self.reply,
                validate=self.validate,
            )
