"""The chaos soak (bench/chaos.py), shortened: 600 calls while three fakes fail at random.

One soak runs for the module (about 30 s); each test asserts one of its checks, so a
failure names the property that broke and prints the soak's whole table.
"""

from __future__ import annotations

import importlib.util
import io
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
