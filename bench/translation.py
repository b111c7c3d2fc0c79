"""What translating a request costs: ``parse_request`` + ``to_anthropic_kwargs`` per call.

Two requests: P1 plain text (one user message, ``max_tokens``, ``temperature``) against
the translation it replaced (``to_anthropic`` + ``_split_params``, copied below as it
stood), and a 20-message tool conversation (system prompt, a tool, nine tool calls with
their results, the tool in ``tools``). Each is timed as p50 over many single-call
``timeit`` samples (batches of 50 calls, µs per call); the goal is ≤ 20 µs p50 for the
tool conversation on the Anthropic path. The OpenAI direction is reported too.

    python bench/translation.py [--quick] [--json]
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

from _common import cli, median, out, percentile

from failover.conversation import _json, parse_request, to_anthropic_kwargs, to_openai_kwargs

PLAIN = [{"role": "user", "content": "hello"}]
PLAIN_PARAMS = {"max_tokens": 64, "temperature": 0.2}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def tool_conversation() -> list[dict[str, Any]]:
    """System, user, then nine tool-call rounds (assistant call + tool result): 20 messages."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You answer questions about the weather."},
        {"role": "user", "content": "What is the weather in these nine cities?"},
    ]
    for k in range(9):
        call = {
            "id": f"call_{k}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": f'{{"city": "City {k}"}}'},
        }
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"call_{k}", "content": f"{k}C"})
    return messages


def _old_translation(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The plain-text path before issue 14 (providers/_anthropic.py), for comparison."""
    out_messages, system = [], []
    for message in messages:
        if message.get("role") == "system":
            system.append(message.get("content", ""))
        else:
            out_messages.append(dict(message))
    kwargs = dict(params)
    kwargs.setdefault("max_tokens", 4096)
    if system:
        kwargs["system"] = "\n\n".join(system)
    accepted = _ACCEPTED
    extra = {k: kwargs.pop(k) for k in list(kwargs) if k not in accepted}
    if extra:
        kwargs["extra_body"] = extra
    kwargs["messages"] = out_messages
    kwargs["model"] = "claude"
    return kwargs


_ACCEPTED = frozenset({"max_tokens", "messages", "model", "metadata", "stop_sequences", "system"})


def p50_us(fn: Callable[[], object], samples: int) -> tuple[float, float]:
    """p50 and p99 in µs per call, over ``samples`` batches of 50 calls."""
    times = [t / 50 * 1e6 for t in timeit.repeat(fn, number=50, repeat=samples)]
    return median(times), percentile(times, 0.99)


def run(quick: bool) -> dict[str, Any]:
    samples = 200 if quick else 2000
    tools_messages = tool_conversation()
    tools_params = {"tools": [TOOL], "tool_choice": "auto", "max_tokens": 512}
    cases: dict[str, Callable[[], object]] = {
        "plain_old": lambda: _old_translation(PLAIN, PLAIN_PARAMS),
        "plain_anthropic": lambda: to_anthropic_kwargs(
            parse_request(PLAIN, PLAIN_PARAMS), "claude"
        ),
        "plain_openai": lambda: to_openai_kwargs(parse_request(PLAIN, PLAIN_PARAMS)),
        "tools20_parse": lambda: parse_request(tools_messages, tools_params),
        "tools20_anthropic": lambda: to_anthropic_kwargs(
            parse_request(tools_messages, tools_params), "claude"
        ),
        "tools20_openai": lambda: to_openai_kwargs(parse_request(tools_messages, tools_params)),
        # The memo of parsed arguments emptied first: a conversation seen for the first time.
        "tools20_anthropic_cold": lambda: (
            _json._parsed.clear(),
            _json._texts.clear(),
            to_anthropic_kwargs(parse_request(tools_messages, tools_params), "claude"),
        ),
    }
    for fn in cases.values():  # warm: the SDK signature is read once per process
        fn()
    result: dict[str, Any] = {}
    for name, fn in cases.items():
        p50, p99 = p50_us(fn, samples)
        result[name] = {"p50_us": round(p50, 2), "p99_us": round(p99, 2)}
        out(f"{name:20s} p50 {p50:7.2f} µs   p99 {p99:7.2f} µs")
    goal = result["tools20_anthropic"]["p50_us"]
    result["tools20_goal_met"] = goal <= 20.0
    out(f"20-message tool conversation to Anthropic: {goal:.2f} µs p50 (goal ≤ 20 µs)")
    return result


if __name__ == "__main__":
    cli(run, __doc__)
