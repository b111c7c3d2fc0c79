"""Validation of Anthropic Messages API request bodies (``POST /v1/messages``).

Messages follow the real API's wording (pydantic-style ``path: problem`` with dotted
paths such as ``messages.1.content.0.type``), so a test can match on the field.
"""

from __future__ import annotations

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
from ._schema_anthropic_params import (
    TOOL_NAME,
    cache_control,
    output_params,
    thinking_config,
    thinking_limits,
    tool_choice,
    tools,
)

__all__ = ["anthropic_problem"]

_TOP = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
        "container", "mcp_servers", "context_management", "output_config", "output_format",
        "cache_control", "inference_geo", "speed",
    }
)  # fmt: skip
_BLOCK_KEYS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "text": (frozenset({"type", "text", "cache_control", "citations"}), ("text",)),
    "image": (frozenset({"type", "source", "cache_control"}), ()),
    "document": (
        frozenset({"type", "source", "cache_control", "title", "context", "citations"}),
        (),
    ),
    "tool_use": (frozenset({"type", "id", "name", "input", "cache_control"}), ("id", "name")),
    "tool_result": (
        frozenset({"type", "tool_use_id", "content", "is_error", "cache_control"}),
        ("tool_use_id",),
    ),
    "thinking": (frozenset({"type", "thinking", "signature"}), ("thinking", "signature")),
    "redacted_thinking": (frozenset({"type", "data"}), ("data",)),
}
# Server-tool and search blocks: accepted as they come (their shapes are out of scope).
_LOOSE_BLOCKS = frozenset(
    {
        "search_result", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
        "code_execution_tool_result", "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result", "tool_search_tool_result",
        "container_upload", "mcp_tool_use", "mcp_tool_result",
    }
)  # fmt: skip
_ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_WORDS = {
    "str": "a valid string",
    "int": "a valid integer",
    "number": "a valid number",
    "bool": "a valid boolean",
    "dict": "a valid dictionary",
    "list": "a valid list",
}


def anthropic_problem(body: Any) -> SchemaProblem | None:
    """The 400 the Messages API would give ``body``, or ``None`` when it is valid."""
    try:
        _check(body)
    except Invalid as err:
        return _problem(err)
    return None


def _problem(err: Invalid) -> SchemaProblem:
    where = ".".join(str(p) for p in err.path)
    if err.kind == "missing":
        text = "Field required"
    elif err.kind == "extra":
        text = "Extra inputs are not permitted"
    elif err.kind == "type":
        text = f"Input should be {_WORDS.get(err.detail, err.detail)}"
    else:
        text = err.detail
    return SchemaProblem(f"{where}: {text}" if where else text, where or None)


def _check(body: Any) -> None:
    check_type(body, (), "dict")
    check_keys(body, _TOP, ())
    model = field(body, "model", (), "str", required=True)
    if not model:
        raise Invalid(("model",), "value", "String should have at least 1 character")
    max_tokens = field(body, "max_tokens", (), "int", required=True)
    check_range(max_tokens, ("max_tokens",), 1)
    thinking = thinking_config(body.get("thinking"), max_tokens)
    _system(body.get("system"))
    _messages(field(body, "messages", (), "list", required=True), thinking)
    check_range(field(body, "temperature", (), "number"), ("temperature",), 0, 1)
    check_range(field(body, "top_p", (), "number"), ("top_p",), 0, 1)
    check_range(field(body, "top_k", (), "int"), ("top_k",), 0)
    for i, stop in enumerate(field(body, "stop_sequences", (), "list") or ()):
        check_type(stop, ("stop_sequences", i), "str")
    field(body, "stream", (), "bool")
    metadata = field(body, "metadata", (), "dict")
    if metadata is not None:
        check_keys(metadata, ("user_id",), ("metadata",))
        field(metadata, "user_id", ("metadata",), "str")
    check_one_of(body.get("service_tier"), ("service_tier",), ("auto", "standard_only"))
    tools(field(body, "tools", (), "list"))
    tool_choice(body.get("tool_choice"))
    output_params(body)
    if thinking:
        thinking_limits(body)


def _system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    for i, block in enumerate(check_type(system, ("system",), "list")):
        path: Path = ("system", i)
        check_type(block, path, "dict")
        if block.get("type") != "text":
            raise Invalid((*path, "type"), "value", "Input should be 'text'")
        _block(block, path, "system")


def _messages(messages: list[Any], thinking: bool) -> None:
    if not messages:
        raise Invalid(("messages",), "value", "at least one message is required")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        path: Path = ("messages", i)
        check_type(message, path, "dict")
        role = message.get("role")
        if role == "system":
            raise Invalid(
                ("messages",),
                "value",
                'Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.',
            )
        if role is None:
            raise Invalid((*path, "role"), "missing")
        check_one_of(role, (*path, "role"), ("user", "assistant"))
        check_keys(message, ("role", "content"), path)
        _content(message, path, final_assistant=i == last and role == "assistant")
    _tool_pairs(messages)
    if thinking:
        _thinking_replayed(messages)


def _content(message: dict[str, Any], path: Path, *, final_assistant: bool) -> None:
    content = message.get("content")
    if content is None:
        raise Invalid((*path, "content"), "missing")
    empty = Invalid(
        path, "value", "all messages must have non-empty content except for the optional "
        "final assistant message",
    )  # fmt: skip
    if isinstance(content, str):
        if not content and not final_assistant:
            raise empty
        return
    blocks = check_type(content, (*path, "content"), "list")
    if not blocks and not final_assistant:
        raise empty
    seen_other = False
    for j, block in enumerate(blocks):
        where: Path = (*path, "content", j)
        kind = _block(block, where, message["role"])
        if kind == "tool_result" and seen_other:
            raise Invalid(
                where, "value", "tool_result blocks must come first in the content array, "
                "before any other content",
            )  # fmt: skip
        seen_other = seen_other or kind != "tool_result"


def _block(block: Any, path: Path, role: str) -> str:
    check_type(block, path, "dict")
    kind = block.get("type")
    if kind is None:
        raise Invalid((*path, "type"), "missing")
    if kind in _LOOSE_BLOCKS:
        return str(kind)
    if kind not in _BLOCK_KEYS:
        tags = ", ".join(f"'{t}'" for t in _BLOCK_KEYS)
        raise Invalid(
            path, "value", f"Input tag '{kind}' found using 'type' does not match any of the "
            f"expected tags: {tags}",
        )  # fmt: skip
    if kind in _ASSISTANT_ONLY and role != "assistant":
        raise Invalid(path, "value", f"`{kind}` blocks can only appear in assistant messages")
    if kind == "tool_result" and role != "user":
        raise Invalid(path, "value", "`tool_result` blocks can only appear in user messages")
    allowed, required = _BLOCK_KEYS[kind]
    check_keys(block, allowed, path)
    for key in required:
        field(block, key, path, "str", required=True)
    cache_control(block.get("cache_control"), (*path, "cache_control"))
    _block_body(kind, block, path)
    return str(kind)


def _block_body(kind: str, block: dict[str, Any], path: Path) -> None:
    if kind == "text" and not block["text"].strip():
        raise Invalid(path, "value", "text content blocks must contain non-whitespace text")
    if kind == "image":
        _source(field(block, "source", path, "dict", required=True), (*path, "source"), image=True)
    elif kind == "document":
        source = field(block, "source", path, "dict", required=True)
        _source(source, (*path, "source"), image=False)
    elif kind == "tool_use":
        field(block, "input", path, "dict", required=True)
        if not TOOL_NAME.match(block["name"]):
            raise Invalid((*path, "name"), "value", "String should match pattern "
                          "'^[a-zA-Z0-9_-]{1,128}$'")  # fmt: skip
    elif kind == "tool_result":
        field(block, "is_error", path, "bool")
        content = block.get("content")
        if content is not None and not isinstance(content, str):
            for k, part in enumerate(check_type(content, (*path, "content"), "list")):
                where: Path = (*path, "content", k)
                check_type(part, where, "dict")
                check_one_of(
                    part.get("type"),
                    (*where, "type"),
                    ("text", "image", "document", "search_result"),
                )
                _block(part, where, "user")


def _source(source: dict[str, Any], path: Path, *, image: bool) -> None:
    kinds = ("base64", "url", "file") if image else ("base64", "text", "url", "content", "file")
    kind = source.get("type")
    if kind is None:
        raise Invalid((*path, "type"), "missing")
    check_one_of(kind, (*path, "type"), kinds)
    if kind == "url":
        check_keys(source, ("type", "url"), path)
        field(source, "url", path, "str", required=True)
    elif kind == "file":
        check_keys(source, ("type", "file_id"), path)
        field(source, "file_id", path, "str", required=True)
    elif kind == "content":
        check_keys(source, ("type", "content"), path)
        if not isinstance(source.get("content"), str):
            field(source, "content", path, "list", required=True)
    else:
        check_keys(source, ("type", "media_type", "data"), path)
        media = field(source, "media_type", path, "str", required=True)
        field(source, "data", path, "str", required=True)
        if image:
            choices: tuple[str, ...] = _IMAGE_TYPES
        else:
            choices = ("application/pdf",) if kind == "base64" else ("text/plain",)
        check_one_of(media, (*path, "media_type"), choices)


def _tool_pairs(messages: list[dict[str, Any]]) -> None:
    """Each tool_use is answered in the very next message, each tool_result answers one."""
    previous: list[str] = []
    for i, message in enumerate(messages):
        blocks = message["content"] if isinstance(message["content"], list) else []
        if message["role"] == "user":
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block["tool_use_id"] not in previous:
                    raise Invalid(
                        ("messages", i, "content", j), "value",
                        f"unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block['tool_use_id']}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message.",
                    )  # fmt: skip
        if previous:
            answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            missing = [tid for tid in previous if tid not in answered]
            if missing:
                raise Invalid(
                    ("messages", i - 1), "value",
                    f"`tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message.",
                )  # fmt: skip
        previous = [
            b["id"]
            for b in blocks
            if message["role"] == "assistant" and b.get("type") == "tool_use"
        ]


def _thinking_replayed(messages: list[dict[str, Any]]) -> None:
    """Mid tool loop with thinking on, the last assistant turn must start with thinking."""
    last = messages[-1]
    if last["role"] != "user" or not isinstance(last["content"], list):
        return
    if not any(b.get("type") == "tool_result" for b in last["content"]):
        return
    turn = messages[-2] if len(messages) > 1 else None
    if turn is None or not isinstance(turn["content"], list) or not turn["content"]:
        return
    first = turn["content"][0].get("type")
    if first not in ("thinking", "redacted_thinking"):
        raise Invalid(
            ("messages", len(messages) - 2, "content", 0, "type"), "value",
            f"Expected `thinking` or `redacted_thinking`, but found `{first}`. When `thinking` "
            "is enabled, a final `assistant` message must start with a thinking block "
            "(preceding the lastmost set of `tool_use` and `tool_result` blocks).",
        )  # fmt: skip
