"""Read a request written in OpenAI Chat Completions form, Anthropic Messages form, or both.

Each message and part is recognised by its own shape, not by a global switch, because a
conversation begun on one provider continues on the other: an Anthropic-shaped history
may be followed by ``resp.message`` (OpenAI-shaped) and ``role: "tool"`` results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _json
from ._model import InvalidRequest, Message, Part, Request, Role, ToolChoice

__all__ = ["parse_request"]

# Keywords with a meaning of their own; every other keyword is passed through as given.
_STRUCTURAL = frozenset(
    {
        "system",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "output_format",
        "output_config",
        "reasoning_effort",
        "thinking",
        "stop",
        "stop_sequences",
        "max_completion_tokens",
        "metadata",
    }
)
_NO_TOOLS: dict[str, Any] = {"type": "object", "properties": {}}


def parse_request(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Request:
    """Normalize a request given in OpenAI Chat Completions or Anthropic Messages form.

    Args:
        messages: the conversation; ``system`` (or ``developer``) messages are lifted into
            the system prompt, ``tool`` messages become ``tool_result`` parts of a user
            turn, and consecutive turns of one role are merged (as Anthropic requires).
        params: every other keyword of the call (``max_tokens``, ``tools``, ``system``...).

    Returns:
        The normalized :class:`Request`.

    Raises:
        InvalidRequest: malformed input; the message names the argument
            (``messages[3].tool_calls[0].function.arguments: not valid JSON``).
    """
    if not isinstance(messages, (list, tuple)):
        raise InvalidRequest("messages", "must be a list of messages")
    system: list[Any] = []
    given = params.get("system")
    if given:
        system.append(given)
    out = _messages(messages, system)
    if params.keys().isdisjoint(_STRUCTURAL):  # plain text: nothing more to read
        return Request(out, _system(system), params=dict(params))
    rest = {k: v for k, v in params.items() if k not in _STRUCTURAL}
    stop = params.get("stop_sequences", params.get("stop"))
    if stop is not None:
        rest["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if "max_completion_tokens" in params and "max_tokens" not in params:
        rest["max_tokens"] = params["max_completion_tokens"]
    metadata = params.get("metadata")
    if isinstance(metadata, Mapping) and "user_id" in metadata:
        rest.setdefault("user", metadata["user_id"])
        others = {k: v for k, v in metadata.items() if k != "user_id"}
        if others:
            rest["metadata"] = others
    elif metadata is not None:
        rest["metadata"] = metadata
    choice, parallel = _tool_choice(params.get("tool_choice"))
    if "parallel_tool_calls" in params:
        parallel = params["parallel_tool_calls"]
    response_format, effort = _output(params, rest)
    thinking = params.get("thinking")
    if thinking is not None and not isinstance(thinking, Mapping):
        raise InvalidRequest("thinking", 'must be a dict such as {"type": "enabled", ...}')
    return Request(
        out,
        _system(system),
        tools=_tools(params.get("tools")),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        response_format=response_format,
        reasoning_effort=params.get("reasoning_effort", effort),
        thinking=dict(thinking) if thinking is not None else None,
        params=rest,
    )


def _messages(messages: Sequence[Mapping[str, Any]], system: list[Any]) -> list[Message]:
    out: list[Message] = []
    for i, message in enumerate(messages):
        try:
            role = message["role"]
            content = message.get("content")
        except (TypeError, KeyError, AttributeError):
            raise InvalidRequest(f"messages[{i}]", 'needs a "role"') from None
        # The common shapes inline: this loop runs for every message of every call.
        if role == "tool" and type(content) is str and type(message.get("tool_call_id")) is str:
            role = "user"
            content = [
                {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": content}
            ]
        elif (
            role == "assistant"
            and content is None
            and len(message) == 3
            and type(calls := message.get("tool_calls")) is list
            and calls
        ):
            content = [_tool_call(call, i, k) for k, call in enumerate(calls)]
        elif role in ("system", "developer"):
            if "cache_control" in message:
                content = _marked(_text_blocks(content, f"messages[{i}].content"), message)
            system.append(content)
            continue
        elif type(content) is not str or len(message) > 2 or role not in ("user", "assistant"):
            role, content = _turn(role, content, message, i)
            if not content and role == "assistant":  # said nothing: Anthropic rejects it empty
                continue
            if "cache_control" in message:  # LiteLLM's message-level marker: on the last part
                content = _marked(content, message)
        if out and out[-1]["role"] == role:
            previous = out[-1]["content"]
            out[-1] = {"role": role, "content": _as_blocks(previous) + _as_blocks(content)}
        else:
            out.append({"role": role, "content": content})
    return out


def _turn(
    role: Any, content: Any, message: Mapping[str, Any], i: int
) -> tuple[Role, str | list[Part]]:
    if role == "user":
        if isinstance(content, str):
            return "user", content
        return "user", _user_parts(content, f"messages[{i}].content")
    if role == "assistant":
        return "assistant", _assistant(message, i)
    if role == "tool":
        return "user", [_tool_message(message, i)]
    raise InvalidRequest(f"messages[{i}].role", f"unknown role {role!r}")


def _as_blocks(content: str | list[Part]) -> list[Part]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _marked(content: str | list[Part], message: Mapping[str, Any]) -> list[Part]:
    blocks = list(_as_blocks(content))
    if blocks:
        blocks[-1] = {**blocks[-1], "cache_control": message["cache_control"]}
    return blocks


def _system(parts: list[Any]) -> str | list[Part] | None:
    if not parts:
        return None
    if all(isinstance(p, str) for p in parts):
        return "\n\n".join(parts)
    blocks: list[Part] = []
    for k, part in enumerate(parts):
        blocks.extend(_text_blocks(part, f"system[{k}]"))
    return blocks


def _text_blocks(content: Any, where: str) -> list[Part]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, Sequence):
        raise InvalidRequest(where, "must be a string or a list of text parts")
    blocks = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or part.get("type") != "text":
            raise InvalidRequest(f"{where}[{j}]", "only text parts are allowed here")
        blocks.append(_text(part, f"{where}[{j}]"))
    return blocks


def _text(part: Mapping[str, Any], where: str) -> Part:
    text = part.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}.text", "must be a string")
    block: Part = {"type": "text", "text": text}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    if part.get("citations"):
        block["citations"] = part["citations"]
    return block


def _user_parts(content: Any, where: str) -> list[Part]:
    if content is None or not isinstance(content, Sequence):
        raise InvalidRequest(where, "must be a string or a list of content parts")
    parts: list[Part] = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InvalidRequest(f"{where}[{j}]", 'must be a dict with a "type"')
        kind = part["type"]
        if kind == "text":
            parts.append(_text(part, f"{where}[{j}]"))
        elif kind == "image_url":
            parts.append(_image_url(part, f"{where}[{j}]"))
        elif kind == "file":
            parts.append(_file(part, f"{where}[{j}]"))
        elif kind == "tool_result":
            parts.append(_tool_result(part, f"{where}[{j}]"))
        elif kind in ("tool_use", "thinking", "redacted_thinking"):
            raise InvalidRequest(f"{where}[{j}]", f"a {kind!r} part belongs to an assistant turn")
        else:  # image, document, input_audio, and Anthropic-only blocks: kept as given
            parts.append(dict(part))
    return parts


def _data_url(url: str, where: str) -> tuple[str, str]:
    """``data:image/png;base64,AAAA`` -> ``("image/png", "AAAA")``."""
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequest(where, "a data URL must be base64 (data:<type>;base64,...)")
    return head[5 : -len(";base64")], data


def _image_url(part: Mapping[str, Any], where: str) -> Part:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"{where}.image_url.url", "must be a string")
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{where}.image_url.url")
        block: Part = {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    else:
        block = {"type": "image", "source": {"type": "url", "url": url}}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _file(part: Mapping[str, Any], where: str) -> Part:
    file = part.get("file")
    if not isinstance(file, Mapping):
        raise InvalidRequest(f"{where}.file", "must be a dict with file_data or file_id")
    block: Part
    if isinstance(file.get("file_data"), str):
        media_type, data = _data_url(file["file_data"], f"{where}.file.file_data")
        if media_type.startswith("image/"):
            source = {"type": "base64", "media_type": media_type, "data": data}
            return {"type": "image", "source": source}
        block = {
            "type": "document",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
        if file.get("filename"):
            block["title"] = file["filename"]
    elif isinstance(file.get("file_id"), str):
        block = {"type": "document", "source": {"type": "file", "file_id": file["file_id"]}}
    else:
        raise InvalidRequest(f"{where}.file", "needs file_data (a data URL) or file_id")
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _tool_result(part: Mapping[str, Any], where: str) -> Part:
    if not isinstance(part.get("tool_use_id"), str):
        raise InvalidRequest(f"{where}.tool_use_id", "must be a string")
    content = part.get("content")
    if content is None or isinstance(content, str):
        return dict(part)
    return {**part, "content": _user_parts(content, f"{where}.content")}


def _tool_message(message: Mapping[str, Any], i: int) -> Part:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"messages[{i}].tool_call_id", "a tool message needs the call's id")
    content = message.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = _user_parts(content, f"messages[{i}].content")
    return {"type": "tool_result", "tool_use_id": call_id, "content": content}


def _assistant(message: Mapping[str, Any], i: int) -> str | list[Part]:
    content = message.get("content")
    thinking = message.get("thinking_blocks")
    calls = message.get("tool_calls")
    if not thinking and not calls and (type(content) is str or content is None):
        return content or ""
    parts: list[Part] = []
    if thinking:
        parts.extend(_thinking_blocks(thinking, f"messages[{i}].thinking_blocks"))
    if content is None:
        pass
    elif type(content) is str:
        if content:
            parts.append({"type": "text", "text": content})
    else:
        parts.extend(_assistant_parts(content, f"messages[{i}].content"))
    if calls:
        if type(calls) is not list and not isinstance(calls, Sequence):
            raise InvalidRequest(f"messages[{i}].tool_calls", "must be a list")
        for k, call in enumerate(calls):
            parts.append(_tool_call(call, i, k))
    return parts


def _thinking_blocks(blocks: Any, where: str) -> list[Part]:
    if not isinstance(blocks, Sequence):
        raise InvalidRequest(where, "must be a list of thinking blocks")
    out = []
    for j, block in enumerate(blocks):
        if not isinstance(block, Mapping) or block.get("type") not in (
            "thinking",
            "redacted_thinking",
        ):
            raise InvalidRequest(f"{where}[{j}]", "must be a thinking or redacted_thinking block")
        out.append(dict(block))
    return out


def _assistant_parts(content: Any, where: str) -> list[Part]:
    if not isinstance(content, Sequence):
        raise InvalidRequest(where, "must be a string, None or a list of parts")
    parts: list[Part] = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InvalidRequest(f"{where}[{j}]", 'must be a dict with a "type"')
        kind = part["type"]
        if kind == "text":
            parts.append(_text(part, f"{where}[{j}]"))
        elif kind == "refusal":  # OpenAI's refusal part: the words the model said
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        elif kind == "tool_use":
            if not isinstance(part.get("id"), str) or not isinstance(part.get("name"), str):
                raise InvalidRequest(f"{where}[{j}]", "a tool_use part needs id and name")
            parts.append(dict(part))
        elif kind in ("image_url", "tool_result", "file"):
            raise InvalidRequest(f"{where}[{j}]", f"a {kind!r} part belongs to a user turn")
        else:  # thinking, redacted_thinking, Anthropic server-tool blocks: kept as given
            parts.append(dict(part))
    return parts


def _tool_call(call: Any, i: int, k: int) -> Part:
    try:
        function = call["function"]
        call_id, name = call["id"], function["name"]
        arguments = function.get("arguments") or "{}"
    except (TypeError, KeyError, AttributeError):
        where = f"messages[{i}].tool_calls[{k}]"
        raise InvalidRequest(where, "needs id, function.name and function.arguments") from None
    if isinstance(arguments, str):
        try:
            arguments = _json.loads(arguments)
        except ValueError:
            where = f"messages[{i}].tool_calls[{k}].function.arguments"
            raise InvalidRequest(where, "not valid JSON") from None
    if not isinstance(arguments, dict):
        where = f"messages[{i}].tool_calls[{k}].function.arguments"
        raise InvalidRequest(where, "must be a JSON object")
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, Sequence):
        raise InvalidRequest("tools", "must be a list")
    out = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise InvalidRequest(f"tools[{k}]", "must be a dict")
        if tool.get("type") == "function":
            function = tool.get("function")
            if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
                raise InvalidRequest(f"tools[{k}].function", "needs a name")
            spec: dict[str, Any] = {"name": function["name"]}
            if function.get("description"):
                spec["description"] = function["description"]
            spec["input_schema"] = function.get("parameters") or _NO_TOOLS
            if function.get("strict") is not None:
                spec["strict"] = function["strict"]
            if "cache_control" in tool:
                spec["cache_control"] = tool["cache_control"]
            out.append(spec)
        elif isinstance(tool.get("name"), str) and ("input_schema" in tool or "type" in tool):
            out.append(dict(tool))  # Anthropic's own shape: custom or server tool
        else:
            raise InvalidRequest(f"tools[{k}]", 'needs {"type": "function", "function": {...}}')
    return out


def _tool_choice(choice: Any) -> tuple[ToolChoice | None, bool | None]:
    if choice is None:
        return None, None
    if isinstance(choice, str):
        mode = {"auto": "auto", "none": "none", "required": "required", "any": "required"}
        if choice not in mode:
            raise InvalidRequest("tool_choice", f"unknown value {choice!r}")
        return ToolChoice(mode[choice]), None  # type: ignore[arg-type]
    if isinstance(choice, Mapping):
        parallel = choice.get("disable_parallel_tool_use")
        parallel = None if parallel is None else not parallel
        kind = choice.get("type")
        if kind == "function" and isinstance(choice.get("function"), Mapping):
            return ToolChoice("tool", choice["function"].get("name")), parallel
        if kind == "tool" and isinstance(choice.get("name"), str):
            return ToolChoice("tool", choice["name"]), parallel
        if kind in ("auto", "none"):
            return ToolChoice(kind), parallel
        if kind in ("any", "required"):
            return ToolChoice("required"), parallel
    raise InvalidRequest("tool_choice", 'must be "auto", "none", "required" or name a function')


def _output(params: Mapping[str, Any], rest: dict[str, Any]) -> tuple[Any, str | None]:
    """``response_format`` (OpenAI) or ``output_config.format``/``output_format`` (Anthropic)."""
    response_format = params.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, Mapping) or "type" not in response_format:
            raise InvalidRequest("response_format", 'must be a dict with a "type"')
        if response_format["type"] == "text":
            response_format = None
    config = params.get("output_config")
    effort = None
    fmt = params.get("output_format")
    if isinstance(config, Mapping):
        fmt = config.get("format", fmt)
        effort = config.get("effort")
        others = {k: v for k, v in config.items() if k not in ("format", "effort")}
        if others:
            rest["output_config"] = others
    if response_format is None and isinstance(fmt, Mapping):
        if not isinstance(fmt.get("schema"), Mapping):
            raise InvalidRequest("output_config.format.schema", "must be a JSON schema dict")
        schema = {"name": "output", "schema": fmt["schema"]}
        response_format = {"type": "json_schema", "json_schema": schema}
    return (dict(response_format) if response_format is not None else None), effort
