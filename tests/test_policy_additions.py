"""Policy additions: first_token, retry budget, prefill, restart, namespace, Redis URL forms,
typed observability; and the edges: nulls, NaN, duration bounds, size cap, masking, extras."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from failover._errors import PolicyError
from failover.cli._main import main
from failover.policy._extras import missing_extras
from failover.policy._model import (
    LoggingSettings,
    ObservabilityPolicy,
    Policy,
    PrometheusSettings,
    RetryBudgetPolicy,
    StatsSettings,
)
from failover.policy._source import MAX_POLICY_BYTES

from _support import MINIMAL, load, policy_data, problems

# Every test runs in its own directory, so `routes.yaml` is a relative path.
pytestmark = pytest.mark.usefixtures("in_tmp")


def data(**top: Any) -> dict[str, Any]:
    return policy_data("a", "m", "r", **top)


# --- timeout.first_token -----------------------------------------------------------------


def test_first_token_is_off_by_default_and_merges_like_other_timeouts() -> None:
    """first_token: None by default; defaults < endpoint < route, and null switches it off."""
    assert Policy.from_dict(data()).effective("r", "a")[0].first_token is None
    policy = load(
        """\
        version: 1
        defaults:
          timeout: {first_token: 5s}
        endpoints:
          a: {provider: anthropic, model: m}
          b: {provider: anthropic, model: m, timeout: {first_token: 2s}}
        routes:
          r: {endpoints: [a, b]}
          quick: {endpoints: [a, b], timeout: {first_token: 1s}}
          off: {endpoints: [a], timeout: {first_token: null}}
          short: {endpoints: [a], timeout: 10s}
        """
    )
    assert policy.effective("r", "a")[0].first_token == 5.0
    assert policy.effective("r", "b")[0].first_token == 2.0
    assert policy.effective("quick", "a")[0].first_token == 1.0
    assert policy.effective("off", "a")[0].first_token is None
    # The one-duration form sets connect and read; first_token keeps its value.
    assert policy.effective("short", "a")[0].first_token == 5.0
    assert Policy.from_dict(policy.to_dict()) == policy


def test_first_token_not_positive_is_an_error_at_its_line() -> None:
    """first_token: 0 or negative is reported at its line."""
    assert problems(MINIMAL + "defaults:\n  timeout:\n    first_token: 0s\n") == [
        "routes.yaml:11: defaults.timeout.first_token: must be a positive duration, got '0s'"
    ]
    assert problems(MINIMAL + "defaults:\n  timeout: {first_token: -1}\n")[0].startswith(
        "routes.yaml:10: defaults.timeout.first_token: must be a positive duration"
    )


def test_first_token_longer_than_read_is_an_error_where_it_is_written() -> None:
    """first_token > read (after merging) is reported at the first_token in effect."""
    text = """\
        version: 1
        defaults:
          timeout: {first_token: 20s}
        endpoints:
          a: {provider: anthropic, model: m, timeout: {read: 10s}}
          b: {provider: anthropic, model: m}
        routes:
          r: {endpoints: [b]}
          s:
            endpoints: [b]
            timeout: {read: 30s, first_token: 40s}
        """
    assert problems(text) == [
        "routes.yaml:3: defaults.timeout.first_token: 20s is longer than read (10s) for "
        "endpoint 'a'; first_token must be at most read",
        "routes.yaml:11: routes.s.timeout.first_token: 40s is longer than read (30s) for "
        "endpoint 'b' on route 's'; first_token must be at most read",
    ]


# --- retry budget ------------------------------------------------------------------------


def test_retry_budget_defaults_and_key_by_key_merge() -> None:
    """retry.budget: 0.2 / 10 / 10s built in; each key overrides on its own."""
    assert Policy.from_dict(data()).effective("r", "a")[1].budget == RetryBudgetPolicy(
        ratio=0.2, min_retries=10, window=10.0
    )
    policy = load(
        """\
        version: 1
        defaults:
          retry: {budget: {ratio: 0.5, min_retries: 3, window: 30s}}
        endpoints:
          a: {provider: anthropic, model: m, retry: {budget: {min_retries: 0}}}
        routes:
          r: {endpoints: [a], retry: {budget: {ratio: 0}}}
          s: {endpoints: [a]}
        """
    )
    assert policy.effective("r", "a")[1].budget == RetryBudgetPolicy(
        ratio=0.0, min_retries=0, window=30.0
    )
    assert policy.effective("s", "a")[1].budget == RetryBudgetPolicy(
        ratio=0.5, min_retries=0, window=30.0
    )
    assert Policy.from_dict(policy.to_dict()) == policy


def test_retry_budget_bad_values_at_their_lines() -> None:
    """A ratio outside [0, 1], a negative floor, a bad window, an unknown key: each at its line."""
    text = MINIMAL + (
        "defaults:\n  retry:\n    budget:\n      ratio: 1.5\n      min_retries: -1\n"
        "      window: 2d\n      ratoi: 0.1\n"
    )
    assert problems(text) == [
        "routes.yaml:12: defaults.retry.budget.ratio: must be a number in [0, 1], got 1.5",
        "routes.yaml:13: defaults.retry.budget.min_retries: must be at least 0, got -1",
        "routes.yaml:14: defaults.retry.budget.window: '2d' is not a duration (use 250ms, 3s, "
        "1.5m, 1h)",
        "routes.yaml:15: defaults.retry.budget.ratoi: unknown key (did you mean 'ratio'?)",
    ]


# --- on_interrupt, prefill, namespace -----------------------------------------------------


def test_on_interrupt_restart_and_prefill() -> None:
    """on_interrupt takes restart; prefill is true, false, or left out (None)."""
    policy = Policy.from_dict(
        data(
            endpoints={
                "a": {"provider": "anthropic", "model": "m", "prefill": False},
                "b": {"provider": "litellm", "model": "x/y", "prefill": True},
                "c": {"provider": "anthropic", "model": "m"},
            },
            routes={"r": {"endpoints": ["a", "b", "c"], "on_interrupt": "restart"}},
        )
    )
    assert policy.routes["r"].on_interrupt == "restart"
    assert [policy.endpoints[n].prefill for n in "abc"] == [False, True, None]
    assert Policy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize("value", ["'yes'", "1", "null"])
def test_prefill_takes_only_true_or_false(value: str) -> None:
    """prefill: a non-boolean (or null) is an error at its line."""
    found = problems(MINIMAL.replace("model: claude-sonnet-4-5", f"model: m\n    prefill: {value}"))
    assert len(found) == 1
    assert found[0].startswith("routes.yaml:6: endpoints.claude.prefill: ")


def test_namespace() -> None:
    """namespace: a safe, short key prefix; part of equality and the dump."""
    policy = Policy.from_dict(data(namespace="prod:eu-1.v2_a"))
    assert policy.namespace == "prod:eu-1.v2_a"
    assert Policy.from_dict(data()).namespace is None
    assert policy != Policy.from_dict(data())
    assert Policy.from_dict(policy.to_dict()) == policy
    for bad in ("prod env", "a/b", "x" * 65, "", "ü"):
        with pytest.raises(PolicyError, match=r"namespace: .* is not a namespace"):
            Policy.from_dict(data(namespace=bad))
    assert problems(MINIMAL + "namespace: 3\n") == [
        "routes.yaml:9: namespace: expected a string, got 3"
    ]


# --- Redis URL forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://:pw@r.example.com:6380/3",
        "redis+sentinel://s1:26379,s2:26379,s3/mymaster",
        "redis+sentinel://:pw@s1:26379/mymaster/2",
        "redis+cluster://c1:7000,c2:7001,[::1]:7002",
        "redis+cluster://c1:7000/0",
        "unix:///run/redis/redis.sock",
        "unix:///run/redis.sock?db=2",
    ],
)
def test_redis_url_forms_are_accepted_and_kept_as_written(url: str) -> None:
    """Every Redis form loads, for state and cache, with .url exactly as written."""
    policy = Policy.from_dict(data(state={"backend": url}, cache={"backend": url}))
    assert (policy.state.kind, policy.state.url) == ("redis", url)
    assert (policy.cache.kind, policy.cache.url) == ("redis", url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memcached://h:1", "unknown backend scheme 'memcached'"),
        ("redis+sentinel://s1:26379", "names no service"),
        ("redis+sentinel:///mymaster", "has no host"),
        ("redis+cluster://c1:7000,,c2", "has no host"),
        ("redis+cluster://c1:7000/3", "a Redis Cluster has only database 0"),
        ("redis://a:1,b:2/0", "names several hosts"),
        ("redis+sentinel://s1:99999/m", "the port must be 1 to 65535"),
        ("redis://:hunter2@h:1/x", "the database must be a non-negative integer"),
        ("unix://", "write unix:///path/to/redis.sock"),
    ],
)
def test_bad_redis_urls_are_refused_clearly(url: str, message: str) -> None:
    """A malformed Redis URL is an error naming the problem, the password masked."""
    with pytest.raises(PolicyError, match=r"state\.backend: ") as info:
        Policy.from_dict(data(state={"backend": url}))
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


# --- observability -----------------------------------------------------------------------


def test_observability_is_resolved_into_typed_settings() -> None:
    """The section becomes frozen typed settings, and stays a mapping of what was written."""
    section = {
        "logging": {"level": "INFO"},
        "stats": {"window": "2m", "max_samples": 16},
        "prometheus": {"namespace": "llm"},
        "otel": True,
        "trace": "t-{pid}.jsonl",
    }
    obs = Policy.from_dict(data(observability=section)).observability
    assert isinstance(obs, ObservabilityPolicy)
    assert obs.logging == LoggingSettings(enabled=True, level="info")
    assert obs.stats == StatsSettings(window=120.0, max_samples=16)
    assert obs.prometheus == PrometheusSettings(namespace="llm")
    assert (obs.otel, obs.trace) == (True, "t-{pid}.jsonl")
    assert dict(obs) == section
    default = Policy.from_dict(data()).observability
    assert default == ObservabilityPolicy()
    assert not default
    assert (default.logging.enabled, default.stats, default.prometheus) == (True, None, None)
    assert not Policy.from_dict(
        data(observability={"logging": False})
    ).observability.logging.enabled
    written_differently = Policy.from_dict(
        data(observability={**section, "stats": {"window": 120, "max_samples": 16}})
    )
    assert written_differently.observability == obs
    with pytest.raises(AttributeError):
        obs.otel = False  # type: ignore[misc]


def test_listeners_from_config_takes_the_policy_attribute() -> None:
    """instrumentation.listeners_from_config still accepts policy.observability as is."""
    from failover.instrumentation._config import listeners_from_config

    obs = Policy.from_dict(data(observability={"stats": {"max_samples": 8}})).observability
    kinds = [type(listener).__name__ for listener in listeners_from_config(obs)]
    assert kinds == ["LoggingListener", "StatsListener"]


# --- non-finite numbers, duration bounds, nulls --------------------------------------------


def test_non_finite_numbers_are_refused_anywhere_with_their_path() -> None:
    """.nan and .inf are errors, in params too (JSON cannot carry them)."""
    text = (
        MINIMAL.replace(
            "model: claude-sonnet-4-5", "model: m\n    params: {temperature: .nan, top_p: -.inf}"
        )
        + "defaults:\n  breaker: {failure_rate: .inf}\n"
    )
    assert problems(text) == [
        "routes.yaml:6: endpoints.claude.params.temperature: expected a finite number, got nan",
        "routes.yaml:6: endpoints.claude.params.top_p: expected a finite number, got -inf",
        "routes.yaml:11: defaults.breaker.failure_rate: expected a finite number, got inf",
    ]


def test_durations_have_upper_bounds() -> None:
    """A day for timeouts, deadlines, backoff and breaker spans; a year for cache lifetimes."""
    text = MINIMAL + (
        "  other:\n    endpoints: [claude]\n    deadline: 25h\n"
        "    cache: {ttl: 8760h, stale_if_error: 8761h}\n"
        "defaults:\n  timeout:\n    read: 10000000000000h\n  retry:\n"
        "    backoff: {max: 86401}\n  breaker: {reset_timeout: 1.0e+300}\n"
    )
    assert problems(text) == [
        "routes.yaml:11: routes.other.deadline: must be at most 1 day (24h), got '25h'",
        "routes.yaml:12: routes.other.cache.stale_if_error: must be at most 1 year (8760h), "
        "got '8761h'",
        "routes.yaml:15: defaults.timeout.read: must be at most 1 day (24h), got '10000000000000h'",
        "routes.yaml:17: defaults.retry.backoff.max: must be at most 1 day (24h), got 86401",
        "routes.yaml:18: defaults.breaker.reset_timeout: must be at most 1 day (24h), got 1e+300",
    ]
    policy = Policy.from_dict(data(defaults={"timeout": "24h"}))
    assert policy.effective("r", "a")[0].read == 86400.0


FULL: dict[str, Any] = {
    "version": 1,
    "namespace": "ns",
    "defaults": {
        "timeout": {"connect": "3s", "read": "60s", "stream_idle": "30s", "first_token": "5s"},
        "retry": {
            "attempts": 2,
            "backoff": {"initial": "250ms", "max": "4s", "multiplier": 2, "jitter": "full"},
            "max_retry_after": "10s",
            "budget": {"ratio": 0.2, "min_retries": 10, "window": "10s"},
        },
        "breaker": {
            "failure_threshold": 5,
            "failure_rate": 0.5,
            "minimum_calls": 20,
            "window": "60s",
            "slow_call": "30s",
            "reset_timeout": "30s",
            "half_open_max_calls": 1,
        },
    },
    "endpoints": {
        "a": {
            "provider": "anthropic",
            "model": "m",
            "api_key": "sk-x",
            "base_url": "https://api.example.com",
            "prefill": False,
            "params": {"temperature": 0.2, "stop": None},
            "timeout": {"read": "30s"},
        }
    },
    "routes": {
        "r": {
            "endpoints": ["a"],
            "deadline": "90s",
            "cache": {"ttl": "1h", "stale_if_error": "24h", "serve": "fallback"},
            "on_interrupt": "raise",
            "retry": {"attempts": 1},
            "breaker": {"failure_threshold": 3},
        }
    },
    "default_route": "r",
    "cache": {"backend": "memory", "max_entries": 100},
    "state": {"backend": "memory"},
    "observability": {"logging": {"level": "info"}, "stats": True, "trace": "t.jsonl"},
}


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


SWITCHES = {"failure_rate", "slow_call", "first_token"}


@pytest.mark.parametrize("path", _paths(FULL), ids=lambda p: ".".join(map(str, p)))
def test_null_is_refused_everywhere_but_the_documented_switches(path: tuple[Any, ...]) -> None:
    """Every key set to null is an error naming it, except the "off" switches and params."""
    Policy.from_dict(FULL)  # the document itself is valid
    doc = copy.deepcopy(FULL)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = None
    if path[-1] in SWITCHES or "params" in path[:-1]:
        Policy.from_dict(doc)
        return
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(doc)
    where = ".".join(map(str, path))
    assert f"{where}: null is not allowed here" in str(info.value)


def test_api_key_null_is_an_error_not_a_fallback() -> None:
    """api_key: null no longer falls back to the SDK's environment variable silently."""
    text = MINIMAL.replace("model: claude-sonnet-4-5", "model: m\n    api_key: null")
    assert problems(text) == [
        "routes.yaml:6: endpoints.claude.api_key: null is not allowed here (leave api_key out "
        "to use the SDK's own environment variable)"
    ]


# --- size cap and odd files ----------------------------------------------------------------


def test_a_file_over_one_mib_is_refused_before_parsing() -> None:
    """Over 1 MiB: one clear issue, at once; at the cap, the file still loads."""
    padding = "#" * 99 + "\n"
    body = MINIMAL + padding * ((MAX_POLICY_BYTES - len(MINIMAL)) // len(padding))
    Path("routes.yaml").write_text(body, encoding="utf-8")
    assert Policy.from_yaml("routes.yaml").routes["chat"].endpoints == ("claude",)
    Path("routes.yaml").write_text(
        body + "x" * (MAX_POLICY_BYTES + 1 - len(body)), encoding="utf-8"
    )
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml("routes.yaml")
    assert [str(i) for i in info.value.issues] == [
        "routes.yaml: the file is larger than 1 MiB, the most a policy may be"
    ]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_check_dev_zero_stops_at_once_and_stays_small() -> None:
    """failover check /dev/zero: refused within seconds, the process stays small."""
    # VmHWM (peak resident memory) belongs to this process image; ru_maxrss would carry
    # over the peak of the pytest process that forked it.
    code = (
        "from failover.cli._main import main\n"
        "status = main(['check', '/dev/zero'])\n"
        "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "print(status, peak.split()[1])\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 30
    status, max_rss_kib = done.stdout.split()
    assert status == "1"
    assert int(max_rss_kib) < 200 * 1024
    assert done.stderr == "/dev/zero: is not a regular file (a device?); give a policy file\n"


def test_a_pipe_is_read() -> None:
    """A FIFO (as from `<(envsubst < routes.yaml)`) is read like a file."""
    os.mkfifo("pipe.yaml")

    def feed() -> None:
        with open("pipe.yaml", "w", encoding="utf-8") as handle:
            handle.write(MINIMAL)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        assert Policy.from_yaml("pipe.yaml").routes["chat"].endpoints == ("claude",)
    finally:
        writer.join(5)


# --- masking -------------------------------------------------------------------------------


MASKED = MINIMAL.replace(
    "model: claude-sonnet-4-5",
    "model: m\n    base_url: https://user:hunter2@gw.example.com\n    api_key: sk-ant-SECRET123",
) + (
    "cache: {backend: 'redis+sentinel://:hunter2@s1:26379,s2:26379/mymaster/1'}\n"
    "state: {backend: 'redis://:hunter2@r.example.com:6379/0?password=hunter2'}\n"
)


def test_passwords_are_masked_in_repr_dumps_and_json() -> None:
    """repr, to_dict, model_dump and the JSON dump never show a URL password or key."""
    policy = load(MASKED)
    shown = [
        repr(policy),
        str(policy),
        str(policy.to_dict()),
        str(policy.model_dump()),
        policy.model_dump_json(),
        repr(policy.state),
        repr(policy.endpoints["claude"]),
    ]
    for text in shown:
        assert "hunter2" not in text
        assert "SECRET123" not in text
    assert policy.to_dict()["state"]["backend"] == (
        "redis://:***@r.example.com:6379/0?password=***"
    )
    assert policy.to_dict()["endpoints"]["claude"]["base_url"] == "https://user:***@gw.example.com"
    # reveal=True keeps them, so the dump loads back equal.
    revealed = policy.to_dict(reveal=True)
    assert "hunter2" in revealed["cache"]["backend"]
    assert Policy.from_dict(revealed) == policy
    assert policy.state.url is not None
    assert "hunter2" in policy.state.url


def test_check_output_masks_every_password(capsys: pytest.CaptureFixture[str]) -> None:
    """failover check prints neither URL passwords nor keys."""
    load(MASKED)
    assert main(["check", "routes.yaml"]) == 0
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err
    assert "SECRET123" not in out + err
    assert "state backend: redis://:***@r.example.com:6379/0?password=*** (shared" in out


# --- missing extras ------------------------------------------------------------------------

EXTRAS = (
    MINIMAL.replace("endpoints: [claude]", "endpoints: [claude, gpt]").replace(
        "routes:", "  gpt:\n    provider: litellm\n    model: openai/gpt-4o-mini\nroutes:"
    )
    + "state: {backend: 'redis://localhost:6379/0'}\ncache: {backend: 'unix:///r.sock'}\n"
)


def test_missing_extras_names_the_extra_and_what_needs_it() -> None:
    """litellm endpoints and redis backends name the extra to install."""
    policy = load(EXTRAS)
    missing = missing_extras(policy, installed=lambda module: False)
    assert [str(m) for m in missing] == [
        "endpoint 'gpt' need(s) the 'litellm' package, which is not installed: "
        "pip install 'failover[litellm]'",
        "state backend, cache backend need(s) the 'redis' package, which is not installed: "
        "pip install 'failover[redis]'",
    ]
    assert missing_extras(policy, installed=lambda module: True) == []
    assert missing_extras(Policy.from_dict(data()), installed=lambda module: False) == []


def test_check_warns_about_missing_extras_and_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check: a missing extra is a warning on stderr, the exit status stays 0."""
    import failover.policy._extras as extras

    monkeypatch.setattr(extras, "_installed", lambda module: module != "litellm")
    load(EXTRAS)
    assert main(["check", "routes.yaml"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("routes.yaml: OK")
    assert err == (
        "routes.yaml: warning: endpoint 'gpt' need(s) the 'litellm' package, which is not "
        "installed: pip install 'failover[litellm]'\n"
    )


def test_extras_are_detected_without_importing_them() -> None:
    """missing_extras finds packages without importing litellm or redis."""
    code = (
        "import sys\n"
        "from failover.policy._model import Policy\n"
        "from failover.policy._extras import missing_extras\n"
        "p = Policy.from_yaml('routes.yaml')\n"
        "missing_extras(p)\n"
        "print(sorted(m for m in ('litellm', 'redis', 'anthropic') if m in sys.modules))\n"
    )
    load(EXTRAS)
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
