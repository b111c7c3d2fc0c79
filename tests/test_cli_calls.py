"""The call-making CLI commands: complete, status and demo, against local fakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from failover.cli._main import main
from failover.testing import FakeProvider, Status

from _support import KEY, make_policy


def write_policy(tmp_path: Path, fakes: list[FakeProvider]) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(make_policy({f.name: f.url for f in fakes})))
    return str(path)


def test_complete_prints_the_answer(
    tmp_path: Path, fakes: list[FakeProvider], capsys: pytest.CaptureFixture[str]
) -> None:
    """`failover complete PROMPT` prints the first good answer."""
    assert main(["complete", "-c", write_policy(tmp_path, fakes), "hello"]) == 0
    assert capsys.readouterr().out.strip() == "Hello from primary"


def test_complete_json_lists_attempts(
    tmp_path: Path, fakes: list[FakeProvider], capsys: pytest.CaptureFixture[str]
) -> None:
    """--json gives the response and every attempt, failed ones included."""
    fakes[0].set_mode(Status(401))
    assert main(["complete", "-c", write_policy(tmp_path, fakes), "--json", "hi"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["endpoint"] == "secondary"
    assert [a["status_code"] for a in out["attempts"]] == [401, None]
    assert out["attempts"][0]["error"] == "auth"


def test_complete_reads_stdin_and_reports_failure(
    tmp_path: Path, fakes: list[FakeProvider]
) -> None:
    """PROMPT "-" reads stdin; when all endpoints fail the exit code is 1, with no key."""
    for fake in fakes:
        fake.set_mode(Status(503))
    path = write_policy(tmp_path, fakes)
    done = subprocess.run(
        [sys.executable, "-m", "failover", "complete", "-c", path, "-"],
        input="hello from stdin",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "AllEndpointsFailed" in done.stderr
    assert KEY not in done.stderr + done.stdout
    assert fakes[0].requests[0].body["messages"][0]["content"] == "hello from stdin"


def test_status_lists_endpoints(
    tmp_path: Path, fakes: list[FakeProvider], capsys: pytest.CaptureFixture[str]
) -> None:
    """`failover status --json` lists every endpoint with its breaker state."""
    assert main(["status", "-c", write_policy(tmp_path, fakes), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["state"]) for r in rows] == [
        ("primary", "closed"),
        ("secondary", "closed"),
        ("backup", "closed"),
    ]


def test_missing_policy_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing policy file is a usage error, said plainly."""
    assert main(["complete", "-c", str(tmp_path / "nope.yaml"), "hi"]) == 2
    assert "no such policy file" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_to_completion() -> None:
    """`failover demo` plays its outage with no keys and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "failover", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "closed -> open" in out
    assert "half_open -> closed" in out
    assert "skipped" in out
    assert "cached answer from primary" in out
