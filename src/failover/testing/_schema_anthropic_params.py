"""Validation of the Anthropic Messages API's request parameters beside ``messages``.

Tools, ``tool_choice``, the thinking config and its limits, structured output.
"""

from __future__ import annotations

import re
from typing import Any

from ._schema import Invalid, Path, check_keys, check_one_of, check_range, check_type, field

__all__ = [
    "TOOL_NAME",
    "cache_control",
    "output_params",
    "thinking_config",
    "thinking_limits",
    "tool_choice",
    "tools",
]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def thinking_config(value: Any, max_tokens: int) -> bool:
    """Check the thinking config; whether thinking is on."""
    if value is None:
        return False
    path: Path = ("thinking",)
    check_type(value, path, "dict")
    kind = value.get("type")
    if kind is None:
        raise Invalid((*path, "type"), "missing")
    check_one_of(kind, (*path, "type"), ("enabled", "disabled", "adaptive"))
    if kind == "disabled":
        check_keys(value, ("type",), path)
        return False
    if kind == "adaptive":
        check_keys(value, ("type", "display"), path)
        return True
    check_keys(value, ("type", "budget_tokens", "display"), path)
    budget = field(value, "budget_tokens", ("thinking", "enabled"), "int", required=True)
    check_range(budget, ("thinking", "enabled", "budget_tokens"), 1024)
    if budget >= max_tokens:
        raise Invalid(
            ("max_tokens",), "value", "`max_tokens` must be greater than `thinking.budget_tokens`"
        )
    return True


def thinking_limits(body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise Invalid(
            ("temperature",), "value", "`temperature` may only be set to 1 when thinking is enabled"
        )
    if body.get("top_k") is not None:
        raise Invalid(("top_k",), "value", "`top_k` is not supported when thinking is enabled")
    top_p = body.get("top_p")
    if top_p is not None and top_p < 0.95:
        raise Invalid(
            ("top_p",), "value", "`top_p` must be >= 0.95 or unset when thinking is enabled"
        )
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise Invalid(
            ("tool_choice",),
            "value",
            "Thinking may not be enabled when tool_choice forces tool use.",
        )


def tools(tools: list[Any] | None) -> None:
    names: set[str] = set()
    for i, tool in enumerate(tools or ()):
        path: Path = ("tools", i)
        check_type(tool, path, "dict")
        kind = tool.get("type")
        if kind == "function":
            raise Invalid(
                path, "value", "Input tag 'function' found using 'type' does not match any of "
                "the expected tags: 'custom', 'bash_20250124', 'text_editor_20250728', "
                "'web_search_20250305', ...",
            )  # fmt: skip
        name = field(tool, "name", path, "str", required=True)
        if kind not in (None, "custom"):
            continue  # a server tool (web_search_..., bash_...): its options are its own
        path = (*path, "custom")
        check_keys(
            tool,
            ("type", "name", "description", "input_schema", "cache_control", "strict",
             "input_examples", "defer_loading", "allowed_callers", "eager_input_streaming"),
            path,
        )  # fmt: skip
        if not TOOL_NAME.match(name):
            raise Invalid((*path, "name"), "value", "String should match pattern "
                          "'^[a-zA-Z0-9_-]{1,128}$'")  # fmt: skip
        if name in names:
            raise Invalid(("tools",), "value", f"Tool names must be unique: {name!r}")
        names.add(name)
        field(tool, "description", path, "str")
        schema = field(tool, "input_schema", path, "dict", required=True)
        if schema.get("type") != "object":
            raise Invalid((*path, "input_schema", "type"), "value", "Input should be 'object'")
        cache_control(tool.get("cache_control"), (*path, "cache_control"))


def tool_choice(choice: Any) -> None:
    if choice is None:
        return
    path: Path = ("tool_choice",)
    check_type(choice, path, "dict")
    kind = choice.get("type")
    if kind is None:
        raise Invalid((*path, "type"), "missing")
    check_one_of(kind, (*path, "type"), ("auto", "any", "tool", "none"))
    allowed = ("type", "disable_parallel_tool_use") + (("name",) if kind == "tool" else ())
    check_keys(choice, allowed, path)
    field(choice, "disable_parallel_tool_use", path, "bool")
    if kind == "tool":
        field(choice, "name", path, "str", required=True)


def output_params(body: dict[str, Any]) -> None:
    config = field(body, "output_config", (), "dict")
    if config is not None:
        check_keys(config, ("effort", "format"), ("output_config",))
        check_one_of(
            config.get("effort"),
            ("output_config", "effort"),
            ("low", "medium", "high", "xhigh", "max"),
        )
        output_format(config.get("format"), ("output_config", "format"))
    output_format(body.get("output_format"), ("output_format",))


def output_format(value: Any, path: Path) -> None:
    if value is None:
        return
    check_type(value, path, "dict")
    check_keys(value, ("type", "schema"), path)
    check_one_of(value.get("type"), (*path, "type"), ("json_schema",))
    field(value, "schema", path, "dict", required=True)


def cache_control(value: Any, path: Path) -> None:
    """Check a ``cache_control`` marker (``None`` is fine)."""
    if value is None:
        return
    check_type(value, path, "dict")
    check_keys(value, ("type", "ttl"), path)
    check_one_of(value.get("type"), (*path, "type"), ("ephemeral",))
    check_one_of(value.get("ttl"), (*path, "ttl"), ("5m", "1h"))
