"""`failover simulate`: figures worked out by hand, scenarios, traces, candidates, the CLI."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from failover.cli import _simulate as _cli_simulate
from failover.policy._model import Policy
from failover.simulate._candidates import MAX_CANDIDATES, candidates
from failover.simulate._engine import RunResult, RunSettings, percentile, simulate
from failover.simulate._scenarios import build_scenario, load_trace, parse_spec

# Fast answers, so calls in flight when an incident starts are done before its first
# failure comes back, and the figures below can be counted by hand.
FAST = 0.05


def policy(
    endpoints: Sequence[str] = ("primary", "secondary"), deadline: str = "30s", **blocks: Any
) -> Policy:
    """A one-route policy ('chat'): no retry, breaker opens on 5 failures for 10s."""
    defaults: dict[str, Any] = {
        "timeout": {"connect": "1s", "read": "2s"},
        "retry": {"attempts": 1},
        "breaker": {"failure_threshold": 5, "reset_timeout": "10s"},
    }
    for key, value in blocks.items():
        defaults[key] = {**defaults[key], **value}
    return Policy.from_dict(
        {
            "version": 1,
            "defaults": defaults,
            "endpoints": {name: {"provider": "anthropic", "model": "m"} for name in endpoints},
            "routes": {"chat": {"endpoints": list(endpoints), "deadline": deadline}},
        }
    )


def run(
    pol: Policy,
    *specs: str,
    rate: float = 10.0,
    duration: float = 300.0,
    seed: int = 0,
    sets: Sequence[str] = (),
) -> list[RunResult]:
    route = pol.route("chat")
    scenario = build_scenario([parse_spec(s) for s in specs], route.endpoints, FAST, duration)
    settings = RunSettings(rate=rate, duration=duration, seed=seed)
    return [simulate(c, scenario, settings) for c in candidates(pol, "chat", sets)]


OUTAGE = f"outage:start=100,length=60,error_latency={FAST}"


# --- figures known by hand ----------------------------------------------------------------


def test_outage_figures_by_hand() -> None:
    """10 calls/s, 60 s outage at t=100, threshold 5, one attempt, 10 s reset: exact counts.

    Calls at 100.0 ... 100.4 fail; the fifth failure returns at 100.45, which opens the
    breaker. Trials then go out every 10 s plus one arrival (110.5, 120.6, 130.7, 140.8,
    150.9), all inside the outage; the next, at 161.0, succeeds. So 5 + 5 requests are
    wasted, and 605 calls in [100.5, 161.0) are skipped to the secondary, 5 of them trials.
    """
    (result,) = run(policy(), OUTAGE)
    assert result.calls == 3000
    assert result.time_to_open == (pytest.approx(0.45),)
    assert result.wasted == 10
    assert result.time_to_recover == (pytest.approx(1.0),)
    assert result.time_to_recover[0] is not None
    assert result.time_to_recover[0] <= 10.0  # within one reset_timeout of the end
    assert result.requests == {"primary": 2400, "secondary": 610}
    assert result.skipped == {"primary": 600, "secondary": 0}
    assert result.availability == 1.0
    states = [state for _, state in result.transitions]
    assert states == ["open", "half_open"] * 6 + ["closed"]
    assert [round(t, 2) for t, s in result.transitions if s == "half_open"] == [
        110.5, 120.6, 130.7, 140.8, 150.9, 161.0
    ]  # fmt: skip


def test_outage_without_a_secondary_loses_exactly_those_calls() -> None:
    """With no endpoint to fail over to, the failed and skipped calls go unanswered; panic
    trials (once a breaker has been open a tenth of its 10 s reset) end the loss at the
    first call after the outage, 160.0, instead of the next regular trial at 161.0."""
    (result,) = run(policy(["primary"]), OUTAGE)
    assert result.answered == 3000 - 609
    assert result.availability == pytest.approx(2391 / 3000)


def test_timeouts_cost_the_timeout() -> None:
    """Blackholed primary: failures return after the 2 s read timeout, so it opens at 102.4."""
    (result,) = run(policy(), "outage:start=100,length=60,error=timeout")
    assert result.time_to_open == (pytest.approx(2.4),)
    # the calls that hit the timeout took it plus the secondary's answer
    assert result.p95_trouble is not None
    assert max(result.p95, result.p95_trouble) <= 2.0 + FAST + 1e-9
    assert result.availability == 1.0


def test_slow_answers_open_the_breaker_with_slow_call() -> None:
    """8 s answers count as failures past slow_call=5s: open when the fifth returns, at 108.4."""
    pol = policy(timeout={"read": "60s"}, breaker={"slow_call": "5s"})
    (result,) = run(pol, "slow:start=100,length=60,latency=8s")
    assert result.time_to_open == (pytest.approx(8.4),)
    assert result.availability == 1.0  # slow answers are still answers
    (plain,) = run(policy(timeout={"read": "60s"}), "slow:start=100,length=60,latency=8s")
    assert plain.time_to_open == (None,)
    assert plain.added_p95 == pytest.approx(8.0 - FAST)


def test_retries_with_backoff_and_the_deadline() -> None:
    """3 attempts, backoff 1.02 s then 2.04 s without jitter: counted request by request.

    A call at t fails at t+0.05, retries at t+1.07 and t+3.16, then fails over. Calls at
    100.0-159.9 waste their first request (600), those up to 158.9 the second (590),
    those up to 156.8 the third (569). A 2 s deadline gives the primary half of it while
    the secondary remains: no room for a 1.02 s backoff, so it fails over at once.
    """
    retry = {
        "attempts": 3,
        "backoff": {"initial": "1.02s", "max": "10s", "jitter": "none"},
        "budget": {"ratio": 1.0, "min_retries": 100000},  # counted by hand without a budget
    }
    pol = policy(retry=retry, breaker={"failure_threshold": 100000})
    (result,) = run(pol, OUTAGE)
    assert result.wasted == 600 + 590 + 569
    # the third failure is back at +3.21, the secondary answers at +3.26; minus 0.05 healthy
    assert result.added_p95 == pytest.approx(3.21)
    (short,) = run(policy(deadline="2s", retry=retry, breaker={"failure_threshold": 100000}),
                   OUTAGE)  # fmt: skip
    assert short.wasted == 600
    assert short.availability == 1.0


def test_the_retry_budget_caps_retries_in_an_outage() -> None:
    """With the default budget (20 % of recent calls plus 10 per 10 s), an outage that
    would triple the primary's load (1,759 requests for 600 calls) stays near 1.3x."""
    retry = {"attempts": 3, "backoff": {"initial": "1.02s", "max": "10s", "jitter": "none"}}
    (result,) = run(policy(retry=retry, breaker={"failure_threshold": 100000}), OUTAGE)
    assert 600 < result.wasted <= 600 * 1.2 + 10 * 8
    assert result.availability == 1.0


def test_retry_after_is_honoured() -> None:
    """A 503 with retry-after 0.5 s: the retry waits exactly that, not the backoff."""
    pol = policy(retry={"attempts": 2}, breaker={"failure_threshold": 100000})
    (result,) = run(pol, OUTAGE + ",error=503,retry_after=500ms")
    # fail at +0.05, wait 0.5, fail at +0.6, fail over: answered at +0.65
    assert result.added_p95 == pytest.approx(0.6)


def test_healthy_scenario_is_perfect() -> None:
    """Nothing fails: every call answered by the primary, nothing wasted, no added latency."""
    (result,) = run(policy(), "healthy")
    assert result.availability == 1.0
    assert result.wasted == 0
    assert result.requests == {"primary": 3000, "secondary": 0}
    assert result.time_to_open == ()
    assert result.added_p95 == pytest.approx(0.0)
    assert result.transitions == ()


def test_two_healthy_secondaries_answer_everything() -> None:
    """Primary blackholed, default retries: two healthy secondaries still answer every call."""
    pol = policy(["a", "b", "c"], retry={"attempts": 2})
    (result,) = run(pol, "outage:start=50,length=200,error=timeout")
    assert result.availability == 1.0
    assert result.requests["c"] == 0


def test_brownout_error_rate_with_a_fixed_seed() -> None:
    """30 % errors and a breaker that never opens: about 70 % answered, the same every time."""
    pol = policy(["primary"], breaker={"failure_threshold": 100000})
    spec = "brownout:errors=30%,start=0,length=1000"
    (first,) = run(pol, spec, duration=1000.0, seed=7)
    (again,) = run(pol, spec, duration=1000.0, seed=7)
    (other,) = run(pol, spec, duration=1000.0, seed=8)
    assert first.availability == pytest.approx(0.7, abs=0.015)
    assert again.answered == first.answered
    assert other.answered != first.answered


def test_failure_rate_opens_a_brownout_the_threshold_misses() -> None:
    """10 % errors rarely make 5 in a row, but a 5 % failure_rate over 20 calls trips."""
    spec = "brownout:errors=0.1,start=100,length=100"
    (threshold_only,) = run(policy(breaker={"window": "10s"}), spec)
    (with_rate,) = run(policy(breaker={"window": "10s", "failure_rate": 0.05}), spec)
    assert with_rate.time_to_open[0] is not None
    assert with_rate.skipped["primary"] > threshold_only.skipped["primary"]


def test_flapping_in_step_with_reset_timeout_never_recovers() -> None:
    """Down 20 s of every 60, reset_timeout 60 s: every trial lands in a down phase."""
    pol = policy(breaker={"reset_timeout": "60s"})
    (result,) = run(pol, f"flapping:start=100,period=60,down=20,error_latency={FAST}")
    assert len(result.time_to_recover) == 4  # 100, 160, 220, 280 within 300 s
    assert result.time_to_recover == (None, None, None, None)
    (shorter,) = run(policy(), f"flapping:start=100,period=60,down=20,error_latency={FAST}")
    # trials at 110.5 (down) and 120.6 (up): back 0.6 s after each down phase, except the
    # last, which lasts to the end of the run
    assert shorter.time_to_recover == (*[pytest.approx(0.6)] * 3, None)


def test_scenario_on_another_endpoint() -> None:
    """endpoint= moves the trouble; the report then watches that endpoint."""
    (result,) = run(policy(), OUTAGE + ",endpoint=secondary")
    assert result.watched == "secondary"
    assert result.wasted == 0  # nothing fails over to it while the primary is fine


# --- traces -------------------------------------------------------------------------------


def write_trace(path: Path, rows: Sequence[dict[str, Any] | str]) -> str:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def record(t: float, outcome: str, error: str | None = None, **extra: Any) -> dict[str, Any]:
    """A trace line for a request to 'primary' sent at t (so ending FAST later)."""
    latency = 0.0 if outcome == "skipped" else FAST
    return {"t": t + latency, "endpoint": "primary", "outcome": outcome, "error": error,
            "status": None, "latency": latency, **extra}  # fmt: skip


def test_trace_replay_matches_the_built_in_outage(tmp_path: Path) -> None:
    """Sample and hold: a trace that goes bad at 100 and good at 160 replays as OUTAGE.

    Each record's t is when the attempt ended; it counts from t - latency, when sent.
    """
    trace = write_trace(
        tmp_path / "t.jsonl",
        [
            record(1000, "ok"),
            *(record(1100 + i, "error", "connect") for i in range(3)),
            record(1120, "skipped", "breaker_open"),  # says nothing: ignored
            record(1160, "ok", route="chat"),  # extra keys are ignored
            {"t": 1300, "endpoint": "elsewhere", "outcome": "ok", "latency": 1},
        ],
    )
    pol = policy()
    scenario = load_trace(trace, pol.route("chat").endpoints, 1.0)
    assert scenario.incidents == ((100.0, 160.0),)
    assert scenario.duration == 300.0
    (result,) = [
        simulate(c, scenario, RunSettings(10.0, 300.0)) for c in candidates(pol, "chat", [])
    ]
    (built_in,) = run(pol, OUTAGE)
    assert (result.wasted, result.requests, result.time_to_open, result.time_to_recover) == (
        built_in.wasted, built_in.requests, built_in.time_to_open, built_in.time_to_recover
    )  # fmt: skip


def test_trace_status_and_errors(tmp_path: Path) -> None:
    """Bad lines are reported as FILE:LINE; a status without a kind is that HTTP failure."""
    good = write_trace(tmp_path / "g.jsonl", [record(0, "error", None, status=529)])
    scenario = load_trace(good, ["primary"], 1.0)
    failure, _ = scenario.behaviours["primary"](5.0, None)  # type: ignore[arg-type]
    assert failure is not None
    assert failure.kind == "overloaded"
    bad = write_trace(tmp_path / "b.jsonl", [record(0, "ok"), "{not json"])
    with pytest.raises(ValueError, match=r"b\.jsonl:2: not JSON"):
        load_trace(bad, ["primary"], 1.0)
    kind = write_trace(tmp_path / "k.jsonl", [record(0, "error", "timout")])
    with pytest.raises(ValueError, match=r"k\.jsonl:1: unknown error kind 'timout'.*'timeout'"):
        load_trace(kind, ["primary"], 1.0)
    with pytest.raises(ValueError, match="no ok/error record for the route's endpoints"):
        load_trace(good, ["claude"], 1.0)
    with pytest.raises(ValueError, match="cannot read"):
        load_trace(str(tmp_path / "missing.jsonl"), ["primary"], 1.0)


# --- scenarios and candidates -------------------------------------------------------------


def test_scenario_specs_and_their_errors() -> None:
    """Defaults fill in; typos get a did-you-mean; impossible windows are refused."""
    spec = parse_spec("flapping:start=0,period=1m,down=15s")
    scenario = build_scenario([spec], ["primary"], 1.0, 300.0)
    assert scenario.incidents == tuple((i * 60.0, i * 60.0 + 15.0) for i in range(5))
    assert parse_spec("brownout:errors=25%").params["errors"] == 0.25
    for text, message in [
        ("outgae", "did you mean 'outage'"),
        ("outage:lenght=5", "did you mean 'length'"),
        ("outage:start", "expected key=value"),
        ("outage:length=-5", "positive duration"),
        ("outage:error=418x", "expected connect, timeout"),
        ("brownout:errors=1.5", "ratio"),
        ("flapping:period=10,down=10", "shorter than period"),
        ("outage:retry_after=1s", "needs an HTTP status"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_spec(text)
    with pytest.raises(ValueError, match="not before the end of the run"):
        build_scenario([parse_spec("outage")], ["primary"], 1.0, 300.0)
    with pytest.raises(ValueError, match=r"not on the route.*did you mean 'primary'"):
        build_scenario([parse_spec("outage:endpoint=primry")], ["primary"], 1.0, 3600.0)
    with pytest.raises(ValueError, match="one per endpoint"):
        build_scenario([parse_spec("outage"), parse_spec("slow")], ["primary"], 1.0, 3600.0)


def test_set_makes_the_cartesian_product() -> None:
    """Two --set options with 3 and 2 values: 6 candidates, policy-style values, labelled."""
    found = candidates(policy(), "chat", [
        "breaker.failure_threshold=3,5,10", "breaker.reset_timeout=10s,1m"
    ])  # fmt: skip
    assert len(found) == 6
    assert [c.label for c in found[:2]] == [
        "failure_threshold=3 reset_timeout=10s", "failure_threshold=3 reset_timeout=1m"
    ]  # fmt: skip
    last = found[-1].endpoints["secondary"].breaker
    assert (last.failure_threshold, last.reset_timeout) == (10, 60.0)
    (base,) = candidates(policy(), "chat", [])
    assert base.label == "policy"
    assert base.endpoints["primary"].breaker.failure_threshold == 5


def test_set_targets_one_endpoint_and_switches_off() -> None:
    """ENDPOINT.key changes that endpoint only; null switches failure_rate off; deadline."""
    pol = policy(breaker={"failure_rate": 0.5})
    (c,) = candidates(pol, "chat", ["primary.breaker.failure_rate=null", "deadline=5s"])
    assert c.endpoints["primary"].breaker.failure_rate is None
    assert c.endpoints["secondary"].breaker.failure_rate == 0.5
    assert c.deadline == 5.0
    (r,) = candidates(pol, "chat", ["retry.backoff.jitter=none", "retry.attempts=3"])
    assert r.endpoints["primary"].retry.backoff.jitter == "none"
    assert r.label == "jitter=none attempts=3"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["breaker.failure_treshold=3"], "did you mean 'failure_threshold'"),
        (["breaker.failure_threshold=0"], "must be at least 1"),
        (["breaker.reset_timeout=10x"], "is not a duration"),
        (["breaker.failure_threshold"], "expected KEY=VALUE"),
        (["breakr.window=1m"], "did you mean 'breaker'"),
        (["retry.backoff=1s"], "name one field of retry.backoff"),
        (["deadline=soon"], "not a duration"),
        (["retry.attempts=1", "retry.attempts=2"], "given twice"),
        (
            ["breaker.failure_threshold=" + ",".join(map(str, range(1, 11))),
             "breaker.reset_timeout=1s,2s,3s,4s,5s,6s"],
            f"10 x 6 = 60 candidates, more than {MAX_CANDIDATES}",
        ),
    ],
)  # fmt: skip
def test_set_errors(sets: list[str], message: str) -> None:
    """Every malformed --set says what is wrong, in the policy's own words."""
    with pytest.raises(ValueError, match=message):
        candidates(policy(), "chat", sets)


def test_percentile_is_nearest_rank() -> None:
    """p95 of 1..100 is 95; of nothing, 0."""
    assert percentile([float(i) for i in range(100, 0, -1)], 0.95) == 95.0
    assert percentile([], 0.95) == 0.0


def test_an_hour_at_50_per_second_finishes() -> None:
    """The default traffic (180 000 calls) with the built-in defaults runs to the end."""
    pol = policy(timeout={"read": "60s"}, retry={"attempts": 2}, breaker={"reset_timeout": "30s"})
    route = pol.route("chat")
    scenario = build_scenario([parse_spec("outage")], route.endpoints, 1.0, 3600.0)
    seen: list[float] = []
    (candidate,) = candidates(pol, "chat", [])
    result = simulate(candidate, scenario, RunSettings(), seen.append)
    assert result.calls == 180_000
    assert result.availability == 1.0
    assert seen == sorted(seen)
    assert 0 < len(seen) <= 180_000 // 8192
    assert seen[-1] <= 1.0


def test_poisson_arrivals() -> None:
    """--poisson: about rate x duration calls, at irregular times."""
    (candidate,) = candidates(policy(), "chat", [])
    scenario = build_scenario([], ["primary", "secondary"], FAST, 1000.0)
    result = simulate(candidate, scenario, RunSettings(10.0, 1000.0, poisson=True))
    assert 9700 < result.calls < 10300


# --- the command --------------------------------------------------------------------------


POLICY_YAML = """\
version: 1
defaults:
  retry: {attempts: 1}
  breaker: {failure_threshold: 5, reset_timeout: 10s}
endpoints:
  primary: {provider: anthropic, model: m}
  secondary: {provider: anthropic, model: m}
routes:
  chat: {endpoints: [primary, secondary]}
"""


def cli(tmp_path: Path, *argv: str) -> int:
    """Run `failover simulate ARGV` against POLICY_YAML (parser built from add_simulate)."""
    path = tmp_path / "routes.yaml"
    path.write_text(textwrap.dedent(POLICY_YAML), encoding="utf-8")
    parser = argparse.ArgumentParser(prog="failover")
    _cli_simulate.add_simulate(parser.add_subparsers())
    args = parser.parse_args(["simulate", "-c", str(path), *argv])
    code: int = args.run(args)
    return code


SHORT = ("--rate", "10", "--duration", "5m", "--latency", "50ms")


def test_cli_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One row per candidate with every column, and a legend."""
    code = cli(tmp_path, OUTAGE, *SHORT, "--set", "breaker.failure_threshold=3,5")
    out = capsys.readouterr().out
    assert code == 0
    assert "scenario: primary outage (connection refused) from 100s to 160s" in out
    header = next(line for line in out.splitlines() if line.startswith("candidate"))
    assert header.split() == ["candidate", "answered", "wasted", "to", "open", "to", "recover",
                              "+p95", "primary", "secondary"]  # fmt: skip
    row = next(line for line in out.splitlines() if line.startswith("failure_threshold=5"))
    assert row.split()[1:6] == ["100.000%", "10", "450ms", "1s", "+0ms"]
    assert "wasted: failed requests sent to primary" in out


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: the run's parameters and one object per candidate."""
    assert cli(tmp_path, OUTAGE, *SHORT, "--json", "--set", "retry.attempts=1,2") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calls"] == 3000
    assert data["incidents"] == [[100.0, 160.0]]
    assert [c["settings"] for c in data["candidates"]] == [
        {"retry.attempts": "1"}, {"retry.attempts": "2"}
    ]  # fmt: skip
    assert data["candidates"][0]["wasted"] == 10


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad scenarios, --set values, routes and traces exit 2 with one clear line."""
    assert cli(tmp_path, "outgae") == 2
    assert "failover simulate: unknown scenario 'outgae'" in capsys.readouterr().err
    assert cli(tmp_path, "--set", "breaker.failure_threshold=x") == 2
    assert "expected an integer" in capsys.readouterr().err
    assert cli(tmp_path, "-r", "caht") == 2
    assert "did you mean 'chat'" in capsys.readouterr().err
    assert cli(tmp_path, "outage", "--trace", "t.jsonl") == 2
    assert "not both" in capsys.readouterr().err
    assert cli(tmp_path, "--rate", "10000", "--duration", "1h") == 2
    assert "more than 10000000 calls" in capsys.readouterr().err


def test_cli_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--trace replays over the trace's own span unless --duration says otherwise."""
    trace = write_trace(tmp_path / "t.jsonl", [record(0, "ok"), record(120 - FAST, "ok")])
    assert cli(tmp_path, "--trace", trace, "--rate", "10") == 0
    assert "(1200 calls" in capsys.readouterr().out


def test_cli_plot_writes_a_png(tmp_path: Path) -> None:
    """--plot writes a PNG (checked by its magic bytes), small enough for docs; or exits 1."""
    out = tmp_path / "sim.png"
    assert cli(tmp_path, OUTAGE, *SHORT, "--set", "breaker.failure_threshold=3,5",
               "--plot", str(out)) == 0  # fmt: skip
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) < 200_000
    assert cli(tmp_path, OUTAGE, *SHORT, "--plot", str(tmp_path / "no" / "such.png")) == 1


def test_matplotlib_is_imported_only_for_plot(tmp_path: Path) -> None:
    """Without --plot, the command never imports matplotlib."""
    path = tmp_path / "routes.yaml"
    path.write_text(POLICY_YAML, encoding="utf-8")
    code = textwrap.dedent(f"""
        import argparse, sys
        from failover.cli import _simulate as _cli_simulate
        parser = argparse.ArgumentParser()
        _cli_simulate.add_simulate(parser.add_subparsers())
        args = parser.parse_args(["simulate", "-c", {str(path)!r}, "--duration", "20m",
                                  "outage:start=1m"])
        assert args.run(args) == 0
        assert "matplotlib" not in sys.modules, "matplotlib imported"
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar is drawn on a TTY once a second has passed, and wiped at the end."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock = iter([0.0, 0.5, 2.0, 2.1])
    monkeypatch.setattr(_cli_simulate.time, "monotonic", lambda: next(clock))
    tty = Terminal()
    bar = _cli_simulate._Progress(2, tty)
    bar(0, 0.5)  # at 0.5 s: too early
    assert tty.getvalue() == ""
    bar.step(1)(0.5)  # at 2.0 s
    assert "\rsimulating 2/2 [" in tty.getvalue()
    assert "75%" in tty.getvalue()
    bar.close()
    assert tty.getvalue().endswith("\r")
    plain = io.StringIO()
    quiet = _cli_simulate._Progress(1, plain)
    quiet(0, 1.0)
    quiet.close()
    assert plain.getvalue() == ""


def test_replays_what_the_trace_listener_writes(tmp_path: Path) -> None:
    """A trace written by JsonlTraceListener loads, keyed by when each request was sent."""
    from failover._events import AttemptFinished
    from failover.instrumentation import JsonlTraceListener

    clock = iter([0.0, 100.05, 100.2, 101.0, 101.5]).__next__  # created at 0, then each end
    path = tmp_path / "trace.jsonl"
    with JsonlTraceListener(path, clock=clock) as log:
        for outcome, error, status, latency in [
            ("ok", None, None, 0.05),
            ("error", "overloaded", 529, 0.1),
            ("skipped", "breaker_open", None, 0.0),
            ("ok", None, None, 0.5),
        ]:
            log(AttemptFinished("chat", "primary", "m", 0, outcome, latency, 0.0,
                                status_code=status, error=error))  # fmt: skip
    scenario = load_trace(str(path), ["primary", "secondary"], 1.0)
    behaviour = scenario.behaviours["primary"]
    # sent at 100.0 (time 0 of the replay), 100.1 and 101.0; the skipped line is ignored
    assert behaviour(0.0, None)[0] is None  # type: ignore[arg-type]
    failure, latency = behaviour(0.15, None)  # type: ignore[arg-type]
    assert failure is not None
    assert (failure.kind, failure.status_code, latency) == ("overloaded", 529, 0.1)
    assert behaviour(1.0 - 1e-9, None)[0] is not None  # type: ignore[arg-type]
    assert behaviour(1.0, None) == (None, 0.5)  # type: ignore[arg-type]


def test_set_reaches_the_retry_budget() -> None:
    """`--set retry.budget.ratio=...` makes candidates whose budgets differ, and a tighter
    budget sends fewer requests to a failing endpoint."""
    retry = {"attempts": 3, "backoff": {"initial": "1.02s", "max": "10s", "jitter": "none"}}
    pol = policy(retry=retry, breaker={"failure_threshold": 100000})
    loose, tight = run(pol, OUTAGE, sets=["retry.budget.ratio=1,0"])
    assert loose.candidate.endpoints["primary"].retry.budget.ratio == 1.0
    assert tight.candidate.endpoints["primary"].retry.budget.ratio == 0.0
    assert tight.wasted < loose.wasted
    assert tight.availability == loose.availability == 1.0
