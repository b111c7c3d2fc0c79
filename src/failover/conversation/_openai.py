"""Normalized request -> valid OpenAI Chat Completions input, as LiteLLM should be fed.

Provider-only features degrade here, predictably: ``cache_control`` markers are removed,
thinking blocks are dropped (a signature is only valid for the provider that made it),
Anthropic-only parts and server tools make the request unsupported for this endpoint.
"""

from __future__ import annotations

from typing import Any

from . import _json
from ._model import Message, Part, Request, ToolChoice, UnsupportedRequest

__all__ = ["to_openai_kwargs"]

# Anthropic-native keywords that only tune Anthropic's own service: dropped elsewhere.
_ANTHROPIC_ONLY = frozenset(
    {"output_config", "container", "inference_geo", "service_tier", "speed", "diagnostics"}
)


def to_openai_kwargs(request: Request) -> dict[str, Any]:
    """The keywords for ``litellm.completion(model=..., **kwargs)``.

    Args:
        request: the normalized request (:func:`parse_request`).

    Returns:
        ``messages`` in Chat Completions form and the call's parameters: ``tools``,
        ``tool_choice``, ``parallel_tool_calls``, ``response_format``,
        ``reasoning_effort``, ``stop``, ``user``, and every unknown keyword as given.

    Raises:
        UnsupportedRequest: the request holds something Chat Completions cannot express
            (an Anthropic server tool, a document given by URL, a search result...).
    """
    messages: list[dict[str, Any]] = []
    if request.system is not None:
        messages.append({"role": "system", "content": _system(request.system)})
    for i, message in enumerate(request.messages):
        _message(message, i, messages)
    kwargs: dict[str, Any] = {"messages": messages}
    for key, value in request.params.items():
        if key == "metadata" or key in _ANTHROPIC_ONLY:
            continue
        kwargs[key] = value
    if request.tools is not None:
        kwargs["tools"] = [_tool(tool, k) for k, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        kwargs["tool_choice"] = _tool_choice(request.tool_choice)
    if request.parallel_tool_calls is not None and request.tools:
        kwargs["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        kwargs["response_format"] = request.response_format
    effort = request.reasoning_effort or _effort(request.thinking)
    if effort is not None:
        kwargs["reasoning_effort"] = effort
    return kwargs


def _system(system: str | list[Part]) -> str | list[dict[str, Any]]:
    if isinstance(system, str):
        return system
    return "\n\n".join(block["text"] for block in system)


def _message(message: Message, i: int, out: list[dict[str, Any]]) -> None:
    content = message["content"]
    role = message["role"]
    if isinstance(content, str):
        out.append({"role": role, "content": content})
    elif role == "assistant":
        out.append(_assistant(content, i))
    else:
        _user(content, i, out)


def _assistant(content: list[Part], i: int) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part["type"]
        if kind == "text":
            texts.append(part["text"])
        elif kind == "tool_use":
            arguments = _json.dumps(part.get("input") or {})
            function = {"name": part["name"], "arguments": arguments}
            calls.append({"id": part["id"], "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):
            raise UnsupportedRequest(
                f"messages[{i}].content[{j}]", f"Chat Completions cannot take a {kind!r} part"
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _user(content: list[Part], i: int, out: list[dict[str, Any]]) -> None:
    """Tool results become ``tool`` messages first; the other parts one user message."""
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        if part["type"] == "tool_result":
            out.append(_tool_result(part, f"messages[{i}].content[{j}]", parts))
        else:
            parts.append(_part(part, f"messages[{i}].content[{j}]"))
    if parts:
        plain = all(p["type"] == "text" for p in parts)
        if plain and len(parts) == 1:
            out.append({"role": "user", "content": parts[0]["text"]})
        else:
            out.append({"role": "user", "content": parts})


def _tool_result(part: Part, where: str, leftover: list[dict[str, Any]]) -> dict[str, Any]:
    """A tool message; images in the result (tool messages take text only) follow as user parts."""
    content = part.get("content")
    if content is None or isinstance(content, str):
        text = content or ""
    else:
        texts = []
        for j, block in enumerate(content):
            if block["type"] == "text":
                texts.append(block["text"])
            else:
                leftover.append(_part(block, f"{where}.content[{j}]"))
        text = "\n".join(texts)
    if part.get("is_error"):  # Chat Completions has no error flag: say it in the text
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": part["tool_use_id"], "content": text}


def _part(part: Part, where: str) -> dict[str, Any]:
    kind = part["type"]
    if kind == "text":
        return {"type": "text", "text": part["text"]}
    if kind == "image":
        source = part.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source['media_type']};base64,{source['data']}"
        elif source.get("type") == "url":
            url = source["url"]
        else:
            raise UnsupportedRequest(f"{where}.source", "only base64 and URL images travel")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "document":
        return _document(part, where)
    if kind in ("input_audio", "image_url", "file"):  # OpenAI's own parts, as given
        return {k: v for k, v in part.items() if k != "cache_control"}
    raise UnsupportedRequest(where, f"Chat Completions cannot take a {kind!r} part")


def _document(part: Part, where: str) -> dict[str, Any]:
    source = part.get("source") or {}
    kind = source.get("type")
    if kind == "base64":
        file = {"file_data": f"data:{source['media_type']};base64,{source['data']}"}
        if part.get("title"):
            file["filename"] = part["title"]
        return {"type": "file", "file": file}
    if kind == "text":
        return {"type": "text", "text": source.get("data", "")}
    if kind == "content" and isinstance(source.get("content"), list):
        texts = [b.get("text", "") for b in source["content"] if b.get("type") == "text"]
        return {"type": "text", "text": "\n".join(texts)}
    if kind == "file":
        return {"type": "file", "file": {"file_id": source.get("file_id")}}
    raise UnsupportedRequest(f"{where}.source", f"a {kind!r} document cannot travel to OpenAI")


def _tool(tool: dict[str, Any], k: int) -> dict[str, Any]:
    if "input_schema" not in tool or tool.get("type", "custom") != "custom":
        raise UnsupportedRequest(f"tools[{k}]", "an Anthropic server tool exists only on Anthropic")
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool["input_schema"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _effort(thinking: dict[str, Any] | None) -> str | None:
    """Anthropic's thinking budget -> the nearest OpenAI effort level (LiteLLM's budgets)."""
    if not thinking or thinking.get("type") == "disabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int):
        return "medium"  # adaptive thinking: the model decides
    if budget <= 1024:
        return "low"
    return "medium" if budget <= 2048 else "high"
