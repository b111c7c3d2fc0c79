"""`failover check`, `failover schema` and `failover --version`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from failover._version import __version__
from failover.cli._main import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "routes.example.yaml"
SECRET = "sk-ant-SECRET123"

VALID = """\
version: 1
endpoints:
  claude:
    provider: anthropic
    model: claude-sonnet-4-5
    api_key: sk-ant-SECRET123
    base_url: https://user:hunter2@gw.example.com
  gpt:
    provider: litellm
    model: openai/gpt-4o-mini
    api_key: ${FO_CLI_KEY}
routes:
  chat:
    endpoints: [claude, gpt]
    deadline: 45s
    cache: {ttl: 1h, stale_if_error: 24h}
  batch:
    endpoints: [gpt]
default_route: chat
cache: {backend: 'sqlite:///answers.db', max_entries: 500}
state: {backend: 'redis://:hunter2@localhost:6379/1'}
"""


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory with a key in the environment and no FAILOVER_CONFIG."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FO_CLI_KEY", SECRET)
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)


def write(text: str, name: str = "routes.yaml") -> str:
    Path(name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def test_check_valid_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """A valid policy: exit 0 and a summary of routes, endpoints in order, backends."""
    write(VALID)
    assert main(["check", "routes.yaml"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "routes.yaml: OK (2 endpoint(s), 2 route(s))"
    chat = lines.index("route chat (default)")
    assert lines[chat + 1] == (
        "  deadline 45s, cache ttl 1h, stale_if_error 24h, serve fallback, on_interrupt raise"
    )
    assert lines[chat + 2].split()[:5] == [
        "1.",
        "claude",
        "anthropic",
        "claude-sonnet-4-5",
        "https://user:***@gw.example.com",
    ]
    assert lines[chat + 3].split()[:4] == ["2.", "gpt", "litellm", "openai/gpt-4o-mini"]
    assert "route batch" in lines
    assert "  deadline 90s, cache off, on_interrupt raise" in lines
    assert "default route: chat" in lines
    assert "cache backend: sqlite:///answers.db (max 500 entries)" in lines
    assert "state backend: redis://:***@localhost:6379/1 (shared across processes)" in lines


def test_check_output_never_holds_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    """Neither keys (literal or from env) nor URL passwords appear in check output."""
    write(VALID)
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert "hunter2" not in out + err


@pytest.mark.parametrize(
    "breakage",
    [
        ("deadline: 45s", "deadline: 45x"),
        ("provider: litellm", "provider: openai"),
        ("default_route: chat", "default_route: chta"),
        ("    model: claude-sonnet-4-5\n", "    model: claude-sonnet-4-5\n    api_kee: 1\n"),
        ("api_key: ${FO_CLI_KEY}", "api_key: ${FO_CLI_UNSET}"),
    ],
)
def test_check_invalid_never_holds_a_secret(
    capsys: pytest.CaptureFixture[str], breakage: tuple[str, str]
) -> None:
    """For several kinds of error, the output names the problem but no key or password."""
    write(VALID.replace(*breakage))
    assert main(["check", "routes.yaml"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err
    assert SECRET not in err
    assert "hunter2" not in err


def test_check_invalid_prints_file_line_messages(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid policy: exit 1, every issue on stderr as FILE:LINE: path: message."""
    write(VALID.replace("deadline: 45s", "deadline: 45x").replace("[gpt]", "[gtp]"))
    assert main(["check", "routes.yaml"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "routes.yaml:15: routes.chat.deadline: '45x' is not a duration (use 250ms, 3s, 1.5m, 1h)",
        "routes.yaml:18: routes.batch.endpoints.0: unknown endpoint 'gtp' (did you mean 'gpt'?)",
    ]


def test_check_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file is a usage error: exit 2 and a one-line message."""
    assert main(["check", "nope.yaml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "failover: no such policy file: nope.yaml\n"


def test_check_defaults_to_routes_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a PATH, check reads ./routes.yaml."""
    assert main(["check"]) == 2
    assert capsys.readouterr().err == "failover: no such policy file: routes.yaml\n"
    write(VALID)
    assert main(["check"]) == 0


def test_check_uses_failover_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """$FAILOVER_CONFIG names the policy when no PATH is given; PATH still wins."""
    write(VALID, "mine.yaml")
    monkeypatch.setenv("FAILOVER_CONFIG", "mine.yaml")
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("mine.yaml: OK")
    monkeypatch.setenv("FAILOVER_CONFIG", "gone.yaml")
    assert main(["check"]) == 2
    assert "gone.yaml (from $FAILOVER_CONFIG)" in capsys.readouterr().err
    assert main(["check", "mine.yaml"]) == 0


def test_check_directory_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A path that exists but cannot be read is reported, not a traceback."""
    Path("adir").mkdir()
    assert main(["check", "adir"]) == 1
    assert capsys.readouterr().err == "adir: is a directory, not a policy file\n"


def test_example_policy_passes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped routes.example.yaml is valid with placeholder keys."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("OPENAI_API_KEY", "y")
    monkeypatch.delenv("ANTHROPIC_GATEWAY_URL", raising=False)
    assert main(["check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "route chat (default)" in out
    assert "openai/gpt-4o-mini" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and exits 0."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"failover {__version__}\n"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A bare `failover` prints help to stderr and exits 2; so does an unknown command."""
    assert main([]) == 2
    assert "check" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`failover schema` prints the JSON Schema, indented."""
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert out.startswith('{\n  "$schema"')


def run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=False
    )


def test_python_m_failover_check() -> None:
    """`python -m failover check` works as the console script does."""
    write(VALID)
    done = run("-m", "failover", "check", "routes.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("routes.yaml: OK")
    bad = run("-m", "failover", "check", "missing.yaml")
    assert (bad.returncode, bad.stderr) == (2, "failover: no such policy file: missing.yaml\n")


def test_check_imports_no_sdk() -> None:
    """check and schema run without importing anthropic, litellm, redis or pybreaker."""
    write(VALID)
    code = (
        "import sys, contextlib, io\n"
        "from failover.cli._main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['check', 'routes.yaml']) == 0\n"
        "    assert main(['schema']) == 0\n"
        "heavy = ('anthropic', 'litellm', 'redis', 'pybreaker')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = run("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
