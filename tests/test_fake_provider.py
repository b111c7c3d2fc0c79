"""FakeProvider: the real anthropic SDK and LiteLLM against the loopback fake, every mode."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from failover.testing import (
    Blackhole,
    CutStream,
    Echo,
    FakeProvider,
    FakeToolCall,
    Latency,
    MalformedEvent,
    MalformedStream,
    Ok,
    Reply,
    Reset,
    Status,
    StreamError,
    Trickle,
)

MESSAGES = [{"role": "user", "content": "Say hello to me"}]
ANTHROPIC_STREAM_EVENTS = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(name="primary") as provider:
        yield provider


@pytest.fixture
def client(fake: FakeProvider) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key="test-key",
        base_url=fake.url,
        max_retries=0,
        timeout=anthropic.Timeout(5, connect=2),
    ) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    module = pytest.importorskip("litellm")
    module.suppress_debug_info = True
    return module


def create(client: anthropic.Anthropic, **kwargs: Any) -> Any:
    return client.messages.create(
        model="claude-test", max_tokens=kwargs.pop("max_tokens", 100), messages=MESSAGES, **kwargs
    )


def llm(litellm: Any, fake: FakeProvider, **kwargs: Any) -> Any:
    params: dict[str, Any] = {
        "model": "openai/fake-model",
        "api_base": fake.openai_url,
        "api_key": "k",
        "messages": [{"role": "system", "content": "be brief"}, *MESSAGES],
        "max_retries": 0,
        "num_retries": 0,
        "timeout": 5,
    }
    return litellm.completion(**{**params, **kwargs})


def raw_post(fake: FakeProvider, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def collect(items: Iterable[Any], into: list[str], pick: Callable[[Any], str]) -> None:
    for item in items:
        into.append(pick(item))


def exception_chain(err: BaseException) -> list[type[BaseException]]:
    chain: list[type[BaseException]] = []
    cur: BaseException | None = err
    while cur is not None:
        chain.append(type(cur))
        cur = cur.__cause__ or cur.__context__
    return chain


# -- Anthropic: successful answers ------------------------------------------------------------


def test_anthropic_json_answer(client: anthropic.Anthropic) -> None:
    """A plain request gets the named answer, the model echoed, word-count usage, end_turn."""
    msg = create(client, system="You are terse")
    assert msg.content[0].text == "Hello from primary"
    assert msg.model == "claude-test"
    assert msg.id.startswith("msg_")
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (7, 3)


def test_anthropic_max_tokens_truncates(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """More words than max_tokens are cut to max_tokens words with stop_reason max_tokens."""
    fake.text = "one two three four five"
    msg = create(client, max_tokens=2)
    assert (msg.content[0].text, msg.stop_reason, msg.usage.output_tokens) == (
        "one two",
        "max_tokens",
        2,
    )
    with client.messages.stream(model="m", max_tokens=3, messages=MESSAGES) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert deltas == ["one ", "two ", "three"]
    assert final.stop_reason == "max_tokens"


def test_anthropic_stream_events(client: anthropic.Anthropic) -> None:
    """A stream yields the real API's event sequence, one text delta per word."""
    events = list(create(client, stream=True))
    assert [e.type for e in events] == [t for t in ANTHROPIC_STREAM_EVENTS if t != "ping"]
    assert [e.delta.text for e in events if e.type == "content_block_delta"] == [
        "Hello ",
        "from ",
        "primary",
    ]
    assert events[0].message.usage.input_tokens == 4
    assert events[-2].delta.stop_reason == "end_turn"
    assert events[-2].usage.output_tokens == 3


def test_anthropic_stream_wire_format(fake: FakeProvider) -> None:
    """On the wire the stream is chunked SSE with a ping after content_block_start."""
    body = json.dumps({"model": "m", "max_tokens": 9, "messages": MESSAGES, "stream": True})
    status, headers, data = raw_post(fake, "/v1/messages", body.encode())
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"
    kinds = [line[7:] for line in data.decode().splitlines() if line.startswith("event: ")]
    assert kinds == ANTHROPIC_STREAM_EVENTS


def test_anthropic_stream_helper(client: anthropic.Anthropic) -> None:
    """The SDK's stream helper assembles the text and final usage."""
    with client.messages.stream(model="m", max_tokens=50, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from primary"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 3)


async def test_async_anthropic(fake: FakeProvider) -> None:
    """AsyncAnthropic works against the fake, for JSON, streams and faults."""
    async with anthropic.AsyncAnthropic(
        api_key="k", base_url=fake.url, max_retries=0, timeout=anthropic.Timeout(5, connect=2)
    ) as sdk:
        msg = await sdk.messages.create(model="m", max_tokens=10, messages=MESSAGES)
        assert msg.content[0].text == "Hello from primary"
        async with sdk.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
            assert [t async for t in stream.text_stream] == ["Hello ", "from ", "primary"]
        fake.set_mode(Status(529))
        with pytest.raises(anthropic.OverloadedError):
            await sdk.messages.create(model="m", max_tokens=10, messages=MESSAGES)


# -- Anthropic: faults --------------------------------------------------------------------------


def test_status_529(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """Status(529) raises the SDK's OverloadedError with status, type and request id."""
    fake.set_mode(Status(529))
    with pytest.raises(anthropic.APIStatusError) as info:
        create(client)
    err = info.value
    assert isinstance(err, anthropic.OverloadedError)
    assert (err.status_code, err.type) == (529, "overloaded_error")
    assert err.request_id is not None
    assert err.request_id.startswith("req_")
    assert err.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": err.request_id,
    }


def test_status_retry_after_headers(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """Status(429, retry_after_ms=...) sends the headers, visible on the exception's response."""
    fake.set_mode(Status(429, retry_after=2, retry_after_ms=1500))
    with pytest.raises(anthropic.RateLimitError) as info:
        create(client)
    assert info.value.response.headers["retry-after-ms"] == "1500"
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.type == "rate_limit_error"


@pytest.mark.parametrize(
    ("code", "error_type", "exc"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (413, "request_too_large", anthropic.APIStatusError),
        (500, "api_error", anthropic.InternalServerError),
        (503, "api_error", anthropic.InternalServerError),
    ],
)
def test_status_error_types(
    fake: FakeProvider,
    client: anthropic.Anthropic,
    code: int,
    error_type: str,
    exc: type[Exception],
) -> None:
    """Each status carries the error type the real API uses for it."""
    fake.set_mode(Status(code))
    with pytest.raises(exc) as info:
        create(client)
    assert isinstance(info.value, anthropic.APIStatusError)
    assert (info.value.status_code, info.value.type) == (code, error_type)


def test_reset(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """Reset aborts the connection: the SDK raises APIConnectionError over httpx2.ReadError."""
    fake.set_mode(Reset())
    with pytest.raises(anthropic.APIConnectionError) as info:
        create(client)
    assert not isinstance(info.value, anthropic.APITimeoutError)
    assert isinstance(info.value.__cause__, httpx2.ReadError)
    assert fake.request_count == 1


def test_blackhole_times_out_and_stops_fast(fake: FakeProvider) -> None:
    """Blackhole runs into the client's read timeout, and stop() is fast with it open."""
    fake.set_mode(Blackhole())
    timeout = anthropic.Timeout(0.3, connect=2)
    with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0, timeout=timeout) as c:
        started = time.monotonic()
        with pytest.raises(anthropic.APITimeoutError):
            create(c)
        assert 0.29 < time.monotonic() - started < 2
    held = socket.create_connection(("127.0.0.1", fake.port), timeout=2)
    held.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
    deadline = time.monotonic() + 2
    while fake.request_count < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 0.1
    assert held.recv(100) == b""  # the held connection was shut down, not left hanging
    held.close()


def test_cut_stream(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """CutStream drops a stream mid-way: the raw httpx2.RemoteProtocolError escapes the SDK."""
    fake.set_mode(CutStream(after_events=4))
    seen: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):
        collect(create(client, stream=True), seen, lambda event: event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]


def test_cut_stream_with_reset(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """CutStream(reset=True) ends with an RST instead: httpx2.ReadError escapes the helper."""
    fake.set_mode(CutStream(after_events=5, reset=True))
    text: list[str] = []
    with (
        pytest.raises(httpx2.ReadError),
        client.messages.stream(model="m", max_tokens=50, messages=MESSAGES) as stream,
    ):
        text.extend(stream.text_stream)
    assert text == ["Hello ", "from "]


def test_cut_non_stream(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """CutStream on a JSON request sends half the body: APIConnectionError."""
    fake.set_mode(CutStream())
    with pytest.raises(anthropic.APIConnectionError) as info:
        create(client)
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)


def test_stream_error_event(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """StreamError sends an error event in a 200 stream: APIStatusError, status 200, .type."""
    fake.set_mode(StreamError("overloaded_error", after_events=3))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        collect(create(client, stream=True), seen, lambda event: event.type)
    err = info.value
    assert type(err) is anthropic.APIStatusError
    assert (err.status_code, err.type, err.api_message) == (200, "overloaded_error", "Overloaded")
    assert err.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert seen == ["message_start", "content_block_start"]


def test_stream_error_on_json_request(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """StreamError on a non-stream request answers the status its type stands for."""
    fake.set_mode(StreamError("rate_limit_error"))
    with pytest.raises(anthropic.RateLimitError):
        create(client)


def test_latency(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """Latency delays the answer, which then arrives normally."""
    fake.set_mode(Latency(0.15))
    started = time.monotonic()
    assert create(client).content[0].text == "Hello from primary"
    assert time.monotonic() - started >= 0.15


def test_trickle_outlives_read_timeout(fake: FakeProvider) -> None:
    """Trickle keeps every read under the read timeout while the call runs longer than it."""
    fake.set_mode(Trickle(interval=0.02, chunk=40))
    timeout = anthropic.Timeout(0.15, connect=2)
    with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0, timeout=timeout) as c:
        started = time.monotonic()
        msg = create(c)
        elapsed = time.monotonic() - started
    assert msg.content[0].text == "Hello from primary"
    assert elapsed > 0.15


def test_stop_is_fast_while_trickling(fake: FakeProvider) -> None:
    """stop() cuts a trickling response short instead of waiting for it."""
    fake.set_mode(Trickle(interval=0.5, chunk=1))
    held = socket.create_connection(("127.0.0.1", fake.port), timeout=2)
    held.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
    assert held.recv(1) == b"H"
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 0.1
    held.close()


# -- OpenAI Chat Completions through LiteLLM ---------------------------------------------------


def test_litellm_json_answer(litellm: Any, fake: FakeProvider) -> None:
    """LiteLLM gets the answer, usage and finish_reason from the OpenAI endpoint."""
    resp = llm(litellm, fake)
    assert resp.choices[0].message.content == "Hello from primary"
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (6, 3)
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].body["model"] == "fake-model"
    assert fake.requests[0].headers["authorization"] == "Bearer k"

    resp = llm(litellm, fake, max_tokens=1)
    assert (resp.choices[0].message.content, resp.choices[0].finish_reason) == ("Hello", "length")


def test_litellm_stream(litellm: Any, fake: FakeProvider) -> None:
    """LiteLLM streams one delta per word, then the finish reason and usage."""
    chunks = list(llm(litellm, fake, stream=True, stream_options={"include_usage": True}))
    text = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert text == ["Hello ", "from ", "primary"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 3

    chunks = list(llm(litellm, fake, stream=True, max_tokens=2))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"


def test_openai_wire_format(fake: FakeProvider) -> None:
    """The OpenAI stream ends with data: [DONE]; errors use OpenAI's error body."""
    body = json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode()
    status, _, data = raw_post(fake, "/v1/chat/completions", body)
    lines = [line for line in data.decode().splitlines() if line]
    assert status == 200
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"

    fake.set_mode(Status(429, retry_after=1))
    status, headers, data = raw_post(fake, "/v1/chat/completions", body)
    assert (status, headers["retry-after"]) == (429, "1")
    assert set(json.loads(data)["error"]) == {"message", "type", "param", "code"}


def test_litellm_529(litellm: Any, fake: FakeProvider) -> None:
    """LiteLLM reports Status(529) as litellm.APIError with status_code 529."""
    fake.set_mode(Status(529))
    with pytest.raises(litellm.APIError) as info:
        llm(litellm, fake)
    assert info.value.status_code == 529


def test_litellm_429_headers(litellm: Any, fake: FakeProvider) -> None:
    """LiteLLM's RateLimitError carries the retry-after-ms header on .response."""
    fake.set_mode(Status(429, retry_after_ms=1500))
    with pytest.raises(litellm.RateLimitError) as info:
        llm(litellm, fake)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after-ms"] == "1500"


def test_litellm_connection_failures_look_like_500(litellm: Any, fake: FakeProvider) -> None:
    """Reset and refused arrive as InternalServerError(500); only the chain tells them apart."""
    import openai

    fake.set_mode(Status(500))
    with pytest.raises(litellm.InternalServerError) as real:
        llm(litellm, fake)
    assert openai.APIConnectionError not in exception_chain(real.value)
    assert real.value.response.headers["x-request-id"].startswith("req_")

    fake.set_mode(Reset())
    with pytest.raises(litellm.InternalServerError) as reset:
        llm(litellm, fake)
    refused_url = FakeProvider.refused_url() + "/v1"
    with pytest.raises(litellm.InternalServerError) as refused:
        llm(litellm, fake, api_base=refused_url)
    for err in (reset.value, refused.value):
        assert err.status_code == 500
        assert "Connection error." in str(err)
        assert openai.APIConnectionError in exception_chain(err)
        assert "x-request-id" not in err.response.headers
    assert ConnectionResetError in exception_chain(reset.value)
    assert ConnectionRefusedError in exception_chain(refused.value)


def test_litellm_timeout(litellm: Any, fake: FakeProvider) -> None:
    """A blackholed request becomes litellm.Timeout (status_code 408) after the timeout."""
    fake.set_mode(Blackhole())
    with pytest.raises(litellm.Timeout) as info:
        llm(litellm, fake, timeout=0.3)
    assert info.value.status_code == 408


def test_litellm_stream_error(litellm: Any, fake: FakeProvider) -> None:
    """An OpenAI stream error line becomes MidStreamFallbackError (status 500)."""
    fake.set_mode(StreamError("overloaded_error", after_events=2))
    text: list[str] = []
    with pytest.raises(litellm.exceptions.MidStreamFallbackError) as info:
        collect(llm(litellm, fake, stream=True), text, lambda c: c.choices[0].delta.content or "")
    assert info.value.status_code == 500
    assert "Overloaded" in str(info.value)
    assert "".join(text) == "Hello "
    assert info.value.generated_content == "Hello "
    assert not info.value.is_pre_first_chunk


# -- scripting, counting, lifecycle ---------------------------------------------------------------


def test_script_then_standing_mode(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """A script is consumed one mode per request, then the standing mode applies."""
    fake.set_mode(Status(500))
    fake.script(Status(529), Status(429), Ok())
    outcomes: list[int] = []
    for _ in range(4):
        try:
            create(client)
            outcomes.append(200)
        except anthropic.APIStatusError as err:
            outcomes.append(err.status_code)
    assert outcomes == [529, 429, 200, 500]
    assert fake.request_count == 4


def test_captured_requests(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """Every request is counted and captured with path, headers and body; reset_counts clears."""
    fake.script(Status(503))
    with pytest.raises(anthropic.InternalServerError):
        create(client)
    create(client, stop_sequences=["END"], extra_body={"temperature": 0.5})
    assert fake.request_count == 2
    first, second = fake.requests
    assert (first.method, first.path) == ("POST", "/v1/messages")
    # anthropic 2.13 sends the API key as a bearer token, not as x-api-key.
    assert first.headers["authorization"] == "Bearer test-key"
    assert second.body["temperature"] == 0.5
    assert second.body["stop_sequences"] == ["END"]
    assert second.body["messages"] == MESSAGES
    assert first.received_at <= second.received_at <= time.monotonic()
    fake.reset_counts()
    assert (fake.request_count, fake.requests) == (0, [])


def test_unknown_path_and_bad_json(fake: FakeProvider) -> None:
    """An unknown path gets a 404, a body that is not JSON a 400, both counted."""
    status, _, data = raw_post(fake, "/v2/nothing", b"{}")
    assert (status, json.loads(data)["error"]["type"]) == (404, "not_found_error")
    status, _, data = raw_post(fake, "/v1/messages", b"not json")
    assert (status, json.loads(data)["error"]["type"]) == (400, "invalid_request_error")
    assert fake.requests[1].body == "not json"
    assert fake.request_count == 2


def test_thread_safety(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """20 threads x 5 requests: every request counted once, scripted modes used exactly once."""
    fake.script(*[Status(529)] * 30)
    failures: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            try:
                create(client)
            except anthropic.APIStatusError as err:
                with lock:
                    failures.append(err.status_code)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert fake.request_count == 100
    assert failures == [529] * 30


def test_refused_url() -> None:
    """refused_url points at a loopback port where connecting is refused."""
    url = FakeProvider.refused_url()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with (
        anthropic.Anthropic(api_key="k", base_url=url, max_retries=0) as c,
        pytest.raises(anthropic.APIConnectionError) as info,
    ):
        create(c)
    assert isinstance(info.value.__cause__, httpx2.ConnectError)


def test_stop_refuses_and_restart_reuses_port() -> None:
    """After stop() the port refuses; start() listens on the same port again."""
    fake = FakeProvider(name="again", port=0)
    with pytest.raises(RuntimeError):
        _ = fake.port
    started = time.monotonic()
    fake.start()
    assert time.monotonic() - started < 0.05
    port = fake.port
    fake.stop()
    fake.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with fake:
        assert fake.port == port
        assert fake.start() is fake  # idempotent
        with anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0) as c:
            assert create(c).content[0].text == "Hello from again"
            fake.stop()
            fake.start()
            assert create(c).content[0].text == "Hello from again"
        assert fake.request_count == 2  # a restart keeps the count
        assert FakeProvider(port=port).port == port


def test_initial_mode_and_validation() -> None:
    """The constructor's mode is the standing mode; nonsense modes are rejected."""
    with FakeProvider(mode=Status(500), text="custom") as fake:
        assert fake.mode == Status(500)
        assert fake.text == "custom"
    with pytest.raises(ValueError):
        Status(200)
    with pytest.raises(ValueError):
        Latency(-1)
    with pytest.raises(ValueError):
        Trickle(chunk=0)


def test_no_nagle_stall(client: anthropic.Anthropic) -> None:
    """Sequential calls take a few ms, not the ~40 ms of a Nagle/delayed-ACK stall."""
    create(client)
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        create(client)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.03


# -- scripted replies: tool calls, thinking, cache usage, media ----------------------------

WEATHER = Reply(
    text="Let me check.",
    tool_calls=[
        ("get_weather", {"city": "Paris", "units": "celsius"}),
        FakeToolCall("noop", id="t2"),
    ],
    thinking="The user wants the weather",
    signature="sig-123",
    cache_read_tokens=100,
    cache_write_tokens=20,
)
TOOL_ARGS = {"city": "Paris", "units": "celsius"}


def sse_events(data: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) for each SSE event; the data is raw text when not JSON."""
    events: list[tuple[str | None, Any]] = []
    for block in data.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            try:
                events.append((lines.get("event"), json.loads(lines["data"])))
            except ValueError:
                events.append((lines.get("event"), lines["data"]))
    return events


def stream_body(**extra: Any) -> bytes:
    return json.dumps(
        {"model": "m", "max_tokens": 2000, "messages": MESSAGES, "stream": True, **extra}
    ).encode()


def test_anthropic_reply_with_tool_calls_and_thinking(
    fake: FakeProvider, client: anthropic.Anthropic
) -> None:
    """The SDK parses thinking (with signature), text, tool_use blocks and cache usage from JSON."""
    fake.reply = WEATHER
    message = create(client, max_tokens=2000)
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert (message.content[0].thinking, message.content[0].signature) == (
        "The user wants the weather",
        "sig-123",
    )
    assert message.content[2].input == TOOL_ARGS
    assert message.content[2].id.startswith("toolu_")
    assert (message.content[3].id, message.content[3].input) == ("t2", {})
    usage = message.usage
    assert (
        usage.input_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    ) == (4, 100, 20)
    assert usage.output_tokens == 3 + 5 + 2  # text words, thinking words, one per call


def test_anthropic_stream_with_tool_calls_and_thinking(
    fake: FakeProvider, client: anthropic.Anthropic
) -> None:
    """The SDK's stream accumulator rebuilds the message from thinking/signature/JSON deltas."""
    fake.reply = WEATHER
    with client.messages.stream(model="m", max_tokens=2000, messages=MESSAGES) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        message = stream.get_final_message()
    assert set(deltas) == {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"}
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].signature == "sig-123"
    assert message.content[2].input == TOOL_ARGS
    assert message.stop_reason == "tool_use"
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (
        100,
        20,
    )


def test_anthropic_tool_stream_wire_sequence(fake: FakeProvider) -> None:
    """Each block is start / deltas / stop in order; the tool block starts with empty input."""
    fake.reply = Reply(text="", tool_calls=[("f", {"a": 1})])
    _, _, data = raw_post(fake, "/v1/messages", stream_body())
    events = sse_events(data)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1][1]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_fake00000100",
        "name": "f",
        "input": {},
    }
    assert [e[1]["delta"]["partial_json"] for e in events[3:5]] == ["", '{"a":1}']
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_litellm_reply_with_tool_calls_and_reasoning(litellm: Any, fake: FakeProvider) -> None:
    """LiteLLM parses tool_calls (arguments a JSON string), reasoning_content and cached tokens."""
    fake.reply = WEATHER
    resp = llm(litellm, fake)
    message = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me check."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather", TOOL_ARGS),
        ("noop", {}),
    ]
    assert message.tool_calls[0].id.startswith("call_")
    assert message.reasoning_content == "The user wants the weather"
    assert resp.usage.prompt_tokens == 6 + 100 + 20
    assert resp.usage.prompt_tokens_details.cached_tokens == 100
    assert resp.usage.completion_tokens_details.reasoning_tokens == 5


def test_litellm_stream_with_tool_calls(litellm: Any, fake: FakeProvider) -> None:
    """Streamed tool-call deltas (index, id, name, then argument fragments) rebuild the calls."""
    fake.reply = WEATHER
    chunks = list(llm(litellm, fake, stream=True, stream_options={"include_usage": True}))
    built = litellm.stream_chunk_builder(chunks)
    message = built.choices[0].message
    assert built.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls][
        1
    ] == (
        "t2",
        "noop",
        {},
    )
    assert json.loads(message.tool_calls[0].function.arguments) == TOOL_ARGS
    assert message.reasoning_content == "The user wants the weather"
    assert built.usage.prompt_tokens_details.cached_tokens == 100


def test_openai_stream_usage_only_when_asked(fake: FakeProvider) -> None:
    """The usage chunk comes only with stream_options.include_usage, as on the real API."""
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    _, _, data = raw_post(fake, "/v1/chat/completions", json.dumps(body).encode())
    assert not [e for _, e in sse_events(data) if isinstance(e, dict) and "usage" in e]
    body["stream_options"] = {"include_usage": True}
    _, _, data = raw_post(fake, "/v1/chat/completions", json.dumps(body).encode())
    usage = [e for _, e in sse_events(data) if isinstance(e, dict) and "usage" in e]
    assert usage[0]["choices"] == []
    assert usage[0]["usage"]["completion_tokens"] == 3


def test_reply_without_usage(fake: FakeProvider) -> None:
    """Reply(usage=False) leaves usage out of JSON answers and streams on both APIs."""
    fake.reply = Reply(usage=False)
    for path, body in [
        ("/v1/messages", {"model": "m", "max_tokens": 9, "messages": MESSAGES}),
        ("/v1/chat/completions", {"model": "m", "messages": MESSAGES}),
    ]:
        _, _, data = raw_post(fake, path, json.dumps(body).encode())
        assert "usage" not in json.loads(data)
        _, _, data = raw_post(fake, path, json.dumps({**body, "stream": True}).encode())
        assert b"usage" not in data
        assert b"tokens" not in data


def test_ok_reply_overrides_standing_reply_and_describes_media(
    fake: FakeProvider, client: anthropic.Anthropic
) -> None:
    """Ok(reply=...) is used for one request; describe_media counts images and documents."""
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    content = [image, image, doc, {"type": "text", "text": "What are these?"}]
    fake.script(Ok(reply=Reply(describe_media=True, stop_reason="refusal")))
    message = client.messages.create(
        model="m", max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    assert message.content[0].text == "saw 2 image(s) and 1 document(s)"
    assert message.stop_reason == "refusal"
    assert create(client).content[0].text == "Hello from primary"


def test_litellm_image_described(litellm: Any, fake: FakeProvider) -> None:
    """An OpenAI image_url part counts as an image."""
    fake.reply = Reply(describe_media=True)
    content = [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ]
    resp = llm(litellm, fake, messages=[{"role": "user", "content": content}])
    assert resp.choices[0].message.content == "saw 1 image(s)"


def test_reply_validation() -> None:
    """Negative cache counts are refused; (name, arguments) pairs become FakeToolCall."""
    with pytest.raises(ValueError):
        Reply(cache_read_tokens=-1)
    assert Reply(tool_calls=[("f", {"a": 1})]).tool_calls == (FakeToolCall("f", {"a": 1}),)


# -- malformed events and echoed secrets -----------------------------------------------------


def test_malformed_event_in_a_healthy_stream(
    fake: FakeProvider, client: anthropic.Anthropic
) -> None:
    """MalformedEvent inserts one invalid-JSON event; the rest of the stream follows intact."""
    fake.set_mode(MalformedEvent(after_events=3))
    _, _, data = raw_post(fake, "/v1/messages", stream_body())
    events = sse_events(data)
    assert isinstance(events[3][1], str)  # the malformed one
    assert [name for name, _ in events] == [
        *ANTHROPIC_STREAM_EVENTS[:3],
        "content_block_delta",
        *ANTHROPIC_STREAM_EVENTS[3:],
    ]
    with (
        pytest.raises(json.JSONDecodeError),
        client.messages.stream(model="m", max_tokens=9, messages=MESSAGES) as stream,
    ):
        list(stream)


def test_malformed_stream_and_json(fake: FakeProvider, client: anthropic.Anthropic) -> None:
    """MalformedStream sends only bad events; a JSON request gets a 200 body that is not JSON."""
    fake.set_mode(MalformedStream(events=2))
    status, _, data = raw_post(
        fake,
        "/v1/chat/completions",
        json.dumps({"model": "m", "messages": MESSAGES, "stream": True}).encode(),
    )
    events = sse_events(data)
    assert status == 200
    assert [isinstance(e, str) for _, e in events] == [True, True]
    with pytest.raises(json.JSONDecodeError):
        create(client)
    with pytest.raises(ValueError):
        MalformedStream(events=0)


def test_litellm_malformed_stream_raises(litellm: Any, fake: FakeProvider) -> None:
    """LiteLLM raises on a malformed event instead of skipping it."""
    fake.set_mode(MalformedEvent(after_events=1))
    with pytest.raises(Exception, match="Unterminated string"):
        list(llm(litellm, fake, stream=True))


def test_echo_quotes_key_and_prompt(
    litellm: Any, fake: FakeProvider, client: anthropic.Anthropic
) -> None:
    """Echo answers an error whose message carries the API key and the prompt text."""
    fake.set_mode(Echo())
    with pytest.raises(anthropic.AuthenticationError) as info:
        create(client)
    assert "test-key" in str(info.value)
    assert "Say hello to me" in str(info.value)
    fake.set_mode(Echo(code=400))
    with pytest.raises(litellm.BadRequestError) as err:
        llm(litellm, fake, api_key="sk-secret-1")
    assert "sk-secret-1" in str(err.value)
    assert "be brief" in str(err.value)
