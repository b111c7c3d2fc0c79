"""``${VAR}`` and ``${VAR:-default}`` in policy values.

Substitution runs on the parsed data, in string values only (never in keys), and is plain
text replacement: no shell, no command substitution, no nesting. ``$$`` is a literal
``$``. Messages name the variable and never any value from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._yaml import KeyPath

__all__ = ["Expanded", "expand_env"]

_REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})")
_MAX_DEPTH = 64
_SYNTAX = "write ${VAR} or ${VAR:-default}, and $$ for a literal $"


@dataclass
class Expanded:
    """The result of :func:`expand_env`.

    Attributes:
        data: a copy of the input with every reference replaced (dicts and lists are new).
        problems: ``(key path, message)`` for each unset variable or malformed reference;
            the value at that path is then an empty string.
        references: the original text of every string that held a ``${...}`` reference,
            by key path (kept so ``api_key: ${VAR}`` can be written back as written).
    """

    data: Any
    problems: list[tuple[KeyPath, str]] = field(default_factory=list)
    references: dict[KeyPath, str] = field(default_factory=dict)


def expand_env(data: Any, environ: Mapping[str, str]) -> Expanded:
    """Replace ``${VAR}`` references in every string value of ``data``.

    Args:
        data: plain data (mappings, lists, scalars) as parsed from YAML or given as a dict.
        environ: where variables are looked up (``os.environ`` in practice).

    Returns:
        The expanded copy, with the problems found and the original reference strings.
    """
    result = Expanded(None)
    result.data = _walk(data, (), environ, result)
    return result


def _walk(value: Any, path: KeyPath, environ: Mapping[str, str], out: Expanded) -> Any:
    if len(path) > _MAX_DEPTH:
        out.problems.append((path, "nested too deeply"))
        return None
    if isinstance(value, str):
        return _expand(value, path, environ, out)
    if isinstance(value, Mapping):
        return {key: _walk(item, (*path, key), environ, out) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(item, (*path, index), environ, out) for index, item in enumerate(value)]
    return value


def _expand(text: str, path: KeyPath, environ: Mapping[str, str], out: Expanded) -> str:
    if "$" not in text:
        return text
    # split() with the pattern's two groups yields [text, name, default, text, ...].
    parts = _REFERENCE.split(text)
    if any("${" in literal for literal in parts[::3]):
        out.problems.append((path, f"malformed ${{...}} reference ({_SYNTAX})"))
        return ""
    pieces: list[str] = []
    for index in range(0, len(parts) - 1, 3):
        pieces.append(parts[index])
        name, default = parts[index + 1], parts[index + 2]
        if name is None:  # "$$"
            pieces.append("$")
            continue
        found = environ.get(name)
        if default is not None and not found:
            # Shell semantics for ":-": a set but empty variable also takes the default.
            found = default
        if found is None:
            hint = f"set it, or write ${{{name}:-default}}"
            out.problems.append((path, f"environment variable {name} is not set ({hint})"))
            return ""
        pieces.append(found)
    pieces.append(parts[-1])
    if any(name is not None for name in parts[1::3]):
        out.references[path] = text
    return "".join(pieces)
