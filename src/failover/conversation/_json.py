"""Tool-call arguments between JSON text (OpenAI) and dicts (Anthropic), memoized.

A tool loop resends the whole conversation on every turn, so the same arguments are
converted again and again: turn N repeats the N-1 calls before it. Parsing is the bulk of
translating a tool conversation, so each direction keeps a bounded memo. The dicts handed
out are shared between requests and must be treated as read-only (the SDKs only read them).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "loads"]

_LIMIT = 2048
_parsed: dict[str, Any] = {}
_texts: dict[int, tuple[Any, str]] = {}  # id(dict) -> (dict, its JSON text); holds the dict


def loads(text: str) -> Any:
    """``json.loads(text)``, memoized; raises ValueError for invalid JSON."""
    value = _parsed.get(text)
    if value is None:
        value = json.loads(text)
        if isinstance(value, dict):
            if len(_parsed) >= _LIMIT:  # a bounded memo: start over rather than evict
                _parsed.clear()
                _texts.clear()
            _parsed[text] = value
            _texts[id(value)] = (value, text)
    return value


def dumps(value: Any) -> str:
    """The JSON text of ``value``: the text it was parsed from when it came from :func:`loads`."""
    entry = _texts.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    return json.dumps(value)
