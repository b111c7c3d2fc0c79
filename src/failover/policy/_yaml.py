"""A YAML loader that remembers where every key is.

PyYAML's ``safe_load`` throws the marks away and silently keeps the last of two equal
keys. Here the node tree from ``yaml.compose`` is built into plain data by hand, so that
each key path gets its line (for ``FILE:LINE:`` messages) and a repeated key is an error
instead of a lost setting.

Mapping keys are kept as the text written (``1:`` is the key ``"1"``, ``on:`` is ``"on"``),
values go through PyYAML's safe scalar rules, and ``<<`` merge keys work as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .._errors import PolicyError, PolicyIssue

__all__ = ["KeyPath", "LoadedYaml", "load_yaml"]

KeyPath = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
# Aliases can expand exponentially ("billion laughs"); a policy is a few hundred nodes.
_MAX_NODES = 100_000
_MAX_DEPTH = 64


@dataclass
class LoadedYaml:
    """The result of :func:`load_yaml`.

    Attributes:
        data: plain Python data (dicts, lists, scalars), or ``None`` for an empty document.
        lines: 1-based line of every mapping key and list item, by key path.
        issues: problems that did not stop loading (duplicate keys, bad tags...).
        root_line: line where the document's top-level node starts.
        dropped: key paths whose value could not be built and stands as ``None`` (already
            reported in ``issues``; further complaints about them would be noise).
    """

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    issues: list[PolicyIssue] = field(default_factory=list)
    root_line: int = 1
    dropped: list[KeyPath] = field(default_factory=list)


def load_yaml(text: str, source: str | None) -> LoadedYaml:
    """Parse one YAML document, recording the line of each key and list item.

    Args:
        text: the document.
        source: file name used in the issues (as the user gave it).

    Returns:
        The data, its line map and the non-fatal issues found.

    Raises:
        PolicyError: the text is not YAML (the issue carries the line of the problem),
            or it is nested or aliased beyond reason.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = f"invalid YAML: {_syntax_message(exc)}"
        raise PolicyError([PolicyIssue(source, line, "", message)]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise PolicyError([PolicyIssue(source, line, "", f"invalid YAML: {exc.reason}")]) from None
    except (yaml.YAMLError, RecursionError):
        raise PolicyError([PolicyIssue(source, None, "", "invalid YAML")]) from None
    if node is None:
        return LoadedYaml(None)
    builder = _Builder(source)
    data = builder.build(node, (), builder.lines, 0)
    return LoadedYaml(
        data, builder.lines, builder.issues, node.start_mark.line + 1, builder.dropped
    )


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem, with its context when that adds where the construct began."""
    problem = exc.problem or exc.context or "unreadable"
    if problem.startswith("expected <block end>"):
        # PyYAML's token names mean nothing to most readers; this is what it nearly always is.
        problem = "bad indentation (this line does not line up with the keys around it)"
    context, mark = exc.context, exc.context_mark
    if not context or context == problem:
        return problem
    if problem.startswith("but "):  # "expected a single document..., but found another"
        return f"{context}, {problem}"
    if mark is not None and (exc.problem_mark is None or mark.line != exc.problem_mark.line):
        return f"{problem} ({context} that starts on line {mark.line + 1})"
    return problem


class _Builder:
    """Turns a composed node tree into data, filling ``lines`` and ``issues``."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.lines: dict[KeyPath, int] = {}
        self.issues: list[PolicyIssue] = []
        self._scalars = SafeConstructor()
        self.dropped: list[KeyPath] = []
        self._active: set[int] = set()
        self._count = 0

    def issue(self, node: Node, path: KeyPath, message: str) -> None:
        where = ".".join(str(part) for part in path)
        self.issues.append(PolicyIssue(self.source, node.start_mark.line + 1, where, message))

    def drop(self, node: Node, path: KeyPath, message: str) -> None:
        """Report a value that cannot be built; it becomes ``None``."""
        self.issue(node, path, message)
        self.dropped.append(path)

    def build(self, node: Node, path: KeyPath, lines: dict[KeyPath, int], depth: int) -> Any:
        self._count += 1
        if self._count > _MAX_NODES or depth > _MAX_DEPTH:
            line = node.start_mark.line + 1
            why = "nested too deeply" if depth > _MAX_DEPTH else "too many nodes (aliases?)"
            raise PolicyError([PolicyIssue(self.source, line, "", f"invalid YAML: {why}")])
        if id(node) in self._active:
            self.drop(node, path, "an alias refers to the node that contains it")
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
                return self._sequence(node, path, lines, depth)
            if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
                return self._mapping(node, path, lines, depth)
            self.drop(node, path, f"unsupported YAML tag {node.tag!r}")
            return None
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        try:
            return self._scalars.construct_object(node, deep=True)
        except Exception:  # PyYAML's scalar constructors fail in many ways
            # An unknown tag (`!env FOO`), `!!int abc`, an empty `!!int` (IndexError)...
            self.drop(node, path, f"cannot read this value (YAML tag {node.tag!r})")
            return None

    def _sequence(
        self, node: SequenceNode, path: KeyPath, lines: dict[KeyPath, int], depth: int
    ) -> list[Any]:
        items = []
        for index, child in enumerate(node.value):
            child_path = (*path, index)
            lines[child_path] = child.start_mark.line + 1
            items.append(self.build(child, child_path, lines, depth + 1))
        return items

    def _mapping(
        self, node: MappingNode, path: KeyPath, lines: dict[KeyPath, int], depth: int
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self.issue(key_node, path, "a key must be a plain string, not a list or mapping")
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.issue(
                    key_node, (*path, key), f"duplicate key (first set on line {first_line[key]})"
                )
                continue
            first_line[key] = line
            key_path = (*path, key)
            lines[key_path] = line
            result[key] = self.build(value_node, key_path, lines, depth + 1)
        for merge in merges:
            self._merge(merge, path, result, lines, depth)
        return result

    def _merge(
        self,
        node: Node,
        path: KeyPath,
        result: dict[str, Any],
        lines: dict[KeyPath, int],
        depth: int,
    ) -> None:
        """Apply a ``<<:`` merge: keys written in the mapping itself win, then earlier sources."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.issue(node, path, "'<<' merges a mapping or a list of mappings")
                continue
            # Built into its own line map so merged keys never overwrite the lines of keys
            # written in this mapping.
            merged_lines: dict[KeyPath, int] = {}
            merged = self.build(source, path, merged_lines, depth + 1)
            if not isinstance(merged, dict):
                continue
            for key, value in merged.items():
                if key in result:
                    continue
                result[key] = value
                prefix = (*path, key)
                for key_path, line in merged_lines.items():
                    if key_path[: len(prefix)] == prefix:
                        lines[key_path] = line
