"""Validation of OpenAI Chat Completions request bodies (``POST /v1/chat/completions``).

Messages follow the real API's wording ("Missing required parameter: 'messages[0].role'.")
and ``param`` is the field's path in OpenAI's own notation (``messages[1].content[0]``).
"""

from __future__ import annotations

import re
from typing import Any

from ._schema import (
    Invalid,
    Path,
    SchemaProblem,
    check_keys,
    check_one_of,
    check_range,
    check_type,
    field,
)

__all__ = ["openai_problem"]

_TOP = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
        "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
        "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty",
        "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
        "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
        "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p",
        "user", "verbosity", "web_search_options",
    }
)  # fmt: skip
_MESSAGE_KEYS = {
    "system": ("role", "content", "name"),
    "developer": ("role", "content", "name"),
    "user": ("role", "content", "name"),
    "assistant": ("role", "content", "name", "tool_calls", "refusal", "audio", "function_call"),
    "tool": ("role", "content", "tool_call_id"),
}
_PARTS = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}
_PART_KEYS = {
    "text": ("type", "text"),
    "refusal": ("type", "refusal"),
    "image_url": ("type", "image_url"),
    "input_audio": ("type", "input_audio"),
    "file": ("type", "file"),
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_WORDS = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "a boolean",
    "dict": "an object",
    "list": "an array",
}


def openai_problem(body: Any) -> SchemaProblem | None:
    """The 400 Chat Completions would give ``body``, or ``None`` when it is valid."""
    try:
        _check(body)
    except Invalid as err:
        return _problem(err)
    return None


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _problem(err: Invalid) -> SchemaProblem:
    where = _dotted(err.path)
    if err.kind == "missing":
        text = f"Missing required parameter: '{where}'."
    elif err.kind == "extra":
        text = (
            f"Unrecognized request argument supplied: {where}"
            if len(err.path) == 1
            else f"Unknown parameter: '{where}'."
        )
    elif err.kind == "type":
        text = f"Invalid type for '{where}': expected {_WORDS.get(err.detail, err.detail)}."
    else:
        text = f"Invalid value for '{where}': {err.detail}" if where else err.detail
    return SchemaProblem(text, where or None)


def _check(body: Any) -> None:
    check_type(body, (), "dict")
    check_keys(body, _TOP, ())
    field(body, "model", (), "str", required=True)
    messages = field(body, "messages", (), "list", required=True)
    if not messages:
        raise Invalid(("messages",), "value", "empty array. Expected an array with minimum "
                      "length 1, but got an empty array instead.")  # fmt: skip
    for i, message in enumerate(messages):
        _message(message, ("messages", i))
    _tool_replies(messages)
    check_range(field(body, "temperature", (), "number"), ("temperature",), 0, 2)
    check_range(field(body, "top_p", (), "number"), ("top_p",), 0, 1)
    check_range(field(body, "n", (), "int"), ("n",), 1)
    for key in ("max_tokens", "max_completion_tokens"):
        check_range(field(body, key, (), "int"), (key,), 1)
    for key in ("frequency_penalty", "presence_penalty"):
        check_range(field(body, key, (), "number"), (key,), -2, 2)
    for key in ("stream", "parallel_tool_calls", "logprobs", "store"):
        field(body, key, (), "bool")
    for key in ("user", "safety_identifier", "prompt_cache_key"):
        field(body, key, (), "str")
    field(body, "seed", (), "int")
    _stop(body.get("stop"))
    _stream_options(body)
    check_one_of(
        body.get("reasoning_effort"),
        ("reasoning_effort",),
        ("none", "minimal", "low", "medium", "high", "xhigh"),
    )
    tools = field(body, "tools", (), "list")
    _tools(tools)
    if tools is None:
        for key in ("tool_choice", "parallel_tool_calls"):
            if body.get(key) is not None:
                raise Invalid(
                    (key,), "value", f"'{key}' is only allowed when 'tools' are specified."
                )
    _tool_choice(body.get("tool_choice"))
    _response_format(body.get("response_format"))


def _message(message: Any, path: Path) -> None:
    check_type(message, path, "dict")
    role = message.get("role")
    if role is None:
        raise Invalid((*path, "role"), "missing")
    if role not in _MESSAGE_KEYS:
        roles = ", ".join(f"'{r}'" for r in _MESSAGE_KEYS)
        raise Invalid((*path, "role"), "value", f"'{role}'. Supported values are: {roles}.")
    check_keys(message, _MESSAGE_KEYS[role], path)
    field(message, "name", path, "str")
    content = message.get("content")
    if role == "assistant":
        calls = field(message, "tool_calls", path, "list")
        if calls is not None:
            _tool_calls(calls, (*path, "tool_calls"))
        elif content is None and message.get("function_call") is None and not message.get("audio"):
            raise Invalid((*path, "content"), "value", "expected a string, got null.")
    elif content is None:
        raise Invalid((*path, "content"), "missing")
    if role == "tool":
        field(message, "tool_call_id", path, "str", required=True)
    if content is None or isinstance(content, str):
        return
    for j, part in enumerate(check_type(content, (*path, "content"), "list")):
        _part(part, (*path, "content", j), _PARTS[role])


def _part(part: Any, path: Path, kinds: tuple[str, ...]) -> None:
    check_type(part, path, "dict")
    kind = part.get("type")
    if kind is None:
        raise Invalid((*path, "type"), "missing")
    if kind not in kinds:
        listed = ", ".join(f"'{k}'" for k in kinds)
        raise Invalid((*path, "type"), "value", f"'{kind}'. Supported values are: {listed}.")
    check_keys(part, _PART_KEYS[kind], path)
    if kind in ("text", "refusal"):
        field(part, kind, path, "str", required=True)
        return
    inner = field(part, kind, path, "dict", required=True)
    where: Path = (*path, kind)
    if kind == "image_url":
        check_keys(inner, ("url", "detail"), where)
        field(inner, "url", where, "str", required=True)
        check_one_of(inner.get("detail"), (*where, "detail"), ("auto", "low", "high"))
    elif kind == "input_audio":
        check_keys(inner, ("data", "format"), where)
        field(inner, "data", where, "str", required=True)
        check_one_of(field(inner, "format", where, "str", required=True), (*where, "format"),
                     ("wav", "mp3"))  # fmt: skip
    else:
        check_keys(inner, ("file_data", "file_id", "filename"), where)
        for key in ("file_data", "file_id", "filename"):
            field(inner, key, where, "str")
        if inner.get("file_data") is None and inner.get("file_id") is None:
            raise Invalid(where, "value", "one of 'file_data' or 'file_id' is required.")


def _tool_calls(calls: list[Any], path: Path) -> None:
    if not calls:
        raise Invalid(path, "value", "empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.")  # fmt: skip
    for k, call in enumerate(calls):
        where: Path = (*path, k)
        check_type(call, where, "dict")
        check_keys(call, ("id", "type", "function"), where)
        field(call, "id", where, "str", required=True)
        check_one_of(field(call, "type", where, "str", required=True), (*where, "type"),
                     ("function",))  # fmt: skip
        function = field(call, "function", where, "dict", required=True)
        check_keys(function, ("name", "arguments"), (*where, "function"))
        field(function, "name", (*where, "function"), "str", required=True)
        field(function, "arguments", (*where, "function"), "str", required=True)


def _tool_replies(messages: list[dict[str, Any]]) -> None:
    """Tool messages answer the assistant message just before them, every call of it."""
    pending: list[str] = []
    owner = -1
    for i, message in enumerate(messages):
        if message["role"] == "tool":
            if owner < 0:
                raise Invalid(
                    ("messages", i, "role"), "value", "messages with role 'tool' must be a "
                    "response to a preceeding message with 'tool_calls'.",
                )  # fmt: skip
            tool_call_id = message["tool_call_id"]
            if tool_call_id not in pending:
                raise Invalid(
                    ("messages", i, "tool_call_id"), "value", f"'{tool_call_id}' does not "
                    "match any tool call of the preceding assistant message.",
                )  # fmt: skip
            pending.remove(tool_call_id)
            continue
        _unanswered(pending, owner)
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        pending = [call["id"] for call in calls or ()]
        owner = i if calls else -1
    _unanswered(pending, owner)


def _unanswered(pending: list[str], owner: int) -> None:
    if pending:
        raise Invalid(
            ("messages", owner), "value", "An assistant message with 'tool_calls' must be "
            "followed by tool messages responding to each 'tool_call_id'. The following "
            f"tool_call_ids did not have response messages: {', '.join(pending)}",
        )  # fmt: skip


def _stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    for i, item in enumerate(check_type(stop, ("stop",), "list")):
        check_type(item, ("stop", i), "str")


def _stream_options(body: dict[str, Any]) -> None:
    options = field(body, "stream_options", (), "dict")
    if options is None:
        return
    if body.get("stream") is not True:
        raise Invalid(("stream_options",), "value", "The 'stream_options' parameter is only "
                      "allowed when 'stream' is enabled.")  # fmt: skip
    check_keys(options, ("include_usage", "include_obfuscation"), ("stream_options",))
    field(options, "include_usage", ("stream_options",), "bool")


def _tools(tools: list[Any] | None) -> None:
    for i, tool in enumerate(tools or ()):
        path: Path = ("tools", i)
        check_type(tool, path, "dict")
        kind = field(tool, "type", path, "str", required=True)
        check_one_of(kind, (*path, "type"), ("function", "custom"))
        check_keys(tool, ("type", kind), path)
        inner = field(tool, kind, path, "dict", required=True)
        where: Path = (*path, kind)
        allowed = ("name", "description", "parameters", "strict")
        check_keys(
            inner, allowed if kind == "function" else ("name", "description", "format"), where
        )
        name = field(inner, "name", where, "str", required=True)
        if not _TOOL_NAME.match(name):
            raise Invalid((*where, "name"), "value", "string does not match pattern. Expected "
                          "a string that matches the pattern '^[a-zA-Z0-9_-]+$'.")  # fmt: skip
        field(inner, "description", where, "str")
        field(inner, "parameters", where, "dict")
        field(inner, "strict", where, "bool")


def _tool_choice(choice: Any) -> None:
    path: Path = ("tool_choice",)
    if choice is None or isinstance(choice, str):
        check_one_of(choice, path, ("none", "auto", "required"))
        return
    check_type(choice, path, "dict")
    kind = field(choice, "type", path, "str", required=True)
    check_one_of(kind, (*path, "type"), ("function", "custom", "allowed_tools"))
    check_keys(choice, ("type", kind), path)
    inner = field(choice, kind, path, "dict", required=True)
    if kind != "allowed_tools":
        check_keys(inner, ("name",), (*path, kind))
        field(inner, "name", (*path, kind), "str", required=True)


def _response_format(value: Any) -> None:
    if value is None:
        return
    path: Path = ("response_format",)
    check_type(value, path, "dict")
    kind = field(value, "type", path, "str", required=True)
    check_one_of(kind, (*path, "type"), ("text", "json_object", "json_schema"))
    if kind != "json_schema":
        check_keys(value, ("type",), path)
        return
    check_keys(value, ("type", "json_schema"), path)
    spec = field(value, "json_schema", path, "dict", required=True)
    where: Path = (*path, "json_schema")
    check_keys(spec, ("name", "description", "schema", "strict"), where)
    field(spec, "name", where, "str", required=True)
    field(spec, "description", where, "str")
    field(spec, "schema", where, "dict")
    field(spec, "strict", where, "bool")
