"""The chaos soaks (bench/chaos.py), shortened.

The classic soak: 600 calls while three fakes fail at random. The epoch soak (issue 13):
a fresh Router, then 5 epochs x 20 open-loop calls over three endpoints (one silent next
to one answering 529 at times), with the full run's targets. Each soak runs once for the
module (about 30 s and 20 s); each test asserts one of its checks, so a failure names the
property that broke and prints the soak's whole table.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.slow

_BENCH = Path(__file__).resolve().parent.parent / "bench" / "chaos.py"


def _load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("failover_chaos_soak", _BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


chaos = _load_soak()

# Seed 1 applies every fault mode within its first 9 mode changes per fake (~5 s), so
# the short run still meets all of them. 30 calls/s for 20 s of chaos.
CONFIG = chaos.Config(calls=600, seed=1, threads=4, tasks=8, rate=30.0, rss_baseline_at=200)


@pytest.fixture(scope="module")
def soak() -> tuple[dict[str, Any], str]:
    """Run the soak once: its checks by name, and the printed table."""
    results = chaos.checks(chaos.run(CONFIG))
    table = io.StringIO()
    chaos.report(results, table)
    return {c.name: c for c in results}, table.getvalue()


def _assert_check(soak: tuple[dict[str, Any], str], name: str) -> None:
    checks, table = soak
    assert checks[name].ok, f"chaos soak check {name!r} failed:\n{table}"


def test_no_call_hangs(soak: tuple[dict[str, Any], str]) -> None:
    """Every call of the soak finishes; none runs on past the watchdog."""
    _assert_check(soak, "no hang")


def test_every_call_ends_in_a_response_or_a_contract_exception(
    soak: tuple[dict[str, Any], str],
) -> None:
    """No raw provider error or other exception escapes; each outcome fits its attempts."""
    _assert_check(soak, "outcomes")


def test_no_call_outlives_its_deadline(soak: tuple[dict[str, Any], str]) -> None:
    """Calls end (streams: first delta) within 50 ms of the deadline, net of harness stalls."""
    _assert_check(soak, "deadline")


def test_requests_per_endpoint_stay_within_the_retry_budget(
    soak: tuple[dict[str, Any], str],
) -> None:
    """At most retry.attempts requests per endpoint per call; fake counters agree."""
    _assert_check(soak, "request bound")


def test_no_truncated_answer_is_reported_complete(soak: tuple[dict[str, Any], str]) -> None:
    """Every Response carries a fake's whole text; a broken stream raises StreamInterrupted."""
    _assert_check(soak, "honest answers")


def test_memory_stays_flat(soak: tuple[dict[str, Any], str]) -> None:
    """RSS grows by less than the limit between the first third and the end."""
    _assert_check(soak, "memory flat")


def test_breakers_close_again_once_the_faults_stop(soak: tuple[dict[str, Any], str]) -> None:
    """After the chaos, each endpoint's breaker closes again: no trial permit was lost."""
    _assert_check(soak, "breakers recover")


def test_the_soak_met_every_fault(soak: tuple[dict[str, Any], str]) -> None:
    """The schedule applied every fault mode, so the other checks mean something."""
    _assert_check(soak, "chaos coverage")


# --- the epoch soak (issue 13): a cold Router, then open-loop epochs --------------------

# 20 calls per 1.5 s: the full run's arrival rate (40 per 3 s), so breakers and retry
# budget see the same load; epochs 1 and 4 put a silent endpoint next to a 529 one, epoch 3
# takes every endpoint down.
EPOCH_ARGS = ("--epochs", "5", "--epoch-calls", "20", "--epoch-seconds", "1.5", "--json")


@pytest.fixture(scope="module")
def epoch_soak() -> tuple[dict[str, Any], str]:
    """Run the epoch soak once in a fresh process (a true cold start): checks by name."""
    done = subprocess.run(
        [sys.executable, str(_BENCH), *EPOCH_ARGS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        results = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"the epoch soak printed no JSON:\n{done.stdout}\n{done.stderr[-4000:]}")
    table = "\n".join(
        f"{c['name']}: {'PASS' if c['ok'] else 'FAIL'}: {c['figure']}"
        + "".join(f"\n    ! {e}" for e in c["examples"])
        for c in results
    )
    return {c["name"]: c for c in results}, table


def _assert_target(epoch_soak: tuple[dict[str, Any], str], name: str) -> None:
    checks, table = epoch_soak
    assert checks[name]["ok"], f"epoch soak target {name!r} missed:\n{table}"


def test_epoch_soak_answers_99_percent_of_answerable_calls(
    epoch_soak: tuple[dict[str, Any], str],
) -> None:
    """Cold start, blackhole next to 529: >= 99 % of calls with a healthy endpoint answered."""
    _assert_target(epoch_soak, "answered")


def test_epoch_soak_no_call_past_deadline(epoch_soak: tuple[dict[str, Any], str]) -> None:
    """No call (a stream: its first delta) ends past the 2 s deadline + 50 ms."""
    _assert_target(epoch_soak, "deadline")


def test_epoch_soak_at_most_1_2_requests_per_call(
    epoch_soak: tuple[dict[str, Any], str],
) -> None:
    """Failovers and retries stay within 1.2 requests per call on average."""
    _assert_target(epoch_soak, "requests per call")


def test_epoch_soak_no_truncated_answer(epoch_soak: tuple[dict[str, Any], str]) -> None:
    """No truncated answer is reported as complete."""
    _assert_target(epoch_soak, "honest answers")


def test_epoch_soak_only_typed_errors(epoch_soak: tuple[dict[str, Any], str]) -> None:
    """Every failed call raises one of the library's exceptions."""
    _assert_target(epoch_soak, "typed errors")


def test_epoch_soak_no_hung_call(epoch_soak: tuple[dict[str, Any], str]) -> None:
    """Every call of the epoch soak ends."""
    _assert_target(epoch_soak, "no hang")
