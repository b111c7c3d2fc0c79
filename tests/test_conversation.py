"""The request/response translation layer: both dialects in, each provider's form out."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

from failover._response import Response, Thinking, ToolCall, Usage
from failover.conversation import (
    InvalidRequest,
    ToolCallBuffer,
    UnsupportedRequest,
    answer_from_anthropic,
    answer_from_openai,
    finish_reason,
    parse_request,
    to_anthropic_kwargs,
    to_openai_kwargs,
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def anthropic(messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return to_anthropic_kwargs(parse_request(messages, params), "claude-test")


def openai(messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return to_openai_kwargs(parse_request(messages, params))


def test_plain_text_keeps_todays_behaviour() -> None:
    """Plain messages, max_tokens, temperature, system and stop reach Anthropic as before."""
    kwargs = anthropic(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        max_tokens=10,
        temperature=0.5,
        system="first",
        stop="END",
        custom_flag=True,
    )
    assert kwargs["messages"] == [{"role": "user", "content": "hi"}]
    assert kwargs["system"] == "first\n\nbe brief"
    assert kwargs["max_tokens"] == 10
    assert kwargs["stop_sequences"] == ["END"]
    assert kwargs["extra_body"] == {"temperature": 0.5, "custom_flag": True}
    assert anthropic([{"role": "user", "content": "hi"}])["max_tokens"] == 4096


def test_plain_text_to_openai_passes_unknown_keywords() -> None:
    """LiteLLM gets the messages as they were and every keyword as given."""
    kwargs = openai([{"role": "user", "content": "hi"}], max_tokens=5, custom_flag=1)
    assert kwargs == {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
        "custom_flag": 1,
    }


def test_system_blocks_kept_as_blocks() -> None:
    """A system message given as blocks (with cache_control) stays blocks for Anthropic."""
    block = {"type": "text", "text": "long", "cache_control": {"type": "ephemeral"}}
    kwargs = anthropic([{"role": "system", "content": [block]}, {"role": "user", "content": "q"}])
    assert kwargs["system"] == [block]
    assert openai([{"role": "system", "content": [block]}, {"role": "user", "content": "q"}])[
        "messages"
    ][0] == {"role": "system", "content": "long"}


def test_openai_tool_conversation_to_anthropic() -> None:
    """tool_calls become tool_use blocks and tool messages tool_result blocks, ids unchanged."""
    kwargs = anthropic(
        [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        ],
        tools=[WEATHER],
        tool_choice="auto",
    )
    assert kwargs["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    }
    assert kwargs["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "18C"}],
    }
    assert kwargs["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert kwargs["tool_choice"] == {"type": "auto"}


def test_consecutive_tool_results_merge_into_one_user_turn() -> None:
    """Parallel tool results (and a following user message) form one user message."""
    second = {**CALL, "id": "call_2"}
    kwargs = anthropic(
        [
            {"role": "user", "content": "two cities"},
            {"role": "assistant", "content": None, "tool_calls": [CALL, second]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "20C"},
            {"role": "user", "content": "and?"},
        ]
    )
    assert [m["role"] for m in kwargs["messages"]] == ["user", "assistant", "user"]
    last = kwargs["messages"][2]["content"]
    assert [b["type"] for b in last] == ["tool_result", "tool_result", "text"]
    assert [b.get("tool_use_id") for b in last[:2]] == ["call_1", "call_2"]


def test_anthropic_tool_conversation_to_openai() -> None:
    """tool_use/tool_result blocks and input_schema tools become valid OpenAI input."""
    kwargs = openai(
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "P"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
        tools=[{"name": "w", "input_schema": {"type": "object"}, "cache_control": {"type": "x"}}],
        tool_choice={"type": "tool", "name": "w", "disable_parallel_tool_use": True},
    )
    assert kwargs["messages"][1] == {
        "role": "assistant",
        "content": "Looking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "w", "arguments": '{"city": "P"}'},
            }
        ],
    }
    assert kwargs["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert kwargs["messages"][3] == {"role": "user", "content": "thanks"}
    assert kwargs["tools"] == [
        {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
    ]
    assert kwargs["tool_choice"] == {"type": "function", "function": {"name": "w"}}
    assert kwargs["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "w"}}, {"type": "tool", "name": "w"}),
    ],
)
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    """OpenAI tool_choice values map to Anthropic's."""
    assert (
        anthropic([{"role": "user", "content": "x"}], tools=[WEATHER], tool_choice=choice)[
            "tool_choice"
        ]
        == expected
    )


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    """parallel_tool_calls=False is Anthropic's disable_parallel_tool_use."""
    kwargs = anthropic(
        [{"role": "user", "content": "x"}], tools=[WEATHER], parallel_tool_calls=False
    )
    assert kwargs["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_images_both_ways() -> None:
    """A data URL becomes a base64 image block, an http URL a url source, and back."""
    parts = [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
    ]
    content = anthropic([{"role": "user", "content": parts}])["messages"][0]["content"]
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    assert content[2] == {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}
    back = openai([{"role": "user", "content": content}])["messages"][0]["content"]
    assert back[1:] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
    ]


def test_documents_both_ways() -> None:
    """A PDF file part becomes a document block; a document block goes back as a file part."""
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
    }
    content = anthropic([{"role": "user", "content": [part]}])["messages"][0]["content"]
    assert content == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            "title": "a.pdf",
        }
    ]
    back = openai([{"role": "user", "content": content}])["messages"][0]["content"]
    assert back == [part]


def test_cache_control_kept_for_anthropic_stripped_for_openai() -> None:
    """cache_control markers go to Anthropic and are removed for every other provider."""
    marker = {"type": "ephemeral"}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "doc", "cache_control": marker}]},
        {"role": "user", "content": "q", "cache_control": marker},
    ]
    content = anthropic(messages)["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "doc", "cache_control": marker},
        {"type": "text", "text": "q", "cache_control": marker},
    ]
    assert "cache_control" not in json.dumps(openai(messages))


def test_signed_thinking_replayed_only_to_its_provider() -> None:
    """Anthropic-signed thinking goes back to Anthropic only; other thinking is dropped."""
    messages = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "a",
            "thinking_blocks": [
                {
                    "type": "thinking",
                    "thinking": "hmm",
                    "signature": "sig",
                    "provider": "anthropic",
                },
                {"type": "thinking", "thinking": "other", "signature": "g", "provider": "gemini"},
            ],
        },
        {"role": "user", "content": "more"},
    ]
    assistant = anthropic(messages)["messages"][1]["content"]
    assert assistant == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "a"},
    ]
    assert openai(messages)["messages"][1] == {"role": "assistant", "content": "a"}


def test_structured_output_and_reasoning() -> None:
    """json_schema becomes output_config.format; reasoning_effort LiteLLM's thinking budget."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    kwargs = anthropic(
        [{"role": "user", "content": "x"}],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
        reasoning_effort="medium",
    )
    assert kwargs["output_config"]["format"]["type"] == "json_schema"
    assert kwargs["output_config"]["format"]["schema"]["required"] == ["a"]
    assert kwargs["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert kwargs["max_tokens"] == 2048 + 4096  # the budget must fit under max_tokens
    back = openai(
        [{"role": "user", "content": "x"}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert back["response_format"]["json_schema"]["schema"] == schema
    assert back["reasoning_effort"] == "low"


def test_user_and_metadata() -> None:
    """user becomes metadata.user_id (not when it is an email), and back."""
    assert anthropic([{"role": "user", "content": "x"}], user="u-1")["metadata"] == {
        "user_id": "u-1"
    }
    assert "metadata" not in anthropic([{"role": "user", "content": "x"}], user="a@b.com")
    assert openai([{"role": "user", "content": "x"}], metadata={"user_id": "u-2"})["user"] == "u-2"


def test_openai_only_parameter_is_unsupported_on_anthropic() -> None:
    """n=2 or logprobs cannot be expressed on Anthropic: UnsupportedRequest names it."""
    with pytest.raises(UnsupportedRequest, match=r"^n: "):
        anthropic([{"role": "user", "content": "x"}], n=2)
    assert "n" not in anthropic([{"role": "user", "content": "x"}], n=1)


def test_anthropic_server_tool_is_unsupported_on_openai() -> None:
    """An Anthropic server tool cannot travel to OpenAI: UnsupportedRequest names it."""
    tool = {"type": "web_search_20250305", "name": "web_search"}
    assert anthropic([{"role": "user", "content": "x"}], tools=[tool])["tools"] == [tool]
    with pytest.raises(UnsupportedRequest, match=r"^tools\[0\]"):
        openai([{"role": "user", "content": "x"}], tools=[tool])


@pytest.mark.parametrize(
    ("messages", "params", "argument"),
    [
        ([{"content": "x"}], {}, r"messages\[0\]"),
        ([{"role": "robot", "content": "x"}], {}, r"messages\[0\]\.role"),
        (
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{**CALL, "function": {"name": "w", "arguments": "{bad"}}],
                }
            ],
            {},
            r"messages\[0\]\.tool_calls\[0\]\.function\.arguments",
        ),
        ([{"role": "tool", "content": "x"}], {}, r"messages\[0\]\.tool_call_id"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            {},
            r"messages\[0\]\.content\[0\]\.image_url\.url",
        ),
        ([{"role": "user", "content": "x"}], {"tools": [{"nope": 1}]}, r"tools\[0\]"),
        ([{"role": "user", "content": "x"}], {"tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_malformed_input_names_the_argument(
    messages: list[Any], params: dict[str, Any], argument: str
) -> None:
    """Malformed input raises InvalidRequest (a ValueError) naming where the problem is."""
    with pytest.raises(InvalidRequest, match=f"^{argument}: "):
        parse_request(messages, params)
    assert issubclass(InvalidRequest, ValueError)


def test_import_needs_no_sdk() -> None:
    """Parsing and the OpenAI direction import neither anthropic nor litellm."""
    import subprocess

    code = (
        "import sys; from failover.conversation import parse_request, to_openai_kwargs;"
        "to_openai_kwargs(parse_request([{'role': 'user', 'content': 'x'}], {}));"
        "print([m for m in ('anthropic', 'litellm') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- answers ---------------------------------------------------------------------------


def anthropic_message(content: list[dict[str, Any]], stop: str, **usage: int) -> Any:
    import anthropic as sdk

    return sdk.types.Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
        }
    )


def test_answer_from_anthropic_tool_use() -> None:
    """tool_use blocks, thinking and cache usage are normalized from an anthropic Message."""
    message = anthropic_message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "P"}},
        ],
        "tool_use",
        cache_read_input_tokens=100,
        cache_creation_input_tokens=20,
    )
    answer = answer_from_anthropic(message)
    assert answer.text == "Looking."
    assert answer.tool_calls == (ToolCall("toolu_1", "w", {"city": "P"}),)
    assert (answer.finish_reason, answer.stop_reason) == ("tool_calls", "tool_use")
    assert answer.usage == Usage(130, 5, 100, 20, 0)
    assert answer.thinking == (Thinking("hmm", "sig", "anthropic"),)


def test_answer_from_openai_tool_calls() -> None:
    """A litellm ModelResponse's tool calls, finish reason and usage are normalized."""
    import litellm

    response = litellm.ModelResponse(
        model="gpt-test",
        choices=[
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [CALL]},
            }
        ],
        usage={
            "prompt_tokens": 1062,
            "completion_tokens": 7,
            "total_tokens": 1069,
            "prompt_tokens_details": {"cached_tokens": 1050},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    )
    answer = answer_from_openai(response)
    assert answer.text == ""
    assert answer.tool_calls == (ToolCall("call_1", "get_weather", {"city": "Paris"}),)
    assert answer.finish_reason == "tool_calls"
    assert answer.usage.input_tokens == 1062
    assert answer.usage.cache_read_tokens == 1050
    assert answer.usage.reasoning_tokens == 3


@pytest.mark.parametrize(
    ("reason", "normalized"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "other"),
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("something_new", "other"),
        (None, None),
    ],
)
def test_finish_reason(reason: str | None, normalized: str | None) -> None:
    """Both providers' stop reasons normalize to one vocabulary."""
    assert finish_reason(reason) == normalized


def test_response_message_round_trips_through_both_providers() -> None:
    """resp.message appended to the conversation translates for Anthropic and OpenAI."""
    resp = Response(
        text="",
        endpoint="e",
        provider="anthropic",
        model="m",
        tool_calls=(ToolCall("toolu_9", "w", {"city": "P"}),),
        finish_reason="tool_calls",
        thinking=(Thinking("t", "sig"),),
    )
    message = resp.message
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {"name": "w", "arguments": '{"city": "P"}'}
    history = [
        {"role": "user", "content": "q"},
        message,
        {"role": "tool", "tool_call_id": "toolu_9", "content": "ok"},
    ]
    native = anthropic(history)["messages"][1]["content"]
    assert [b["type"] for b in native] == ["thinking", "tool_use"]
    assert native[1]["id"] == "toolu_9"
    assert openai(history)["messages"][1]["tool_calls"][0]["id"] == "toolu_9"


def test_usage_positional_and_unreported() -> None:
    """Usage(in, out) still works; input and output are None when not reported, the
    detail counts 0 (as the contract says)."""
    assert Usage(1, 2).input_tokens == 1
    assert Usage().output_tokens is None
    assert Usage().input_tokens is None
    assert (Usage().cache_read_tokens, Usage().cache_write_tokens) == (0, 0)
    assert Usage().reasoning_tokens == 0
    assert Response("t", "e", "p", "m").tool_calls == ()


def test_tool_call_buffer_accumulates_openai_deltas() -> None:
    """Argument fragments streamed per index assemble into parsed ToolCalls."""
    from types import SimpleNamespace as Ns

    buffer = ToolCallBuffer()
    buffer.add_openai([Ns(index=0, id="call_1", function=Ns(name="w", arguments='{"ci'))])
    buffer.add_openai([Ns(index=0, id=None, function=Ns(name=None, arguments='ty": "P"}'))])
    buffer.start(1, "toolu_2", "x")
    buffer.add(1, "{}")
    assert buffer.calls() == (ToolCall("call_1", "w", {"city": "P"}), ToolCall("toolu_2", "x", {}))


@pytest.mark.parametrize(
    ("messages", "params"),
    [
        ([{"role": "user", "content": "hi"}], {"max_tokens": 64}),
        ([{"role": "user", "content": "hi"}], {}),
        ([{"role": "user", "content": "hi"}], {"max_tokens": 8, "system": "be brief"}),
        ([{"role": "user", "content": "hi"}], {"system": ""}),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            {"max_tokens": 16},
        ),
    ],
)
def test_plain_fast_path_matches_the_general_translation(
    messages: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    """A plain chat skips the general translation and gets exactly what it would make."""
    from failover.conversation import plain_anthropic_kwargs

    fast = plain_anthropic_kwargs(messages, params, "m", default_max_tokens=4096)
    assert fast is not None
    assert fast == to_anthropic_kwargs(parse_request(messages, params), "m")


@pytest.mark.parametrize(
    ("messages", "params"),
    [
        ([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], {}),
        ([{"role": "assistant", "content": "first"}], {}),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], {}),
        ([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], {}),
        ([{"role": "user", "content": ""}], {}),
        ([{"role": "user", "content": "hi", "name": "x"}], {}),
        ([{"role": "user", "content": "hi"}], {"temperature": 0.2}),
        ([{"role": "user", "content": "hi"}], {"system": [{"type": "text", "text": "s"}]}),
        (({"role": "user", "content": "hi"},), {}),
        ([], {}),
    ],
)
def test_plain_fast_path_leaves_everything_else_to_the_translation(
    messages: Any, params: dict[str, Any]
) -> None:
    """Anything but a plain chat (system turns, blocks, merged turns, other keywords...)
    goes through the general translation."""
    from failover.conversation import plain_anthropic_kwargs

    assert plain_anthropic_kwargs(messages, params, "m") is None
