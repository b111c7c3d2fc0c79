"""Normalized request -> the keywords of anthropic's ``messages.create`` / ``messages.stream``."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._model import Message, Part, Request, ToolChoice, UnsupportedRequest

__all__ = ["THINKING_BUDGETS", "to_anthropic_kwargs"]

# LiteLLM's mapping of OpenAI's reasoning_effort to a thinking budget (litellm.constants,
# DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET), so a route behaves the same whichever
# path reaches Claude. "minimal" is raised to Anthropic's minimum budget of 1024.
THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
    "xhigh": 8192,
    "max": 16384,
}

# OpenAI parameters the Messages API has no equivalent for: sending them would be a 400,
# dropping them would silently change the answer, so the endpoint cannot take the request.
_OPENAI_ONLY = {
    "frequency_penalty": (None, 0, 0.0),
    "presence_penalty": (None, 0, 0.0),
    "logit_bias": (None,),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "n": (None, 1),
    "seed": (None,),
    "modalities": (None,),
    "audio": (None,),
    "prediction": (None,),
}
# Part types the Messages API takes as they are.
_NATIVE = frozenset({"text", "image", "document", "tool_use", "tool_result", "search_result"})
# Anthropic refuses a user_id that is an email address or a phone number; LiteLLM
# drops those, and so does this translation.
_IDENTIFYING = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$|^\+?[\d\s\(\)-]{7,}$")
_TOOL_CHOICE = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


@functools.cache
def _accepted() -> frozenset[str]:
    """Keywords ``messages.create`` and ``messages.stream`` take; the rest go in ``extra_body``.

    anthropic 2.13 dropped ``temperature``, ``top_p`` and ``top_k`` from its signature
    (passing them raises TypeError) while the API still reads them from the body.
    """
    import anthropic  # only the Anthropic path pays for the SDK

    create = inspect.signature(anthropic.resources.Messages.create).parameters
    stream = inspect.signature(anthropic.resources.Messages.stream).parameters
    return frozenset(create) & frozenset(stream) - {"self", "stream"}


_PLAIN_PARAMS = frozenset({"max_tokens", "system"})
_PLAIN_KEYS = frozenset({"role", "content"})
_NEXT_ROLE = {"user": "assistant", "assistant": "user"}


def plain_anthropic_kwargs(
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    model: str,
    *,
    default_max_tokens: int = 4096,
) -> dict[str, Any] | None:
    """What :func:`to_anthropic_kwargs` would make of a plain chat, without the model in
    between; ``None`` for anything else.

    Plain: text-only turns (``{"role": ..., "content": "..."}``), user first, then
    alternating, and no keyword but ``max_tokens`` and a text ``system``. Most calls are
    this, and they skip the general translation's work.
    """
    if type(messages) is not list or not messages or not params.keys() <= _PLAIN_PARAMS:
        return None
    role = "user"
    for message in messages:
        if type(message) is not dict or message.keys() != _PLAIN_KEYS:
            return None
        content = message["content"]
        if message["role"] != role or type(content) is not str or not content:
            return None
        role = _NEXT_ROLE[role]
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": params.get("max_tokens", default_max_tokens),
        "messages": list(messages),
    }
    system = params.get("system")
    if system:
        if type(system) is not str:
            return None
        kwargs["system"] = system
    return kwargs


def to_anthropic_kwargs(
    request: Request, model: str, *, default_max_tokens: int = 4096
) -> dict[str, Any]:
    """The keywords for ``client.messages.create(**kwargs)`` (or ``messages.stream``).

    Args:
        request: the normalized request (:func:`parse_request`).
        model: the endpoint's model.
        default_max_tokens: ``max_tokens`` when the caller gave none (Anthropic requires
            it; with thinking on, the thinking budget is added to it, as LiteLLM does).

    Returns:
        ``model``, ``max_tokens``, ``messages`` and every other keyword; anything the
        SDK's signature lacks (``temperature``, ``top_k``, unknown keywords) is in
        ``extra_body``.

    Raises:
        UnsupportedRequest: the request uses something the Messages API cannot express
            (an audio part, ``n=2``, ``logprobs``...).
    """
    params = request.params
    kwargs: dict[str, Any] = {
        "model": model,
        "max_tokens": params.get("max_tokens", default_max_tokens),
        "messages": _messages(request.messages),
    }
    if request.system is not None:
        kwargs["system"] = request.system
    if request.tools is not None:
        kwargs["tools"] = request.tools
    if request.tool_choice is not None or request.parallel_tool_calls is not None:
        kwargs["tool_choice"] = _tool_choice(request.tool_choice, request.parallel_tool_calls)
    thinking = request.thinking or _thinking(request.reasoning_effort)
    if thinking is not None:
        kwargs["thinking"] = thinking
        budget = thinking.get("budget_tokens")
        if "max_tokens" not in params and isinstance(budget, int):
            kwargs["max_tokens"] = budget + default_max_tokens
    fmt = request.response_format
    if fmt is not None and fmt.get("type") == "json_schema":
        kwargs["output_config"] = {**params.get("output_config", {}), "format": _format(fmt)}
    # json_object has no Anthropic counterpart (it names no schema): dropped, as LiteLLM does.
    return _rest(kwargs, params)


def _rest(kwargs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    accepted = _accepted()
    extra: dict[str, Any] = {}
    for key, value in params.items():
        if key in kwargs or key in ("max_tokens", "extra_body"):
            continue
        if key == "stop":
            kwargs["stop_sequences"] = value
        elif key == "user":
            if _anonymous(value):
                kwargs["metadata"] = {"user_id": value}
        elif key == "metadata":
            continue  # Anthropic's metadata holds user_id only; others are LiteLLM's
        elif key in _OPENAI_ONLY:
            if value not in _OPENAI_ONLY[key]:
                raise UnsupportedRequest(key, "the Anthropic Messages API has no such parameter")
        elif key in accepted:
            kwargs[key] = value
        else:
            extra[key] = value
    if extra or "extra_body" in params:
        kwargs["extra_body"] = {**extra, **params.get("extra_body", {})}
    return kwargs


def _anonymous(user: Any) -> bool:
    return isinstance(user, str) and _IDENTIFYING.match(user) is None


def _messages(messages: list[Message]) -> list[Message]:
    out = list(messages)
    for i, message in enumerate(messages):
        content = message["content"]
        if not isinstance(content, str):
            for part in content:
                if part["type"] not in _NATIVE:  # rare: rebuild this message only
                    out[i] = {"role": message["role"], "content": _parts(content, i)}
                    break
    return out


def _parts(content: list[Part], i: int) -> list[Part]:
    out = []
    for j, part in enumerate(content):
        kind = part["type"]
        if kind in ("thinking", "redacted_thinking"):
            provider = part.get("provider", "anthropic")
            if provider != "anthropic":
                continue  # signed by another provider: meaningless here
            if "provider" in part:
                part = {k: v for k, v in part.items() if k != "provider"}  # noqa: PLW2901
        elif kind in ("input_audio", "image_url", "file"):
            raise UnsupportedRequest(
                f"messages[{i}].content[{j}]", f"Anthropic cannot take a {kind!r} part"
            )
        out.append(part)
    return out


def _tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any]:
    if choice is None:
        out: dict[str, Any] = {"type": "auto"}
    elif choice.mode == "tool":
        out = {"type": "tool", "name": choice.name}
    else:
        out = dict(_TOOL_CHOICE[choice.mode])
    if parallel is not None and out["type"] != "none":
        out["disable_parallel_tool_use"] = not parallel
    return out


def _thinking(effort: str | None) -> dict[str, Any] | None:
    if effort is None or effort == "none":
        return None
    if effort not in THINKING_BUDGETS:
        raise UnsupportedRequest("reasoning_effort", f"unknown level {effort!r}")
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}


def _format(response_format: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's json_schema response format -> Anthropic's ``output_config.format``.

    The schema goes through the SDK's own ``transform_schema``: it removes the keywords
    Anthropic's structured output rejects (``minLength``, ``maximum``...) and states them
    in the description instead, as the SDK does for ``output_format=`` types.
    """
    from anthropic.lib._parse._transform import transform_schema

    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise UnsupportedRequest("response_format.json_schema.schema", "must be a JSON schema")
    return {"type": "json_schema", "schema": transform_schema(schema)}
