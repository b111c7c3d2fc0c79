"""Conversations across providers through the Router: each endpoint gets its own valid body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from failover import RequestError, Router
from failover._stream_events import (
    Finished,
    Restarted,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
)
from failover.testing import FakeProvider, FakeToolCall, Reply, Status

from _support import make_policy

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
OPENAI_CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You answer about the weather."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_abc123", "content": "18C and sunny"},
]
ANTHROPIC_CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {
                "type": "tool_use",
                "id": "toolu_01XYZ",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01XYZ", "content": "18C"}],
    },
]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAAB"
PIXEL += "JRU5ErkJggg=="
CALL_LONDON = Reply(text="", tool_calls=[FakeToolCall("get_weather", {"city": "London"})])


@pytest.fixture
def fakes() -> Iterator[list[FakeProvider]]:
    """A primary and a secondary fake, both validating bodies against the real schemas."""
    with FakeProvider(name="primary") as a, FakeProvider(name="secondary") as b:
        yield [a, b]


def router(fakes: list[FakeProvider], kinds: list[str], **route: Any) -> Router:
    """A route over ``fakes``; ``kinds`` says each one's provider (anthropic or litellm)."""
    urls = {
        f.name: f.url if kind == "anthropic" else f.openai_url
        for f, kind in zip(fakes, kinds, strict=True)
    }
    providers = {f.name: kind for f, kind in zip(fakes, kinds, strict=True)}
    policy = make_policy(urls, providers=providers)
    policy["routes"]["chat"].update(route)
    return Router.from_dict(policy, listeners=[])


def valid(fake: FakeProvider) -> dict[str, Any]:
    """The one request ``fake`` received, checked against the API's schema."""
    [request] = fake.requests
    assert request.schema_error is None, request.schema_error
    body: dict[str, Any] = request.body
    return body


def test_openai_tool_conversation_answered_by_anthropic(fakes: list[FakeProvider]) -> None:
    """OpenAI tools, assistant tool_calls and role tool reach Anthropic as a valid body."""
    fakes[0].reply = CALL_LONDON
    with router(fakes[:1], ["anthropic"]) as r:
        resp = r.complete(OPENAI_CONVERSATION, tools=[WEATHER], tool_choice="auto", max_tokens=50)
    body = valid(fakes[0])
    assert body["system"] == "You answer about the weather."
    assert body["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert body["messages"][1]["content"][0]["id"] == "call_abc123"  # ids unchanged
    assert body["messages"][2]["content"][0]["tool_use_id"] == "call_abc123"
    assert resp.finish_reason == "tool_calls"
    assert resp.stop_reason == "tool_use"
    [call] = resp.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == {"city": "London"}
    assert call.id.startswith("toolu_")
    assert resp.message["tool_calls"][0]["id"] == call.id


def test_tool_conversation_fails_over_from_anthropic_to_litellm(
    fakes: list[FakeProvider],
) -> None:
    """A 529 on Anthropic: the same conversation reaches the OpenAI endpoint, valid there."""
    fakes[0].set_mode(Status(529))
    fakes[1].reply = CALL_LONDON
    with router(fakes, ["anthropic", "litellm"]) as r:
        resp = r.complete(OPENAI_CONVERSATION, tools=[WEATHER], max_tokens=50)
    assert fakes[0].request_count == 2  # retried, then failed over
    body = valid(fakes[1])
    assert body["messages"][2]["tool_calls"][0]["id"] == "call_abc123"
    assert body["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_abc123",
        "content": "18C and sunny",
    }
    assert resp.endpoint == "secondary"
    assert resp.finish_reason == "tool_calls"
    assert resp.tool_calls[0].arguments == {"city": "London"}
    assert resp.tool_calls[0].id.startswith("call_")


def test_anthropic_conversation_goes_to_litellm(fakes: list[FakeProvider]) -> None:
    """tool_use/tool_result blocks and input_schema tools become valid OpenAI input."""
    with router(fakes[1:], ["litellm"]) as r:
        resp = r.complete(ANTHROPIC_CONVERSATION, tools=ANTHROPIC_TOOLS, max_tokens=50)
    body = valid(fakes[1])
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assistant = body["messages"][1]
    assert assistant["tool_calls"][0]["id"] == "toolu_01XYZ"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert body["messages"][2]["tool_call_id"] == "toolu_01XYZ"
    assert resp.text == "Hello from secondary"
    assert resp.finish_reason == "stop"


def test_a_tool_loop_continues_across_providers(fakes: list[FakeProvider]) -> None:
    """resp.message from Claude, appended with a tool result, is valid input for OpenAI."""
    fakes[0].reply = CALL_LONDON
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in London?"}]
    with router(fakes, ["anthropic", "litellm"]) as r:
        first = r.complete(messages, tools=[WEATHER], max_tokens=50)
        messages += [
            first.message,
            {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "12C"},
        ]
        fakes[0].set_mode(Status(529))
        second = r.complete(messages, tools=[WEATHER], max_tokens=50)
    body = valid(fakes[1])
    assert body["messages"][-1]["tool_call_id"] == first.tool_calls[0].id
    assert second.endpoint == "secondary"
    assert second.text == "Hello from secondary"


def test_images_travel_both_ways(fakes: list[FakeProvider]) -> None:
    """An image_url part reaches Anthropic as an image block, and OpenAI as it was."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    for fake in fakes:
        fake.reply = Reply(describe_media=True)
    messages = [{"role": "user", "content": content}]
    with router(fakes[:1], ["anthropic"]) as r:
        assert r.complete(messages, max_tokens=20).text == "saw 1 image(s)"
    block = valid(fakes[0])["messages"][0]["content"][1]
    assert block["source"] == {"type": "base64", "media_type": "image/png", "data": PIXEL}
    with router(fakes[1:], ["litellm"]) as r:
        assert r.complete(messages, max_tokens=20).text == "saw 1 image(s)"
    assert valid(fakes[1])["messages"][0]["content"][1]["type"] == "image_url"


def test_structured_output_and_reasoning_effort(fakes: list[FakeProvider]) -> None:
    """response_format and reasoning_effort become output_config and thinking on Anthropic."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    messages = [{"role": "user", "content": "hi"}]
    with router(fakes, ["anthropic", "litellm"]) as r:
        r.complete(messages, response_format=fmt, reasoning_effort="low")
        fakes[0].set_mode(Status(529))
        r.complete(messages, response_format=fmt, reasoning_effort="low")
    body = fakes[0].requests[0].body
    assert fakes[0].requests[0].schema_error is None
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    openai_body = valid(fakes[1])
    assert openai_body["response_format"] == fmt
    assert openai_body["reasoning_effort"] == "low"


def test_unsupported_on_first_endpoint_skips_it(fakes: list[FakeProvider]) -> None:
    """A parameter Anthropic cannot express: no request, breaker untouched, OpenAI answers."""
    messages = [{"role": "user", "content": "hi"}]
    with router(fakes, ["anthropic", "litellm"]) as r:
        resp = r.complete(messages, logprobs=True, max_tokens=20)
        snapshot = r.breaker("primary").snapshot()
    assert fakes[0].request_count == 0
    assert snapshot.consecutive_failures == 0
    assert snapshot.total_failures == 0
    assert [(a.endpoint, a.outcome, a.error) for a in resp.attempts] == [
        ("primary", "error", "unsupported"),
        ("secondary", "ok", None),
    ]
    assert valid(fakes[1])["logprobs"] is True


def test_request_error_when_no_endpoint_can_take_it(fakes: list[FakeProvider]) -> None:
    """Unsupported on every endpoint, or malformed input: RequestError, nothing sent."""
    server_tool = [{"type": "web_search_20250305", "name": "web_search"}]
    with router(fakes[1:], ["litellm"]) as r:
        with pytest.raises(RequestError) as raised:
            r.complete([{"role": "user", "content": "hi"}], tools=server_tool)
        assert fakes[1].request_count == 0
        assert [a.error for a in raised.value.attempts] == ["unsupported"]
        assert "server tool" in str(raised.value)
        with pytest.raises(RequestError) as bad:
            r.complete([{"role": "tool", "content": "no id"}])
    assert bad.value.status_code is None
    assert fakes[1].request_count == 0
    assert r.breaker("secondary").snapshot().total_failures == 0


def test_cached_tool_call_answer_keeps_its_calls(fakes: list[FakeProvider]) -> None:
    """The cache stores the normalized answer: a hit asks for the same tool calls."""
    fakes[0].reply = CALL_LONDON
    messages = [{"role": "user", "content": "Weather in London?"}]
    with router(fakes[:1], ["anthropic"], cache={"ttl": "1h", "stale_if_error": "1h"}) as r:
        fresh = r.complete(messages, tools=[WEATHER])
        fakes[0].set_mode(Status(503))
        cached = r.complete(messages, tools=[WEATHER])
    assert cached.from_cache
    assert cached.tool_calls == fresh.tool_calls
    assert cached.finish_reason == "tool_calls"
    assert cached.stop_reason == "tool_use"
    assert cached.usage == fresh.usage


def test_cache_usage_counts_the_same_on_both(fakes: list[FakeProvider]) -> None:
    """Cache reads and writes: input_tokens includes them on Anthropic as on OpenAI."""
    for fake in fakes:
        fake.reply = Reply(cache_read_tokens=100, cache_write_tokens=10)
    messages = [{"role": "user", "content": "one two three"}]
    with router(fakes[:1], ["anthropic"]) as r:
        claude = r.complete(messages).usage
    with router(fakes[1:], ["litellm"]) as r:
        gpt = r.complete(messages).usage
    assert claude.cache_read_tokens == gpt.cache_read_tokens == 100
    assert claude.input_tokens == gpt.input_tokens


@pytest.mark.parametrize("kind", ["anthropic", "litellm"])
def test_stream_events_carry_tool_calls(fakes: list[FakeProvider], kind: str) -> None:
    """events(): tool call start and argument deltas, then Finished; s.response has the calls."""
    fakes[0].reply = Reply(
        text="Checking.", tool_calls=[FakeToolCall("get_weather", {"city": "Oslo"})]
    )
    with router(fakes[:1], [kind]) as r, r.stream(OPENAI_CONVERSATION, tools=[WEATHER]) as s:
        events = list(s.events())
    assert valid(fakes[0])  # the stream's body is valid too
    text = "".join(ev.text for ev in events if isinstance(ev, TextDelta))
    [start] = [ev for ev in events if isinstance(ev, ToolCallStart)]
    arguments = "".join(ev.arguments for ev in events if isinstance(ev, ToolCallDelta))
    assert text == "Checking."
    assert start.index == 0
    assert start.name == "get_weather"
    assert json.loads(arguments) == {"city": "Oslo"}
    assert isinstance(events[-1], Finished)
    assert events[-1].finish_reason == "tool_calls"
    assert s.response is not None
    assert s.response.tool_calls[0].id == start.id
    assert s.response.tool_calls[0].arguments == {"city": "Oslo"}


@pytest.mark.parametrize("kind", ["anthropic", "litellm"])
async def test_async_stream_events_with_thinking(fakes: list[FakeProvider], kind: str) -> None:
    """async events(): thinking deltas, tool calls, and text iteration left unchanged."""
    fakes[0].reply = Reply(
        thinking="Let me think.", tool_calls=[FakeToolCall("get_weather", {"city": "Rome"})]
    )
    r = router(fakes[:1], [kind])
    try:
        async with r.astream([{"role": "user", "content": "Rome?"}], tools=[WEATHER]) as s:
            events = [ev async for ev in s.events()]
        async with r.astream([{"role": "user", "content": "Rome?"}], tools=[WEATHER]) as t:
            texts = [text async for text in t]
    finally:
        await r.aclose()
    thinking = "".join(ev.text for ev in events if isinstance(ev, ThinkingDelta))
    assert thinking.strip() == "Let me think."
    assert [ev.name for ev in events if isinstance(ev, ToolCallStart)] == ["get_weather"]
    assert s.response is not None
    assert s.response.tool_calls[0].arguments == {"city": "Rome"}
    assert all(isinstance(text, str) for text in texts)  # iterating gives text only
    assert t.response is not None
    assert len(t.response.tool_calls) == 1


def test_events_restart_when_a_tool_call_stream_fails_over(fakes: list[FakeProvider]) -> None:
    """A stream cut after a tool call started: events() says Restarted before each new try."""
    from failover.testing import CutStream

    fakes[0].set_mode(CutStream(after_events=4))
    fakes[0].reply = CALL_LONDON
    with (
        router(fakes, ["anthropic", "litellm"]) as r,
        r.stream([{"role": "user", "content": "London?"}], tools=[WEATHER]) as s,
    ):
        events = list(s.events())
    restarts = [i for i, ev in enumerate(events) if isinstance(ev, Restarted)]
    assert [events[i].endpoint for i in restarts] == ["primary", "secondary"]  # a retry, then
    after = events[restarts[-1] :]
    assert "".join(ev.text for ev in after if isinstance(ev, TextDelta)) == "Hello from secondary"
    assert s.response is not None
    assert s.response.endpoint == "secondary"


def test_cached_stream_gives_its_tool_calls_as_events(fakes: list[FakeProvider]) -> None:
    """A cached tool-call answer served in a stream: its calls come as events, then Finished."""
    fakes[0].reply = CALL_LONDON
    messages = [{"role": "user", "content": "Weather in London?"}]
    with router(fakes[:1], ["anthropic"], cache={"ttl": "1h", "stale_if_error": "1h"}) as r:
        r.complete(messages, tools=[WEATHER])
        fakes[0].set_mode(Status(503))
        with r.stream(messages, tools=[WEATHER]) as s:
            events = list(s.events())
    [start] = [ev for ev in events if isinstance(ev, ToolCallStart)]
    assert start.name == "get_weather"
    assert isinstance(events[-1], Finished)
    assert events[-1].response.from_cache
