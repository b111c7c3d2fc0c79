"""Invariants of policy loading, for arbitrary input: only PolicyError, and exact round trips."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover._errors import PolicyError
from failover.policy._model import Policy

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Whole valid policies are big documents; fewer examples keep the file at a few seconds.
HEAVY = settings(SETTINGS, max_examples=60)
# Only for producing test input: the C dumper is much faster where libyaml is available.
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

KEYS = [
    "version", "defaults", "endpoints", "routes", "default_route", "cache", "state",
    "provider", "model", "api_key", "base_url", "params", "timeout", "retry", "breaker",
    "connect", "read", "stream_idle", "attempts", "backoff", "initial", "max", "multiplier",
    "jitter", "max_retry_after", "failure_threshold", "failure_rate", "minimum_calls",
    "window", "slow_call", "reset_timeout", "half_open_max_calls", "deadline", "ttl",
    "stale_if_error", "serve", "on_interrupt", "backend", "max_entries", "claude", "chat",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "3s",
            "250ms",
            "1.5m",
            "0s",
            "-1s",
            "3x",
            "${HOME}",
            "${FO_NOPE}",
            "${X:-1}",
            "$$",
            "${",
            "anthropic",
            "litellm",
            "memory",
            "redis://h:1/0",
            "sqlite:///a.db",
            "full",
            "fresh",
        ]
    ),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6))
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)
TOKENS = [*list("ab01:-[]{}#&*!|>'\"%@`,? \n\t$."), "version: 1\n", "  ", "<<: ", "!!int "]
yaml_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(TOKENS), max_size=60).map("".join),
)


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scratch file for the module (a function-scoped tmp_path would be shared by
    every Hypothesis example anyway)."""
    return tmp_path_factory.mktemp("hypothesis") / "routes.yaml"


def load_text(path: Path, text: str) -> Policy:
    path.write_text(text, encoding="utf-8")
    return Policy.from_yaml(path)


def only_policy_errors(call: Any, *args: Any) -> None:
    """Run a loader; a PolicyError is an acceptable outcome, anything else fails the test."""
    issues: tuple[object, ...] = ("loaded",)
    try:
        call(*args)
    except PolicyError as exc:
        issues = exc.issues
    assert issues, "a PolicyError always carries at least one issue"


@SETTINGS
@given(yaml_text)
def test_arbitrary_text_only_raises_policy_error(policy_file: Path, text: str) -> None:
    """Any text at all, YAML or not, either loads or raises PolicyError."""
    only_policy_errors(load_text, policy_file, text)


@settings(SETTINGS, max_examples=120)
@given(documents)
def test_arbitrary_data_only_raises_policy_error(policy_file: Path, document: Any) -> None:
    """Any plain data, as a dict or dumped to YAML, either loads or raises PolicyError."""
    only_policy_errors(Policy.from_dict, document)
    only_policy_errors(load_text, policy_file, yaml.dump(document, Dumper=Dumper))


# --- valid policies -------------------------------------------------------------------------

names = st.text(alphabet="abcdefgh0_-", min_size=1, max_size=8)
words = st.text(alphabet="abcxyz019-_./ ", min_size=1, max_size=12).filter(str.strip)
# Every duration is at most a day (cache lifetimes may be longer; a day is enough here).
durations = st.one_of(
    st.floats(min_value=0.001, max_value=86400, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=86400),
    st.builds(lambda n, u: f"{n}{u}", st.integers(1, 1440), st.sampled_from(["ms", "s", "m", ""])),
    st.builds(lambda n: f"{n}h", st.integers(1, 24)),
)
ratios = st.floats(min_value=0.001, max_value=1.0)


def partial(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


timeouts = st.one_of(durations, partial(connect=durations, read=durations, stream_idle=durations))
retries = partial(
    attempts=st.integers(1, 9),
    backoff=partial(
        initial=durations,
        max=durations,
        multiplier=st.floats(1, 10),
        jitter=st.sampled_from(["full", "none", "equal"]),
    ),
    max_retry_after=durations,
    budget=partial(ratio=st.floats(0, 1), min_retries=st.integers(0, 1000), window=durations),
)
breakers = partial(
    failure_threshold=st.integers(1, 50),
    failure_rate=st.none() | ratios,
    minimum_calls=st.integers(1, 100),
    window=durations,
    slow_call=st.none() | durations,
    reset_timeout=durations,
    half_open_max_calls=st.integers(1, 5),
)
overrides = {"timeout": timeouts, "retry": retries, "breaker": breakers}
params = st.dictionaries(
    st.sampled_from(["temperature", "top_p", "stop", "metadata", "max_tokens"]),
    st.one_of(st.integers(0, 100), st.floats(0, 2), words, st.lists(words, max_size=2)),
    max_size=3,
)
endpoint = st.fixed_dictionaries(
    {"provider": st.sampled_from(["anthropic", "litellm"]), "model": words},
    optional={
        "api_key": words,
        "base_url": st.sampled_from(["https://api.example.com", "http://127.0.0.1:4000/v1"]),
        "params": params,
        "prefill": st.booleans(),
        **overrides,
    },
)
cache = partial(
    ttl=durations, stale_if_error=durations, serve=st.sampled_from(["fallback", "fresh"])
)


@st.composite
def valid_policies(draw: st.DrawFn) -> dict[str, Any]:
    endpoints = draw(st.dictionaries(names, endpoint, min_size=1, max_size=4))
    endpoint_names = st.lists(st.sampled_from(sorted(endpoints)), min_size=1, unique=True)
    route = st.fixed_dictionaries(
        {"endpoints": endpoint_names},
        optional={
            "deadline": durations,
            "cache": cache,
            "on_interrupt": st.sampled_from(["raise", "continue", "restart"]),
            **overrides,
        },
    )
    routes = draw(st.dictionaries(names, route, min_size=1, max_size=3))
    policy: dict[str, Any] = {"version": 1, "endpoints": endpoints, "routes": routes}
    policy.update(draw(partial(defaults=partial(**overrides))))
    if draw(st.booleans()):
        policy["default_route"] = draw(st.sampled_from(sorted(routes)))
    policy.update(
        draw(
            partial(
                cache=partial(
                    backend=st.sampled_from(
                        ["memory", "sqlite:///c.db", "redis://localhost:6379/0"]
                    ),
                    max_entries=st.integers(1, 10**6),
                ),
                state=partial(
                    backend=st.sampled_from(
                        [
                            "memory",
                            "rediss://r.example.com:6380/3",
                            "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/2",
                            "redis+cluster://c1:7000,c2:7001",
                            "unix:///run/redis.sock?db=1",
                        ]
                    )
                ),
                namespace=st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z"),
            )
        )
    )
    return policy


@HEAVY
@given(valid_policies())
def test_valid_policies_round_trip(policy_file: Path, data: dict[str, Any]) -> None:
    """A valid policy dumps with to_dict() and loads back equal, as a dict and as YAML."""
    policy = Policy.from_dict(data)
    dumped = policy.to_dict(reveal=True)
    again = Policy.from_dict(dumped)
    assert again == policy
    assert hash(again) == hash(policy)
    for route in policy.routes:
        for name in policy.routes[route].endpoints:
            assert again.effective(route, name) == policy.effective(route, name)
    assert load_text(policy_file, yaml.dump(dumped, Dumper=Dumper)) == policy


@HEAVY
@given(valid_policies(), st.data())
def test_mutated_policies_only_raise_policy_error(
    policy_file: Path, data: dict[str, Any], draw: st.DataObject
) -> None:
    """Changing, deleting or adding one key anywhere in a valid policy never crashes."""
    mutated = copy.deepcopy(data)
    node: Any = mutated
    while True:
        if isinstance(node, dict) and node:
            key = draw.draw(st.sampled_from(sorted(node, key=str)))
        elif isinstance(node, list) and node:
            key = draw.draw(st.integers(0, len(node) - 1))
        else:
            break
        child = node[key]
        if not isinstance(child, (dict, list)) or draw.draw(st.booleans()):
            action = draw.draw(st.sampled_from(["replace", "delete", "add", "wrap"]))
            if action == "replace":
                node[key] = draw.draw(documents)
            elif action == "delete":
                del node[key]
            elif action == "add" and isinstance(node, dict):
                node[draw.draw(keys)] = draw.draw(scalars)
            else:
                node[key] = [child]
            break
        node = child
    only_policy_errors(Policy.from_dict, mutated)
    only_policy_errors(load_text, policy_file, yaml.dump(mutated, Dumper=Dumper))


@pytest.mark.parametrize("text", ["", "{", "- [", "version: 1\n" * 2, "\x00"])
def test_edge_texts(policy_file: Path, text: str) -> None:
    """A few hand-picked awkward inputs, kept as fixed regression cases."""
    with pytest.raises(PolicyError):
        load_text(policy_file, text)
