"""Our OpenAI -> Anthropic translation against LiteLLM's own, field by field (issue 14 item 6).

Each request goes through ``parse_request`` + ``to_anthropic_kwargs`` and through LiteLLM's
``AnthropicConfig.map_openai_params`` + ``transform_request`` (in process, nothing sent).
The bodies are compared on messages, system, tools, tool_choice, thinking, structured
output, stop sequences and metadata after normalizing only differences the Anthropic
Messages API documents as equivalent (see ``_normalized``). Every body we produce is also
checked against the documented request schema (the SDK's own TypedDicts: required keys
present, no key the schema lacks), because the real API answers 400 to extra inputs.
"""

from __future__ import annotations

import collections.abc
import copy
import os
import types
import typing
from typing import Any

import pytest
import typing_extensions

from failover.conversation import parse_request, to_anthropic_kwargs, to_openai_kwargs

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "claude-sonnet-4-5-20250929"
PNG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0xLjQK"
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def tool(name: str, description: str = "A tool.") -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    function = {"name": name, "description": description, "parameters": parameters}
    return {"type": "function", "function": function}


def call(call_id: str, name: str = "search", arguments: str = '{"q": "x"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def said(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def result(call_id: str, content: str = "found it") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def calls(*ids: str, text: str | None = None) -> dict[str, Any]:
    return {"role": "assistant", "content": text, "tool_calls": [call(i) for i in ids]}


TOOLS = [tool("search"), tool("lookup", "Look a thing up.")]
CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "plain": ([user("hi")], {"max_tokens": 50}),
    "system": ([{"role": "system", "content": "Be brief."}, user("hi")], {"max_tokens": 50}),
    "system_blocks": (
        [
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "Long.", "cache_control": {"type": "ephemeral"}}
                ],
            },
            user("hi"),
        ],
        {},
    ),
    "multi_turn": ([user("a"), said("b"), user("c"), said("d"), user("e")], {}),
    "stop_string": ([user("count")], {"stop": "5"}),
    "stop_list": ([user("count")], {"stop": ["5", "six"]}),
    "user_id": ([user("hi")], {"user": "user-42"}),
    "temperature": ([user("hi")], {"temperature": 0.3, "top_p": 0.9}),
    "tools_only": ([user("find x")], {"tools": TOOLS}),
    "tool_choice_auto": ([user("find x")], {"tools": TOOLS, "tool_choice": "auto"}),
    "tool_choice_required": ([user("find x")], {"tools": TOOLS, "tool_choice": "required"}),
    "tool_choice_none": ([user("find x")], {"tools": TOOLS, "tool_choice": "none"}),
    "tool_choice_named": (
        [user("find x")],
        {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "lookup"}}},
    ),
    "no_parallel": ([user("find x")], {"tools": TOOLS, "parallel_tool_calls": False}),
    "no_parallel_required": (
        [user("find x")],
        {"tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False},
    ),
    "tool_round": ([user("find x"), calls("call_1"), result("call_1")], {"tools": TOOLS}),
    "tool_round_toolu_id": (
        [user("find x"), calls("toolu_01A"), result("toolu_01A")],
        {"tools": TOOLS},
    ),
    "tool_round_with_text": (
        [user("find x"), calls("call_1", text="Searching."), result("call_1"), user("thanks")],
        {"tools": TOOLS},
    ),
    "parallel_results": (
        [user("find x, y"), calls("call_1", "call_2"), result("call_1"), result("call_2", "no")],
        {"tools": TOOLS},
    ),
    "two_rounds": (
        [
            {"role": "system", "content": "Use tools."},
            user("find x"),
            calls("call_1"),
            result("call_1"),
            calls("call_2"),
            result("call_2"),
            said("Done."),
            user("again"),
        ],
        {"tools": TOOLS, "tool_choice": "auto"},
    ),
    "empty_arguments": (
        [
            user("go"),
            {"role": "assistant", "content": None, "tool_calls": [call("c", "search", "")]},
            result("c"),
        ],
        {"tools": TOOLS},
    ),
    "image_data_url": (
        [
            user(
                [
                    {"type": "text", "text": "What?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ]
            )
        ],
        {},
    ),
    "image_http_url": (
        [user([{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}])],
        {},
    ),
    "image_then_tools": (
        [
            user([{"type": "text", "text": "Find it"}, {"type": "image_url", "image_url": PNG}]),
            calls("call_1"),
            result("call_1"),
        ],
        {"tools": TOOLS},
    ),
    "document_pdf": (
        [user([{"type": "file", "file": {"file_data": PDF}}, {"type": "text", "text": "Sum up"}])],
        {},
    ),
    "cache_control_part": (
        [
            user(
                [
                    {"type": "text", "text": "Big doc", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "Question"},
                ]
            )
        ],
        {},
    ),
    "structured_output": (
        [user("Alice is 30")],
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "p", "schema": SCHEMA},
            }
        },
    ),
    "reasoning_low": ([user("think")], {"reasoning_effort": "low", "max_tokens": 3000}),
    "reasoning_high_default_max": ([user("think")], {"reasoning_effort": "high"}),
    "thinking_param": (
        [user("think")],
        {"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 5000},
    ),
    "thinking_replayed": (
        [
            user("find x"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call("call_1")],
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "Use search.", "signature": "c2ln"}
                ],
            },
            result("call_1"),
        ],
        {
            "tools": TOOLS,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "max_tokens": 4000,
        },
    ),
    "max_completion_tokens": ([user("hi")], {"max_completion_tokens": 77}),
}


def litellm_body(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's Anthropic request body for the same call (no request is sent)."""
    import litellm

    config = litellm.AnthropicConfig()
    optional = config.map_openai_params(
        non_default_params=copy.deepcopy(params),
        optional_params={},
        model=MODEL,
        drop_params=False,
    )
    return config.transform_request(MODEL, copy.deepcopy(messages), optional, {}, {})


def our_body(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    return to_anthropic_kwargs(parse_request(messages, params), MODEL)


def _text_blocks(value: Any) -> Any:
    # Documented equivalence: a string content (or system) is one text block.
    return [{"type": "text", "text": value}] if isinstance(value, str) else value


def _system(value: Any) -> Any:
    # Several system messages: LiteLLM sends one text block each, we join the texts with
    # a blank line (today's behaviour); without cache markers the prompt is the same.
    blocks = _text_blocks(value)
    if blocks and all(set(b) == {"type", "text"} for b in blocks):
        return "\n\n".join(b["text"] for b in blocks)
    return blocks


def _block(block: dict[str, Any]) -> dict[str, Any]:
    block = dict(block)
    if block.get("type") == "tool_result":
        block["content"] = _text_blocks(block.get("content"))
    return block


def _normalized(body: dict[str, Any]) -> dict[str, Any]:
    messages = [
        {"role": m["role"], "content": [_block(b) for b in _text_blocks(m["content"])]}
        for m in body["messages"]
    ]
    # "custom" is the documented default tool type: present or absent, the same tool.
    tools = [
        {k: v for k, v in t.items() if (k, v) != ("type", "custom")} for t in body.get("tools", [])
    ]
    extra = body.get("extra_body", {})
    # LiteLLM still uses the beta top-level ``output_format``; anthropic 2.13's signature
    # (and the GA API) has it as ``output_config.format``: the same field, renamed.
    fmt = body.get("output_format") or body.get("output_config", {}).get("format")
    return {
        "messages": messages,
        "system": _system(body.get("system")),
        "tools": tools,
        "tool_choice": body.get("tool_choice"),
        "thinking": body.get("thinking"),
        "output_format": fmt,
        "stop_sequences": body.get("stop_sequences"),
        "metadata": body.get("metadata"),
        "max_tokens": body.get("max_tokens"),
        # We put what the SDK's signature lacks in extra_body; LiteLLM at the top level.
        "temperature": body.get("temperature", extra.get("temperature")),
        "top_p": body.get("top_p", extra.get("top_p")),
    }


@pytest.mark.parametrize("name", list(CASES))
def test_same_body_as_litellm(name: str) -> None:
    """Our Anthropic body matches LiteLLM's field by field, up to documented equivalences."""
    messages, params = CASES[name]
    ours = _normalized(our_body(messages, params))
    theirs = _normalized(litellm_body(messages, params))
    if "max_tokens" not in params and "max_completion_tokens" not in params:
        # Not given: each side has its own default (ours 4096, LiteLLM's Router default;
        # LiteLLM's transform the model's maximum), so only given values are compared.
        del ours["max_tokens"], theirs["max_tokens"]
    for field in ours:
        assert ours[field] == theirs[field], f"{name}: {field} differs"


_WRAPPERS = {typing.Annotated, typing_extensions.Required, typing_extensions.NotRequired}
_SEQUENCES = {list, tuple, collections.abc.Iterable, collections.abc.Sequence}


def _required(hint: Any, hints: dict[str, Any]) -> set[str]:
    # The SDK's modules use postponed annotations, so Required[...] is only seen here.
    marked = {k for k, h in hints.items() if typing.get_origin(h) is typing_extensions.Required}
    optional = {
        k for k, h in hints.items() if typing.get_origin(h) is typing_extensions.NotRequired
    }
    return marked | (set(hint.__required_keys__) - optional)


def _same_kind(value: Any, hint: Any) -> bool:
    """Whether ``hint`` is the union member meant for ``value`` (by JSON kind and ``type``)."""
    while typing.get_origin(hint) in _WRAPPERS:
        hint = typing.get_args(hint)[0]
    if isinstance(value, str):
        return hint is str
    if isinstance(value, list):
        return typing.get_origin(hint) in _SEQUENCES
    if isinstance(value, dict) and typing_extensions.is_typeddict(hint):
        kind = typing.get_type_hints(hint, include_extras=True).get("type")
        while typing.get_origin(kind) in _WRAPPERS:
            kind = typing.get_args(kind)[0]
        return kind is None or value.get("type") in typing.get_args(kind)
    return False


def _schema_problems(value: Any, hint: Any, where: str) -> list[str]:
    """Required keys missing, keys the documented schema lacks, wrong types, recursively."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in _WRAPPERS:
        return _schema_problems(value, args[0], where)
    if origin is typing.Union or isinstance(hint, types.UnionType):
        options = [option for option in args if _same_kind(value, option)] or list(args)
        results = [_schema_problems(value, option, where) for option in options]
        return min(results, key=len)
    if origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} not allowed"]
    if typing_extensions.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        hints = typing.get_type_hints(hint, include_extras=True)
        problems = [f"{where}.{k}: required" for k in _required(hint, hints) if k not in value]
        problems += [f"{where}.{k}: not in the schema" for k in value if k not in hints]
        for key, item in value.items():
            if key in hints:
                problems += _schema_problems(item, hints[key], f"{where}.{key}")
        return problems
    if origin in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return [f"{where}: expected a list"]
        return [
            p for k, v in enumerate(value) for p in _schema_problems(v, args[0], f"{where}[{k}]")
        ]
    if origin in (dict, collections.abc.Mapping):
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    if hint is float:
        return [] if isinstance(value, (int, float)) else [f"{where}: not a number"]
    if hint is type(None):
        return [] if value is None else [f"{where}: expected null"]
    if isinstance(hint, type) and hint is not object:  # str, int, and the SDK's models
        return [] if isinstance(value, hint) else [f"{where}: not {hint.__name__}"]
    return []


@pytest.mark.parametrize("name", list(CASES))
def test_body_fits_documented_anthropic_schema(name: str) -> None:
    """Every body we build fits the Messages API's documented request schema."""
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

    messages, params = CASES[name]
    body = {k: v for k, v in our_body(messages, params).items() if k != "extra_body"}
    assert _schema_problems(body, MessageCreateParamsNonStreaming, "body") == []


@pytest.mark.parametrize("name", list(CASES))
def test_openai_body_fits_documented_schema(name: str) -> None:
    """The same requests, translated for LiteLLM, fit OpenAI's Chat Completions schema."""
    from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

    messages, params = CASES[name]
    body = {"model": "gpt-x", **to_openai_kwargs(parse_request(messages, params))}
    # thinking_blocks are LiteLLM's extension; our translation drops them for OpenAI.
    assert _schema_problems(body, CompletionCreateParamsNonStreaming, "body") == []


def test_schema_check_catches_an_invalid_body() -> None:
    """The schema check itself rejects what the real API rejects (it is not a no-op)."""
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

    bad = {
        "model": "m",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    problems = _schema_problems(bad, MessageCreateParamsNonStreaming, "body")
    assert any("tool_use_id: required" in p for p in problems)
    assert any("tools[0]" in p for p in problems)


def test_openai_schema_check_catches_an_invalid_body() -> None:
    """The OpenAI check rejects Anthropic blocks and thinking_blocks sent to Chat Completions."""
    from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

    bad = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]},
            {"role": "assistant", "content": "a", "thinking_blocks": []},
        ],
    }
    problems = _schema_problems(bad, CompletionCreateParamsNonStreaming, "body")
    assert any("messages[0]" in p for p in problems)
    assert any("thinking_blocks: not in the schema" in p for p in problems)


ANTHROPIC_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "anthropic_tool_round": (
        [
            user("find x"),
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Searching."},
                    {"type": "tool_use", "id": "toolu_01", "name": "search", "input": {"q": "x"}},
                ],
            },
            user([{"type": "tool_result", "tool_use_id": "toolu_01", "content": "found"}]),
        ],
        {
            "tools": [
                {"name": "search", "description": "A tool.", "input_schema": {"type": "object"}}
            ]
        },
    ),
    "anthropic_image_block": (
        [
            user(
                [
                    {"type": "text", "text": "What?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                ]
            )
        ],
        {},
    ),
    "anthropic_tool_choice": (
        [user("find x")],
        {
            "tools": [{"name": "search", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        },
    ),
}


@pytest.mark.parametrize("name", list(CASES) + list(ANTHROPIC_CASES))
def test_openai_form_round_trips_through_litellm(name: str) -> None:
    """Our OpenAI form, put through LiteLLM's Anthropic translation, gives our Anthropic body.

    This is the failover path in reverse: what LiteLLM receives from us must mean the same
    request as what the native Anthropic path sends, whichever dialect the caller wrote.
    """
    messages, params = {**CASES, **ANTHROPIC_CASES}[name]
    request = parse_request(messages, params)
    openai_form = to_openai_kwargs(request)
    openai_messages = openai_form.pop("messages")
    ours = _normalized(to_anthropic_kwargs(request, MODEL))
    theirs = _normalized(litellm_body(openai_messages, openai_form))
    if "max_tokens" not in params and "max_completion_tokens" not in params:
        del ours["max_tokens"], theirs["max_tokens"]
    # The documented degradations on the way to OpenAI: signed thinking is dropped (a
    # signature is provider-bound), cache_control markers are removed, and a thinking
    # budget travels as the nearest effort level (2000 tokens -> "medium" -> 2048).
    ours = _without_cache_control(ours)
    ours["system"] = _system(ours["system"])
    ours["messages"] = [
        {**m, "content": [b for b in m["content"] if b["type"] != "thinking"]}
        for m in ours["messages"]
    ]
    if ours["thinking"] is not None and theirs["thinking"] is not None:
        ours["thinking"] = {**ours["thinking"], "budget_tokens": None}
        theirs["thinking"] = {**theirs["thinking"], "budget_tokens": None}
    # An object schema without "properties" is one with none: LiteLLM adds the empty dict.
    for tool in ours["tools"]:
        tool["input_schema"] = {"properties": {}, **tool["input_schema"]}
    for field in ours:
        assert ours[field] == theirs[field], f"{name}: {field} differs"


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_cache_control(v) for v in value]
    return value
