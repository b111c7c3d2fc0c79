"""FakeProvider request validation: each API's documented schema, and the 400 it answers."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from failover.testing import FakeProvider, Ok, Status, request_problem

IMAGE = "data:image/png;base64,iVBORw0KGgo="
USER = {"role": "user", "content": "What is the weather in Paris?"}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
TOOL_RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Weather by city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
OPENAI_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def anthropic_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-test", "max_tokens": 2048, "messages": [USER]}
    body.update(changes)
    return body


def openai_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-test", "messages": [USER]}
    body.update(changes)
    return body


def tool_turns(result: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [
        USER,
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, TOOL_USE]},
        {"role": "user", "content": [result or TOOL_RESULT, {"type": "text", "text": "thanks"}]},
    ]


def openai_turns(*tool_ids: str) -> list[dict[str, Any]]:
    replies = [{"role": "tool", "tool_call_id": i, "content": "18C"} for i in tool_ids]
    return [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]}, *replies]


VALID_ANTHROPIC = {
    "plain": anthropic_body(),
    "system string": anthropic_body(system="Be brief."),
    "system blocks": anthropic_body(
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    ),
    "tool loop": anthropic_body(messages=tool_turns(), tools=[ANTHROPIC_TOOL]),
    "image and document": anthropic_body(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AA=="},
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "A"},
                    },
                    {"type": "text", "text": "What are these?"},
                ],
            }
        ]
    ),
    "thinking replayed": anthropic_body(
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            USER,
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, TOOL_USE],
            },
            {"role": "user", "content": [TOOL_RESULT]},
        ],
    ),
    "tool choice": anthropic_body(
        tools=[ANTHROPIC_TOOL], tool_choice={"type": "tool", "name": "get_weather"}
    ),
    "prefill": anthropic_body(messages=[USER, {"role": "assistant", "content": ""}]),
    "sampling": anthropic_body(temperature=0.5, top_p=0.9, top_k=5, stop_sequences=["x"]),
}

INVALID_ANTHROPIC = {
    "no max_tokens": ({"model": "m", "messages": [USER]}, "max_tokens: Field required"),
    "openai tool_calls key": (anthropic_body(tool_calls=[]), "tool_calls: Extra inputs"),
    "response_format": (anthropic_body(response_format={"type": "json_object"}), "response_fo"),
    "system role": (anthropic_body(messages=[{"role": "system", "content": "x"}, USER]), "system"),
    "tool role": (
        anthropic_body(messages=[USER, {"role": "tool", "content": "x"}]),
        "messages.1.role",
    ),
    "tool_calls in message": (
        anthropic_body(messages=[USER, {"role": "assistant", "content": "x", "tool_calls": []}]),
        "messages.1.tool_calls: Extra inputs",
    ),
    "image_url part": (
        anthropic_body(
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]
        ),
        "Input tag 'image_url'",
    ),
    "unmatched tool_result": (
        anthropic_body(messages=tool_turns({**TOOL_RESULT, "tool_use_id": "toolu_2"})),
        "unexpected `tool_use_id`",
    ),
    "tool_use left unanswered": (
        anthropic_body(messages=[*tool_turns()[:2], USER]),
        "without `tool_result` blocks",
    ),
    "tool_result after text": (
        anthropic_body(
            messages=[
                *tool_turns()[:2],
                {"role": "user", "content": [{"type": "text", "text": "x"}, TOOL_RESULT]},
            ]
        ),
        "must come first",
    ),
    "tool_use in user": (
        anthropic_body(messages=[{"role": "user", "content": [TOOL_USE]}]),
        "only appear in assistant messages",
    ),
    "tool_use input a string": (
        anthropic_body(
            messages=[USER, {"role": "assistant", "content": [{**TOOL_USE, "input": "{}"}]}]
        ),
        "input: Input should be a valid dictionary",
    ),
    "openai-style tool": (anthropic_body(tools=[OPENAI_TOOL]), "tools.0"),
    "tool without schema": (
        anthropic_body(tools=[{"name": "f"}]),
        "tools.0.custom.input_schema: Field required",
    ),
    "tool_choice string": (anthropic_body(tool_choice="auto"), "tool_choice"),
    "tool_choice required": (anthropic_body(tool_choice={"type": "required"}), "tool_choice.type"),
    "small budget": (
        anthropic_body(thinking={"type": "enabled", "budget_tokens": 500}),
        "greater than or equal to 1024",
    ),
    "budget over max_tokens": (
        anthropic_body(max_tokens=1500, thinking={"type": "enabled", "budget_tokens": 2000}),
        "max_tokens",
    ),
    "thinking not replayed": (
        anthropic_body(
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[
                USER,
                {"role": "assistant", "content": [TOOL_USE]},
                {"role": "user", "content": [TOOL_RESULT]},
            ],
        ),
        "Expected `thinking` or `redacted_thinking`",
    ),
    "thinking with temperature": (
        anthropic_body(thinking={"type": "enabled", "budget_tokens": 1024}, temperature=0.2),
        "temperature",
    ),
    "thinking without signature": (
        anthropic_body(
            messages=[
                USER,
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]},
            ]
        ),
        "signature: Field required",
    ),
    "temperature 2": (anthropic_body(temperature=2), "temperature"),
    "empty content": (anthropic_body(messages=[{"role": "user", "content": ""}]), "non-empty"),
    "empty text block": (
        anthropic_body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "non-whitespace",
    ),
    "bad media type": (
        anthropic_body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/bmp", "data": "A"},
                        }
                    ],
                }
            ]
        ),
        "media_type",
    ),
    "cache_control ttl": (
        anthropic_body(system=[{"type": "text", "text": "x", "cache_control": {"type": "x"}}]),
        "system.0.cache_control.type",
    ),
}

VALID_OPENAI = {
    "plain": openai_body(),
    "tool loop": openai_body(messages=openai_turns("call_1"), tools=[OPENAI_TOOL]),
    "parts": openai_body(
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this?"},
                    {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
                    {"type": "file", "file": {"file_data": "AA==", "filename": "a.pdf"}},
                ],
            },
        ]
    ),
    "tool choice": openai_body(
        tools=[OPENAI_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    ),
    "structured output": openai_body(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    ),
    "stream with usage": openai_body(stream=True, stream_options={"include_usage": True}),
    "sampling": openai_body(temperature=1.5, reasoning_effort="low", max_completion_tokens=9),
}

INVALID_OPENAI = {
    "no messages": ({"model": "m"}, "messages"),
    "anthropic system key": (
        openai_body(system="x"),
        "Unrecognized request argument supplied: system",
    ),
    "tool without call": (
        openai_body(messages=[USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]),
        "messages[1].role",
    ),
    "unknown tool_call_id": (
        openai_body(messages=openai_turns("call_2")),
        "messages[2].tool_call_id",
    ),
    "call left unanswered": (openai_body(messages=[*openai_turns(), USER]), "call_1"),
    "arguments an object": (
        openai_body(
            messages=[
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "x"},
            ]
        ),
        "messages[1].tool_calls[0].function.arguments",
    ),
    "tool_use block": (
        openai_body(messages=[USER, {"role": "assistant", "content": [TOOL_USE]}]),
        "messages[1].content[0].type",
    ),
    "tool_result block": (
        openai_body(messages=[{"role": "user", "content": [TOOL_RESULT]}]),
        "'tool_result'",
    ),
    "anthropic image block": (
        openai_body(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}]),
        "'image'",
    ),
    "input_schema tool": (openai_body(tools=[ANTHROPIC_TOOL]), "tools[0].type"),
    "function without name": (
        openai_body(tools=[{"type": "function", "function": {"parameters": {}}}]),
        "tools[0].function.name",
    ),
    "anthropic tool_choice": (
        openai_body(tools=[OPENAI_TOOL], tool_choice={"type": "any"}),
        "tool_choice.type",
    ),
    "tool_choice without tools": (openai_body(tool_choice="auto"), "tool_choice"),
    "assistant without content": (openai_body(messages=[USER, {"role": "assistant"}]), "content"),
    "json_schema without name": (
        openai_body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
    ),
    "bad response_format": (openai_body(response_format={"type": "xml"}), "response_format.type"),
    "stream_options without stream": (
        openai_body(stream_options={"include_usage": True}),
        "stream_options",
    ),
    "temperature 3": (openai_body(temperature=3), "temperature"),
    "cache_control in part": (
        openai_body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
                    ],
                }
            ]
        ),
        "messages[0].content[0].cache_control",
    ),
    "thinking key": (openai_body(thinking={"type": "enabled"}), "thinking"),
}


@pytest.mark.parametrize("body", VALID_ANTHROPIC.values(), ids=VALID_ANTHROPIC)
def test_valid_anthropic_bodies_pass(body: dict[str, Any]) -> None:
    """Documented Anthropic request shapes are accepted."""
    assert request_problem("anthropic", body) is None


@pytest.mark.parametrize(("body", "words"), INVALID_ANTHROPIC.values(), ids=INVALID_ANTHROPIC)
def test_invalid_anthropic_bodies_name_the_field(body: dict[str, Any], words: str) -> None:
    """Each broken Anthropic body is refused with a message naming what is wrong."""
    problem = request_problem("anthropic", body)
    assert problem is not None
    assert words in problem.message


@pytest.mark.parametrize("body", VALID_OPENAI.values(), ids=VALID_OPENAI)
def test_valid_openai_bodies_pass(body: dict[str, Any]) -> None:
    """Documented Chat Completions request shapes are accepted."""
    assert request_problem("openai", body) is None


@pytest.mark.parametrize(("body", "words"), INVALID_OPENAI.values(), ids=INVALID_OPENAI)
def test_invalid_openai_bodies_name_the_field(body: dict[str, Any], words: str) -> None:
    """Each broken Chat Completions body is refused with a message naming what is wrong."""
    problem = request_problem("openai", body)
    assert problem is not None
    assert words in problem.message + " " + str(problem.param)


def test_valid_bodies_are_not_mutated() -> None:
    """Validation only reads the body."""
    body = copy.deepcopy(VALID_ANTHROPIC["tool loop"])
    request_problem("anthropic", body)
    assert body == VALID_ANTHROPIC["tool loop"]


# --- through the real SDKs ---------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(name="strict") as provider:
        yield provider


@pytest.fixture(scope="module")
def litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    module = pytest.importorskip("litellm")
    module.suppress_debug_info = True
    return module


def test_anthropic_sdk_gets_the_real_400(fake: FakeProvider) -> None:
    """An invalid Messages body is a BadRequestError with invalid_request_error and the field."""
    client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="m", max_tokens=10, messages=[USER], extra_body={"tool_calls": []}
        )
    assert info.value.status_code == 400
    assert info.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error",
        "message": "tool_calls: Extra inputs are not permitted",
    }
    assert fake.requests[0].schema_error == "tool_calls: Extra inputs are not permitted"


def test_litellm_gets_the_real_400(litellm: Any, fake: FakeProvider) -> None:
    """An invalid Chat Completions body is litellm.BadRequestError naming the field."""
    with pytest.raises(litellm.BadRequestError) as info:
        litellm.completion(
            model="openai/fake",
            api_base=fake.openai_url,
            api_key="k",
            max_retries=0,
            num_retries=0,
            messages=[{"role": "tool", "tool_call_id": "call_9", "content": "18C"}],
        )
    assert "messages[0].role" in str(info.value)
    assert info.value.status_code == 400


def test_openai_error_body_carries_param(fake: FakeProvider) -> None:
    """The OpenAI 400 body has message, type invalid_request_error, param and code null."""
    import httpx2

    resp = httpx2.post(fake.openai_url + "/chat/completions", json=openai_body(temperature=3))
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "message": "Invalid value for 'temperature': Input should be less than or equal to 2",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": None,
    }


def test_validate_false_answers_anyway(litellm: Any) -> None:
    """FakeProvider(validate=False) answers an invalid body but still records the problem."""
    with FakeProvider(validate=False) as lenient:
        client = anthropic.Anthropic(api_key="k", base_url=lenient.url, max_retries=0)
        message = client.messages.create(
            model="m", max_tokens=10, messages=[USER], extra_body={"response_format": {}}
        )
        assert message.content[0].text == "Hello from fake"  # type: ignore[union-attr]
        assert lenient.requests[0].schema_error == "response_format: Extra inputs are not permitted"
        lenient.validate = True
        with pytest.raises(anthropic.BadRequestError):
            client.messages.create(
                model="m", max_tokens=10, messages=[USER], extra_body={"response_format": {}}
            )


def test_fault_modes_win_over_validation(fake: FakeProvider) -> None:
    """A scripted Status answers as scripted even for an invalid body (the fault comes first)."""
    client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
    fake.script(Status(529), Ok())
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="m", max_tokens=10, messages=[], extra_body={"n": 1})
    assert info.value.status_code == 529
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="m", max_tokens=10, messages=[], extra_body={"n": 1})


def test_litellm_anthropic_translation_is_valid(litellm: Any, fake: FakeProvider) -> None:
    """LiteLLM's OpenAI-to-Anthropic translation of a tool/image conversation passes the check."""
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this?"},
                {"type": "image_url", "image_url": {"url": IMAGE}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]
    for extra in ({}, {"tool_choice": "required"}, {"stream": True}):
        resp = litellm.completion(
            model="anthropic/claude-test",
            api_base=fake.url,
            api_key="k",
            max_retries=0,
            num_retries=0,
            max_tokens=100,
            messages=messages,
            tools=[OPENAI_TOOL],
            **extra,
        )
        if extra.get("stream"):
            list(resp)
    assert [r.schema_error for r in fake.requests] == [None, None, None]
    assert fake.requests[0].body["messages"][1]["content"][0]["type"] == "tool_use"
