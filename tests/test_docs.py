"""The docs site and the examples: reference current, site builds, pages true, examples work."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from failover import Policy
from failover.cli._main import main as cli_main
from failover.testing import Blackhole, CutStream, FakeProvider, Status

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>\w+)\n(?P<code>.*?)^(?P=indent)```", re.S | re.M
)
# Placeholders for every ${VAR} the example policies use; nothing is sent anywhere.
_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")
HELLO = {"messages": [{"role": "user", "content": "Hello"}]}


def _load(name: str, path: Path) -> ModuleType:
    """Import a file that is not in a package (dataclasses and FastAPI need sys.modules)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _gen_reference() -> ModuleType:
    return _load("failover_docs_gen_reference", DOCS / "gen_reference.py")


def _blocks(page: str, lang: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every fenced block in ``lang`` of a docs page, dedented."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 2, textwrap.dedent(m.group("code")))
        for m in _FENCE.finditer(text)
        if m.group("lang") == lang
    ]


def _pages_with(lang: str) -> list[str]:
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    return [page for page in pages if _blocks(page, lang)]


@pytest.fixture
def placeholder_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _KEYS:
        monkeypatch.setenv(name, "placeholder-key")
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)


# --- the generated reference and the site -------------------------------------------------
def test_reference_matches_the_schema() -> None:
    """docs/reference.md is exactly what gen_reference.py makes of Policy.json_schema()."""
    committed = (DOCS / "reference.md").read_text(encoding="utf-8")
    assert committed == _gen_reference().render(), (
        "docs/reference.md is stale: run python docs/gen_reference.py"
    )


def test_reference_lists_every_key() -> None:
    """Every property of every object in the schema has a row in the reference."""
    reference = _gen_reference().render()
    schema = Policy.json_schema()
    names = set(schema["properties"])
    for definition in schema["$defs"].values():
        for option in [definition, *definition.get("anyOf", [])]:
            names.update(option.get("properties", {}))
    rows = set(re.findall(r"^\| `(?:[\w.]+\.)?(\w+)` \|", reference, re.M))
    assert names <= rows, sorted(names - rows)


def test_reference_check_mode_reports_staleness(tmp_path: Path) -> None:
    """`gen_reference.py --check` passes on the committed page and fails on a stale one."""
    module = _gen_reference()
    assert module.main(["--check"]) == 0
    stale = tmp_path / "reference.md"
    stale.write_text("# stale\n", encoding="utf-8")
    original, module.REFERENCE = module.REFERENCE, stale
    try:
        assert module.main(["--check"]) == 1
    finally:
        module.REFERENCE = original


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict` passes: no broken link, anchor or nav entry, reference current."""
    pytest.importorskip("mkdocs")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "reference" / "index.html").exists()
    # The hook publishes the repository files the pages link to.
    assert (tmp_path / "examples" / "fastapi_app.py").exists()
    assert (tmp_path / "routes.example.yaml").exists()


# --- code and output on the pages -------------------------------------------------------
@pytest.mark.parametrize("page", _pages_with("python"))
def test_code_blocks_compile(page: str) -> None:
    """Every Python block of every page is valid Python (top-level await allowed)."""
    for line, code in _blocks(page, "python"):
        compile(code, f"docs/{page}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("page", ["index.md", "quickstart.md"])
def test_policies_on_the_page_validate(page: str, placeholder_keys: None) -> None:
    """Every complete policy (``version: 1``) shown on the page loads."""
    policies = [code for _, code in _blocks(page, "yaml") if "version: 1" in code]
    assert policies
    for code in policies:
        Policy.from_dict(yaml.safe_load(code))


def _console(page: str) -> Iterator[tuple[str, str]]:
    """``(command, output)`` of each ``$ failover ...`` console block of a page."""
    for _, block in _blocks(page, "console"):
        command, _, output = block.partition("\n")
        assert command.startswith("$ failover ")
        yield command.removeprefix("$ failover "), output.rstrip("\n")


def test_quickstart_check_output(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    placeholder_keys: None,
) -> None:
    """The quickstart's `failover check` output, summary and errors, is what the command prints."""
    (policy,) = [code for _, code in _blocks("quickstart.md", "yaml") if "version: 1" in code]
    monkeypatch.chdir(tmp_path)
    Path("routes.yaml").write_text(policy, encoding="utf-8")
    (ok_command, ok_output), (bad_command, bad_output) = _console("quickstart.md")

    assert cli_main(ok_command.split()) == 0
    assert capsys.readouterr().out.rstrip("\n") == ok_output

    broken = policy.replace("    deadline: 30s ", "    dedline: 30s ")
    assert broken != policy
    Path("routes.yaml").write_text(broken, encoding="utf-8")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert cli_main(bad_command.split()) == 1
    assert capsys.readouterr().err.rstrip("\n") == bad_output


def _run_blocks(blocks: list[tuple[int, str]], page: str, namespace: dict[str, Any]) -> None:
    for line, code in blocks:
        compiled = compile(
            code, f"docs/{page}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        if compiled.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(compiled, namespace))
        else:
            exec(compiled, namespace)


def test_quickstart_code_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart's Python blocks run, in order, against fakes named like its endpoints."""
    monkeypatch.chdir(tmp_path)
    with FakeProvider(name="claude") as claude, FakeProvider(name="gpt") as gpt:
        endpoints = {
            name: {
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "api_key": "test",
                "base_url": fake.url,
            }
            for name, fake in (("claude", claude), ("gpt", gpt))
        }
        policy = {
            "version": 1,
            "endpoints": endpoints,
            "routes": {"chat": {"endpoints": ["claude", "gpt"], "deadline": "5s"}},
        }
        Path("routes.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
        _run_blocks(_blocks("quickstart.md", "python"), "quickstart.md", {"__name__": "docs"})
        assert claude.request_count > 0


def test_exceptions_page_example_runs() -> None:
    """The FakeProvider example of docs/exceptions.md runs and its assertions hold."""
    runnable = [(line, code) for line, code in _blocks("exceptions.md", "python") if "Fake" in code]
    assert len(runnable) == 1
    _run_blocks(runnable, "exceptions.md", {"__name__": "docs"})


# --- the example policies -----------------------------------------------------------------
@pytest.mark.parametrize("path", [EXAMPLES / "three_providers.yaml", ROOT / "routes.example.yaml"])
def test_example_policies_validate(path: Path, placeholder_keys: None) -> None:
    """The example policies load with Policy.from_yaml once their variables are set."""
    policy = Policy.from_yaml(path)
    assert policy.route().name == "chat"


def test_three_providers_policy_spans_three_vendors(placeholder_keys: None) -> None:
    """examples/three_providers.yaml puts three vendors behind its default route."""
    policy = Policy.from_yaml(EXAMPLES / "three_providers.yaml")
    chat = policy.route()
    vendors = {
        "anthropic" if ep.provider == "anthropic" else ep.model.split("/", 1)[0]
        for ep in (policy.endpoints[name] for name in chat.endpoints)
    }
    assert vendors == {"anthropic", "openai", "gemini"}
    assert {ep.provider for ep in policy.endpoints.values()} == {"anthropic", "litellm"}


# --- the FastAPI example ------------------------------------------------------------------
def _events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """Server-sent events as ``(name, data)``."""
    events = []
    for chunk in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_fastapi_example_serves_and_maps_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FastAPI example answers (JSON, SSE, cache) and maps every failure to its status."""
    with FakeProvider(name="claude", text="one two three") as claude:
        policy = {
            "version": 1,
            "defaults": {"retry": {"attempts": 1}, "breaker": {"failure_threshold": 2}},
            "endpoints": {
                "claude": {
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "api_key": "test",
                    "base_url": claude.url,
                }
            },
            "routes": {
                "chat": {"endpoints": ["claude"], "deadline": "5s"},
                "cached": {"endpoints": ["claude"], "cache": {"ttl": "1h"}},
                # Its own breaker (claude@slow): the chat route's opens below.
                "slow": {
                    "endpoints": ["claude"],
                    "deadline": "300ms",
                    "breaker": {"failure_threshold": 100},
                },
            },
            "default_route": "chat",
        }
        (tmp_path / "routes.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
        monkeypatch.setenv("FAILOVER_CONFIG", str(tmp_path / "routes.yaml"))
        app = _load("failover_example_fastapi_app", EXAMPLES / "fastapi_app.py").app

        with TestClient(app) as client:
            answer = client.post("/chat", json=HELLO)
            assert answer.status_code == 200
            assert answer.json()["text"] == "one two three"
            assert answer.json()["endpoint"] == "claude"
            assert answer.json()["from_cache"] is False

            stream = client.post("/chat/stream", json=HELLO)
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = _events(stream.text)
            assert [name for name, _ in events] == ["delta"] * 3 + ["done"]
            assert "".join(data["text"] for _, data in events[:3]) == "one two three"
            assert events[-1][1]["endpoint"] == "claude"

            assert client.post("/chat", json={**HELLO, "route": "cached"}).status_code == 200

            claude.set_mode(Status(400))  # the request itself is rejected: not a breaker failure
            rejected = client.post("/chat", json=HELLO)
            assert rejected.status_code == 400
            assert rejected.json()["error"] == "request_rejected"
            assert client.post("/chat", json={**HELLO, "route": "nope"}).status_code == 404
            assert client.post("/chat", json={"messages": []}).status_code == 422  # FastAPI's own

            claude.set_mode(CutStream(after_events=4))  # one delta, then the connection drops
            cut = _events(client.post("/chat/stream", json=HELLO).text)
            assert [name for name, _ in cut] == ["delta", "error"]
            assert cut[-1][1]["error"] == "stream_interrupted"

            claude.set_mode(Status(529))  # the second failure in a row opens chat's breaker
            down = client.post("/chat", json=HELLO)
            assert down.status_code == 503
            assert down.json()["attempts"] == [down.json()["attempts"][0]]
            assert "overloaded HTTP 529" in down.json()["attempts"][0]
            assert 1 <= int(down.headers["retry-after"]) <= 30  # its breaker is open now

            skipped = client.post("/chat/stream", json=HELLO)  # no text yet: a real status
            assert skipped.status_code == 503
            # every breaker open, but only just: too soon for a panic trial
            assert skipped.json()["attempts"] == ["claude: skipped (breaker_open)"]
            assert 1 <= int(skipped.headers["retry-after"]) <= 30

            cached = client.post("/chat", json={**HELLO, "route": "cached"})
            assert cached.status_code == 200
            assert cached.json()["from_cache"] is True
            assert cached.json()["text"] == "one two three"

            claude.set_mode(Blackhole())
            late = client.post("/chat", json={**HELLO, "route": "slow"})
            assert late.status_code == 504
            assert late.json()["error"] == "deadline_exceeded"


def test_fastapi_tool_loop_survives_a_failover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/chat/tools: Claude asks for a tool, is overloaded next turn, OpenAI finishes the loop."""
    from failover.testing import FakeToolCall, Ok, Reply

    with FakeProvider(name="claude") as claude, FakeProvider(name="gpt", text="18C") as gpt:
        policy = {
            "version": 1,
            "defaults": {"retry": {"attempts": 1}},
            "endpoints": {
                "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5",
                           "api_key": "test", "base_url": claude.url},
                "gpt": {"provider": "litellm", "model": "openai/gpt-4o",
                        "api_key": "test", "base_url": gpt.openai_url},
            },
            "routes": {"chat": {"endpoints": ["claude", "gpt"]}},
        }  # fmt: skip
        (tmp_path / "routes.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
        monkeypatch.setenv("FAILOVER_CONFIG", str(tmp_path / "routes.yaml"))
        app = _load("failover_example_fastapi_tools", EXAMPLES / "fastapi_app.py").app
        weather = Reply(text="", tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})])
        claude.script(Ok(reply=weather), Status(529))
        with TestClient(app) as client:
            answer = client.post("/chat/tools", json=HELLO)
        assert answer.status_code == 200, answer.text
        assert answer.json()["turns"] == ["claude", "gpt"]
        assert answer.json()["answer"]["text"] == "18C"
        [request] = gpt.requests
        assert request.schema_error is None
        tool_id = answer.json()["messages"][1]["tool_calls"][0]["id"]
        assert tool_id.startswith("toolu_")  # Claude's id, passed to OpenAI unchanged
        assert request.body["messages"][-1]["tool_call_id"] == tool_id
