"""Keeping keys and prompts out of failure details.

Providers echo things back in their error bodies: the key a request carried (some
gateways print the ``Authorization`` header), or a piece of the prompt ("... in message
'<the user's text>' ..."). A failure's ``detail`` travels into attempts, exception
messages, log records and trace spans, so every detail a provider adapter builds passes
through :func:`redact` first: secret-looking tokens and the endpoint's own key are
masked, quoted fragments are dropped, any run of the request's own text is cut, and the
whole is kept short.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

__all__ = ["MAX_DETAIL", "redact", "redact_for", "request_texts"]

MAX_DETAIL: Final = 200
"""The longest detail kept, in characters."""

MASK: Final = "[redacted]"

# Key-looking tokens: OpenAI/Anthropic keys, bearer tokens, key headers, key=value pairs.
_SECRET_PATTERNS: Final = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(
        r"(?i)\b(x-api-key|api[-_]?key|authorization|token)(\"?\s*[:=]\s*\"?)[^\s\"',}]{4,}"
    ),
    re.compile(r"\b[A-Za-z0-9_\-]{32,}\b"),  # long opaque tokens (keys of other vendors)
)
# Text the provider quoted back ('...' or "..." of some length): likely the caller's input.
_QUOTED: Final = re.compile(r"(['\"`])[^'\"`]{21,}\1")
# A run of the request's text this long in a detail is treated as echoed prompt.
_ECHO_MIN: Final = 20
# Characters of request text scanned for echoes (error paths only; bounds a huge prompt).
_SCAN_BUDGET: Final = 1_000_000


def redact(
    detail: str, *, secrets: Iterable[str] = (), texts: Sequence[str] = (), limit: int = MAX_DETAIL
) -> str:
    """``detail`` with keys masked, request text and quoted fragments cut, and kept short.

    Args:
        detail: the message built from a provider's error.
        secrets: exact strings to mask wherever they appear (the endpoint's key).
        texts: the request's own text (message contents); a detail holding a run of
            more than ~20 characters of any of them is cut before that run.
        limit: the longest result, in characters.
    """
    if not detail:
        return detail
    detail = detail[: limit * 10]  # the scans below stay cheap on a huge error body
    for secret in secrets:
        if secret and len(secret) >= 4:
            detail = detail.replace(secret, MASK)
    detail = _cut_echo(detail, texts)
    detail = _QUOTED.sub(r"\1…\1", detail)
    for pattern in _SECRET_PATTERNS:
        detail = pattern.sub(_masked, detail)
    detail = " ".join(detail.split())  # one line: no newlines from multi-line bodies
    if len(detail) > limit:
        detail = detail[: limit - 1].rstrip() + "…"
    return detail


def _masked(match: re.Match[str]) -> str:
    if match.re.groups >= 2:  # key=value: keep the name, mask the value
        return f"{match.group(1)}{match.group(2)}{MASK}"
    return MASK


def _cut_echo(detail: str, texts: Sequence[str]) -> str:
    """Cut ``detail`` where a run of more than ``_ECHO_MIN`` characters of a text begins."""
    size = _ECHO_MIN + 1
    if len(detail) < size:
        return detail
    windows: dict[str, int] = {}
    for at in range(len(detail) - size, -1, -1):  # backwards: the earliest position wins
        windows[detail[at : at + size]] = at
    cut = len(detail)
    budget = _SCAN_BUDGET
    for text in texts:
        for start in range(min(len(text) - size + 1, budget)):
            found = windows.get(text[start : start + size])
            if found is not None and found < cut:
                cut = found
        budget -= len(text)
        if budget <= 0:
            break
    if cut == len(detail):
        return detail
    return detail[:cut].rstrip(" :'\"-") + " …[request text removed]"


def redact_for(detail: str, call: Any, secrets: Sequence[str]) -> str:
    """``detail`` cleaned of the endpoint's ``secrets`` and of ``call``'s own request text
    (a ``ProviderRequest``): what every failure detail of an adapter goes through."""
    return redact(detail, secrets=secrets, texts=request_texts(call.messages, call.params))


def request_texts(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> list[str]:
    """The request's own text pieces (message contents, ``system``), for :func:`redact`."""
    texts: list[str] = []
    _collect(messages, texts, 0)
    _collect(params.get("system"), texts, 0)
    return texts


def _collect(value: Any, out: list[str], depth: int) -> None:
    if depth > 6:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, Mapping):
        for key in ("content", "text", "arguments", "input", "thinking"):
            if key in value:
                _collect(value[key], out, depth + 1)
        if "function" in value:
            _collect(value["function"], out, depth + 1)
        for calls in ("tool_calls",):
            if calls in value:
                _collect(value[calls], out, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, out, depth + 1)
