"""Generate ``docs/reference.md`` from the policy's JSON Schema; also the site's mkdocs hook.

The policy reference is rendered from ``failover.Policy.json_schema()`` (what ``failover
schema`` prints), so the page cannot say something the validator does not do::

    python docs/gen_reference.py           # rewrite docs/reference.md
    python docs/gen_reference.py --check   # exit 1 when docs/reference.md is stale

``mkdocs.yml`` loads this file as a hook. It then:

- fails ``mkdocs build --strict`` when ``docs/reference.md`` is stale;
- publishes the repository files the pages link to (``../routes.example.yaml``,
  ``../examples/fastapi_app.py``), so those links work on the site as they do on GitHub;
- leaves out of the nav the pages in ``PENDING_PAGES`` that are not written yet, and
  unlinks links to them, instead of failing the build. Empty the tuple once they all exist.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
REFERENCE = DOCS / "reference.md"

# Pages named in the nav that other work may not have written yet.
PENDING_PAGES: tuple[str, ...] = ("performance.md", "chaos.md")

_log = logging.getLogger("mkdocs.hooks.failover_docs")

Schema = Mapping[str, Any]


# --- rendering the reference ---------------------------------------------------------------
@dataclass
class _Row:
    key: str
    type: str
    default: str
    constraints: str
    description: str


@dataclass
class _Section:
    anchor: str
    title: str
    intro: str
    paths: list[str] = field(default_factory=list)
    rows: list[_Row] = field(default_factory=list)
    kind: str = "block"  # "root" | "map" | "block"


class _Renderer:
    """Walks the schema once, collecting one section per table of the page."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.defs: Mapping[str, Schema] = schema.get("$defs", {})
        self.uses = _count_refs(schema)
        self.sections: dict[str, _Section] = {}
        self.order: list[str] = []

    # The walk --------------------------------------------------------------------------
    def run(self) -> list[_Section]:
        root = _Section("top-level", "Top level", _text(self.schema.get("description", "")))
        root.kind = "root"
        root.paths.append("")
        self._add("", root)
        self._rows(self.schema, "", root)
        kinds = {"root": 0, "map": 1, "block": 2}
        ordered = sorted(self.order, key=lambda name: kinds[self.sections[name].kind])
        return [self.sections[name] for name in ordered]

    def _add(self, name: str, section: _Section) -> None:
        self.sections[name] = section
        self.order.append(name)

    def _rows(self, obj: Schema, prefix: str, section: _Section) -> None:
        required = set(obj.get("required", ()))
        for name, prop in obj.get("properties", {}).items():
            key = prefix + name
            row = self._row(key, prop, required=name in required, section=section)
            section.rows.append(row)
            ref = _ref_name(prop)
            target = self.defs.get(ref) if ref else None
            if target is None or _object_part(target) is None:
                continue
            if self.uses[ref] > 1:
                self._block(ref, name, section, key)
            else:  # used in one place only: its keys go in this table, dotted
                self._rows(_object_part(target) or {}, key + ".", section)

    def _block(self, ref: str, name: str, parent: _Section, key: str) -> None:
        """A settings block used from several places: one section, every place listed."""
        paths = [_join(path, key) for path in parent.paths]
        if ref not in self.sections:
            target = self.defs[ref]
            section = _Section(self._anchor(name), f"`{name}` block", _text(_description(target)))
            self._add(ref, section)
            section.paths.extend(paths)
            self._rows(_object_part(target) or {}, "", section)
        else:
            self.sections[ref].paths.extend(paths)

    def _map(self, ref: str, key: str, parent: _Section) -> _Section:
        """The value schema of a mapping by name (``endpoints.<name>``): its own section."""
        if ref not in self.sections:
            target = self.defs[ref]
            path = f"{key}.<name>"
            section = _Section(self._anchor(key), f"`{path}`", _text(_description(target)))
            section.kind = "map"
            self._add(ref, section)
            section.paths.extend(_join(p, path) for p in parent.paths)
            self._rows(_object_part(target) or {}, "", section)
        return self.sections[ref]

    def _anchor(self, name: str) -> str:
        taken = {s.anchor for s in self.sections.values()}
        anchor, n = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"), 2
        base = anchor
        while anchor in taken:
            anchor, n = f"{base}-{n}", n + 1
        return anchor

    # One row ---------------------------------------------------------------------------
    def _row(self, key: str, prop: Schema, *, required: bool, section: _Section) -> _Row:
        description = _text(_description(prop))
        description, built_in = _split_built_in(description)
        type_text, constraints = self._type(prop, key, section)
        if required:
            default = "required"
        elif "default" in prop:
            default = _default(prop["default"], duration=_is_duration(_non_null(prop)))
        elif built_in is not None:
            default = f"`{built_in}`" if built_in else "`null`"
        else:
            default = "—"
        return _Row(f"`{key}`", type_text, default, ", ".join(constraints), description)

    def _type(self, prop: Schema, key: str, section: _Section) -> tuple[str, list[str]]:
        nullable = _nullable(prop)
        core = _non_null(prop)
        text, constraints = self._core_type(core, key, section)
        if nullable:
            text += " or `null`"
        return text, constraints

    def _core_type(self, s: Schema, key: str, section: _Section) -> tuple[str, list[str]]:
        ref = _ref_name(s)
        if ref is not None:
            target = self.defs[ref]
            if _object_part(target) is None:
                return self._core_type(target, key, section)
            shorthand = [o for o in target.get("anyOf", ()) if o.get("type") != "object"]
            text = "mapping"
            if self.uses[ref] > 1:
                text = f"[`{key.rsplit('.', 1)[-1]}` block](#{self._anchor_of(ref, key)})"
            if shorthand:
                text += " or " + " or ".join(self._core_type(o, key, section)[0] for o in shorthand)
            return text, []
        if _is_duration(s):
            return "[duration](#durations)", []
        if "const" in s:
            return f"`{json.dumps(s['const'])}`", []
        if "enum" in s:
            return " \\| ".join(f"`{v}`" for v in s["enum"]), []
        if "anyOf" in s:
            parts = [self._core_type(o, key, section) for o in s["anyOf"]]
            return " or ".join(p[0] for p in parts), [c for p in parts for c in p[1]]
        kind = s.get("type")
        if kind == "object":
            return self._object_type(s, key, section)
        if kind == "array":
            item = self._core_type(s.get("items", {}), key, section)[0]
            return f"list of {_plural(item)}", _array_constraints(s)
        return (kind or "any"), _scalar_constraints(s)

    def _object_type(self, s: Schema, key: str, section: _Section) -> tuple[str, list[str]]:
        extra = s.get("additionalProperties")
        constraints = []
        if "minProperties" in s:
            constraints.append(f"at least {s['minProperties']} entry")
        if isinstance(extra, Mapping) and _ref_name(extra) is not None:
            target = self._map(_ref_name(extra) or "", key, section)
            return f"mapping of names to [`{key}.<name>`](#{target.anchor})", constraints
        return "mapping", constraints

    def _anchor_of(self, ref: str, key: str) -> str:
        if ref not in self.sections:  # the row is written before its block's section exists
            return self._anchor(key.rsplit(".", 1)[-1])
        return self.sections[ref].anchor


def _count_refs(node: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ref in _refs(node):
        counts[ref] = counts.get(ref, 0) + 1
    return counts


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _ref_name(s: Schema) -> str | None:
    s = _non_null(s)
    ref = s.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _object_part(s: Schema) -> Schema | None:
    """The object form of a def (some also accept a shorthand, such as one duration)."""
    if s.get("type") == "object" and "properties" in s:
        return s
    for option in s.get("anyOf", ()):
        if option.get("type") == "object" and "properties" in option:
            return option
    return None


def _nullable(s: Schema) -> bool:
    return any(o == {"type": "null"} for o in s.get("anyOf", ()))


def _non_null(s: Schema) -> Schema:
    options = [o for o in s.get("anyOf", ()) if o != {"type": "null"}]
    if "anyOf" in s and len(options) == 1:
        return options[0]
    if "anyOf" in s and len(options) < len(s["anyOf"]):
        return {**s, "anyOf": options}
    return s


def _is_duration(s: Schema) -> bool:
    options = s.get("anyOf", ())
    kinds = sorted(o.get("type", "") for o in options)
    return kinds == ["number", "string"] and any("pattern" in o for o in options)


def _duration_schema(schema: Schema) -> Schema | None:
    for node in _walk(schema):
        if _is_duration(node):
            return node
    return None


def _walk(node: Any) -> Iterator[Schema]:
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _description(s: Schema) -> str:
    return str(s.get("description") or _non_null(s).get("description") or "")


def _text(description: str) -> str:
    """Schema prose as Markdown: RST ``literals`` become code spans; pipes are escaped."""
    return re.sub(r"``(.+?)``", r"`\1`", description).replace("|", "\\|").strip()


def _split_built_in(description: str) -> tuple[str, str | None]:
    """``... (built-in: 3s).`` -> (``...``, ``3s``); ``(built-in)`` marks the value before it."""
    match = re.search(r"\s*\(built-in(?::\s*([^)]*))?\)", description)
    if match is None:
        return description, None
    stripped = (description[: match.start()] + description[match.end() :]).strip()
    return stripped, (match.group(1) or "").strip()


def _default(value: Any, *, duration: bool) -> str:
    if value is None:
        return "—"
    if duration and isinstance(value, (int, float)):
        return f"`{_seconds(float(value))}`"
    if isinstance(value, Mapping):
        shown = {k: v for k, v in value.items() if v is not None}
        inner = ", ".join(f"{k}: {_scalar(v)}" for k, v in shown.items())
        return f"`{{{inner}}}`"
    return f"`{_scalar(value)}`"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _seconds(value: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if value >= size and (value / size).is_integer():
            return f"{int(value / size)}{unit}"
    if value < 1 and (value * 1000).is_integer():
        return f"{int(value * 1000)}ms"
    return f"{value:g}s"


def _plural(item: str) -> str:
    return item + "s" if item.isalpha() else item


def _array_constraints(s: Schema) -> list[str]:
    out = []
    if "minItems" in s:
        out.append(f"at least {s['minItems']} item{'s' if s['minItems'] != 1 else ''}")
    if s.get("uniqueItems"):
        out.append("each once")
    return out


def _scalar_constraints(s: Schema) -> list[str]:
    out = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in s:
            out.append(f"{sign} {_scalar(s[key])}")
    if "pattern" in s:
        out.append(f"matches {_code(s['pattern'])}")
    return out


def _code(text: str) -> str:
    """Inline code that is safe in a table cell, for mkdocs and GitHub alike."""
    escaped = html.escape(text, quote=False).replace("|", "&#124;")
    return f"<code>{escaped}</code>"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _table(rows: list[_Row]) -> list[str]:
    lines = ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    lines.extend(
        f"| {r.key} | {r.type} | {r.default} | {r.constraints} | {r.description} |" for r in rows
    )
    return lines


_HEADER = """\
# Policy reference

<!-- Generated by docs/gen_reference.py from failover.Policy.json_schema(). Do not edit:
     run `python docs/gen_reference.py` after changing the policy schema. -->

Every key of the policy file, generated from the JSON Schema that `failover schema` prints,
so this page cannot drift from what the validator accepts. How the keys work together
(merging of `defaults`, endpoints and routes; `${VAR}` substitution; error messages) is
explained in [Writing policies](policy.md).

Unknown keys are errors everywhere, with a "did you mean" when a known key is close.
`failover check routes.yaml` validates a file and reports every problem at once as
`FILE:LINE: key.path: message`.
"""

_BLOCK_NOTE = (
    "The default column is the built-in value. In `endpoints.<name>` and `routes.<name>` a key "
    "left out inherits from the level above: built-in, then `defaults`, then the endpoint, "
    "then the route. A block of any level may set just the keys it changes."
)


def render(schema: Schema | None = None) -> str:
    """The reference page for ``schema`` (default: the installed failover's policy schema)."""
    if schema is None:
        from failover import Policy

        schema = Policy.json_schema()
    lines = [_HEADER]
    for section in _Renderer(schema).run():
        lines.append(f"## {section.title} {{#{section.anchor}}}\n")
        if section.intro:
            lines.append(section.intro + "\n")
        if section.kind == "block":
            places = ", ".join(f"`{p}`" for p in section.paths)
            lines.append(f"Appears as {places}. {_BLOCK_NOTE}\n")
        lines.extend(_table(section.rows))
        lines.append("")
    lines.extend(_durations(schema))
    return "\n".join(lines).rstrip() + "\n"


def _durations(schema: Schema) -> list[str]:
    duration = _duration_schema(schema)
    if duration is None:
        return []
    pattern = next(o["pattern"] for o in duration["anyOf"] if "pattern" in o)
    return [
        "## Durations {#durations}\n",
        "A duration is a string matching "
        f"`{pattern}` (`250ms`, `3s`, `1.5m`, `1h`) or a bare number of seconds (`30`, "
        "`0.5`). It must be greater than zero. In Python the loaded policy holds every "
        "duration as float seconds.",
    ]


# --- the command line ----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Write docs/reference.md, or with ``--check`` report whether it is current."""
    args = sys.argv[1:] if argv is None else argv
    fresh = render()
    if "--check" in args:
        current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
        if current != fresh:
            print(f"{REFERENCE} is stale: run python docs/gen_reference.py", file=sys.stderr)
            return 1
        return 0
    REFERENCE.write_text(fresh, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


# --- the mkdocs hook -----------------------------------------------------------------------
_missing: set[str] = set()
_LINK = re.compile(r"\]\(((?:\.\./)+)([^)#\s]+)(#[^)\s]*)?\)")


def on_config(config: Any) -> Any:
    """Leave pages of ``PENDING_PAGES`` that do not exist yet out of the nav."""
    docs_dir = Path(config["docs_dir"])
    _missing.clear()
    _missing.update(page for page in PENDING_PAGES if not (docs_dir / page).exists())
    if _missing and config.get("nav"):
        config["nav"] = _prune(config["nav"])
        for page in sorted(_missing):
            _log.info("failover docs: %s is not written yet; left out of the nav", page)
    return config


def _prune(nav: list[Any]) -> list[Any]:
    kept = []
    for item in nav:
        if isinstance(item, dict):
            title, value = next(iter(item.items()))
            if isinstance(value, list):
                kept.append({title: _prune(value)})
            elif value not in _missing:
                kept.append(item)
        elif item not in _missing:
            kept.append(item)
    return kept


def on_pre_build(*, config: Any) -> None:
    """Fail a strict build when docs/reference.md no longer matches the schema."""
    try:
        fresh = render()
    except ImportError as exc:
        _log.warning("failover docs: cannot import failover to check reference.md (%s)", exc)
        return
    if REFERENCE.read_text(encoding="utf-8") != fresh:
        _log.warning("docs/reference.md is stale: run python docs/gen_reference.py")


def on_files(files: Any, *, config: Any) -> Any:
    """Publish the repository files (not Markdown) that pages link to with ``../``."""
    from mkdocs.structure.files import File

    docs_dir = Path(config["docs_dir"]).resolve()
    wanted: set[str] = set()
    for page in files.documentation_pages():
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        wanted.update(_repo_targets(text, Path(page.src_uri), docs_dir))
    for uri in sorted(wanted):
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(docs_dir.parent / uri)))
    return files


def _repo_targets(text: str, page: Path, docs_dir: Path) -> Iterator[str]:
    for match in _LINK.finditer(text):
        uri = _repo_uri(match, page, docs_dir)
        if uri is not None:
            yield uri


def _repo_uri(match: re.Match[str], page: Path, docs_dir: Path) -> str | None:
    """The repository path a ``../`` link points at, if it is a non-Markdown repo file."""
    ups, path = len(match.group(1)) // 3, match.group(2)
    if ups != len(page.parent.parts) + 1 or path.endswith(".md"):
        return None
    target = (docs_dir.parent / path).resolve()
    inside = docs_dir.parent in target.parents and docs_dir not in target.parents
    return path if inside and target.is_file() else None


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    """Point ``../`` links at the published copies; unlink pages not written yet."""
    docs_dir = Path(config["docs_dir"]).resolve()
    src = Path(page.file.src_uri)

    def relink(match: re.Match[str]) -> str:
        if _repo_uri(match, src, docs_dir) is None:
            return match.group(0)
        return f"]({'../' * len(src.parent.parts)}{match.group(2)}{match.group(3) or ''})"

    markdown = _LINK.sub(relink, markdown)
    for missing in _missing:
        pattern = rf"\[([^\]]+)\]\((?:\./)?{re.escape(missing)}(?:#[^)]*)?\)"
        markdown = re.sub(pattern, r"\1", markdown)
    return markdown


if __name__ == "__main__":
    sys.exit(main())
