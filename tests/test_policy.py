"""The policy layer: loading, validation messages, merging, secrets, env vars, dumping."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from failover._errors import PolicyError, PolicyIssue, RouteNotFound
from failover.policy._durations import format_duration, parse_duration
from failover.policy._model import (
    BackoffPolicy,
    BreakerOverride,
    BreakerPolicy,
    EndpointPolicy,
    Policy,
    PolicyFileNotFound,
    RetryPolicy,
    TimeoutOverride,
    TimeoutPolicy,
)
from failover.policy._secret import Secret

from _support import MINIMAL, load, policy_data, problems, write

SECRET = "sk-ant-SECRET123"


# Every test runs in its own directory, so `routes.yaml` is a relative path.
pytestmark = pytest.mark.usefixtures("in_tmp")


def data(**changes: Any) -> dict[str, Any]:
    """A valid policy dict with top-level keys replaced."""
    return policy_data(**changes)


# --- the error cases: exact line and key path -------------------------------------------


def test_yaml_syntax_error_names_the_line() -> None:
    """A YAML syntax error is a PolicyError pointing at the line the parser stopped on."""
    assert problems(
        """\
        version: 1
        endpoints:
          claude:
            provider: anthropic
           model: x
        """
    ) == [
        "routes.yaml:5: invalid YAML: bad indentation (this line does not line up with the keys "
        "around it) (while parsing a block mapping that starts on line 3)"
    ]


def test_unclosed_flow_mapping_also_names_where_it_began() -> None:
    """The parser notices a missing '}' a line late; the message says where the '{' was."""
    [message] = problems("version: 1\nendpoints:\n  claude: {provider: anthropic\nroutes: {}\n")
    assert message.startswith("routes.yaml:4: invalid YAML: ")
    assert "flow mapping that starts on line 3" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "{}\n"])
def test_empty_file(text: str) -> None:
    """An empty (or comment-only) file is one clear error, not a list of missing keys."""
    assert problems(text) == ["routes.yaml:1: the policy is empty"]


def test_top_level_not_a_mapping() -> None:
    """A list at the top level is reported at the line it starts on."""
    assert problems("# a policy\n- version: 1\n") == [
        "routes.yaml:2: the top level must be a mapping (version, endpoints...), got a list"
    ]


def test_unknown_key_with_did_you_mean() -> None:
    """A misspelt key is reported at its own line, with the nearest valid key."""
    text = MINIMAL.replace("    model: claude-sonnet-4-5\n", "    model: m\n    tiemout: 3s\n")
    assert problems(text) == [
        "routes.yaml:6: endpoints.claude.tiemout: unknown key (did you mean 'timeout'?)"
    ]


def test_unknown_key_without_a_close_match_lists_the_valid_ones() -> None:
    """With no near miss, the message lists the keys that are allowed there."""
    [message] = problems(MINIMAL.replace("  chat:\n", "  chat:\n    colour: blue\n"))
    assert message == (
        "routes.yaml:8: routes.chat.colour: unknown key (valid keys: endpoints, deadline, "
        "cache, on_interrupt, timeout, retry, breaker)"
    )


def test_wrong_type_mapping_expected() -> None:
    """A list where a mapping belongs says so in plain words."""
    assert problems(
        MINIMAL.replace("routes:\n  chat:\n    endpoints: [claude]\n", "routes: [chat]\n")
    ) == ["routes.yaml:6: routes: expected a mapping, got a list"]


def test_wrong_type_integer_expected() -> None:
    """A word where an integer belongs quotes the word, without pydantic's jargon."""
    [message] = problems(MINIMAL + "defaults:\n  retry:\n    attempts: abc\n")
    assert message == "routes.yaml:11: defaults.retry.attempts: expected an integer, got 'abc'"
    assert "Input should" not in message
    assert "input_type" not in message
    assert "http" not in message


@pytest.mark.parametrize(("value", "shown"), [("0s", "'0s'"), ("-1", "-1"), ("0", "0")])
def test_zero_or_negative_duration(value: str, shown: str) -> None:
    """Durations must be positive."""
    text = MINIMAL.replace(
        "    endpoints: [claude]\n", f"    endpoints: [claude]\n    deadline: {value}\n"
    )
    assert problems(text) == [
        f"routes.yaml:9: routes.chat.deadline: must be a positive duration, got {shown}"
    ]


def test_malformed_duration_exact_message() -> None:
    """The documented example message, word for word."""
    text = MINIMAL.replace(
        "    model: claude-sonnet-4-5\n", "    model: m\n    timeout:\n      read: 3x\n"
    )
    assert problems(text) == [
        "routes.yaml:7: endpoints.claude.timeout.read: '3x' is not a duration (use 250ms, 3s, "
        "1.5m, 1h)"
    ]


def test_unknown_provider_lists_valid_ones() -> None:
    """An unknown provider names the valid providers."""
    assert problems(MINIMAL.replace("provider: anthropic", "provider: openai")) == [
        "routes.yaml:4: endpoints.claude.provider: unknown provider 'openai'; valid: "
        "anthropic, litellm"
    ]


def test_endpoint_without_model() -> None:
    """A missing required key is reported at its parent's line with its full path."""
    assert problems(MINIMAL.replace("    model: claude-sonnet-4-5\n", "")) == [
        "routes.yaml:3: endpoints.claude.model: required, but missing"
    ]


def test_route_without_endpoints() -> None:
    """A route with no endpoint list, and one with an empty list, are both errors."""
    assert problems(MINIMAL.replace("    endpoints: [claude]\n", "    deadline: 10s\n")) == [
        "routes.yaml:7: routes.chat.endpoints: required, but missing"
    ]
    assert problems(MINIMAL.replace("[claude]", "[]")) == [
        "routes.yaml:8: routes.chat.endpoints: must name at least one endpoint"
    ]


def test_route_naming_an_unknown_endpoint() -> None:
    """A route's unknown endpoint is reported at the list item, with a did-you-mean."""
    text = MINIMAL.replace(
        "    endpoints: [claude]", "    endpoints:\n      - claude\n      - claud"
    )
    assert problems(text) == [
        "routes.yaml:10: routes.chat.endpoints.1: unknown endpoint 'claud' (did you mean 'claude'?)"
    ]


def test_route_listing_an_endpoint_twice() -> None:
    """The same endpoint twice in one route is an error at the second mention."""
    text = MINIMAL.replace(
        "    endpoints: [claude]", "    endpoints:\n      - claude\n      - claude"
    )
    assert problems(text) == [
        "routes.yaml:10: routes.chat.endpoints.1: endpoint 'claude' is listed twice (first as "
        "item 1)"
    ]


def test_duplicate_keys_reported_at_second_occurrence() -> None:
    """PyYAML would silently keep the last of two equal keys; here it is an error."""
    text = MINIMAL.replace("    model: claude-sonnet-4-5\n", "    model: a\n    model: b\n")
    assert problems(text) == [
        "routes.yaml:6: endpoints.claude.model: duplicate key (first set on line 5)"
    ]


def test_duplicate_top_level_key() -> None:
    """Duplicates are caught at every level, the top one included."""
    assert problems(MINIMAL + "routes: {}\n") == [
        "routes.yaml:9: routes: duplicate key (first set on line 6)"
    ]


def test_unset_env_var_names_only_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable is named; no other environment value ever appears."""
    monkeypatch.delenv("FAILOVER_TEST_UNSET", raising=False)
    monkeypatch.setenv("FAILOVER_TEST_SENTINEL", "sentinel-value-XYZZY")
    text = MINIMAL.replace(
        "    model: claude-sonnet-4-5\n",
        "    model: claude-sonnet-4-5\n    api_key: ${FAILOVER_TEST_UNSET}\n",
    )
    with pytest.raises(PolicyError) as info:
        load(text)
    assert [str(i) for i in info.value.issues] == [
        "routes.yaml:6: endpoints.claude.api_key: environment variable FAILOVER_TEST_UNSET is not "
        "set (set it, or write ${FAILOVER_TEST_UNSET:-default})"
    ]
    assert "XYZZY" not in str(info.value)
    assert "XYZZY" not in repr(info.value)


@pytest.mark.parametrize("rate", ["0", "1.5", "-0.1"])
def test_failure_rate_outside_zero_one(rate: str) -> None:
    """failure_rate must lie in (0, 1]."""
    text = MINIMAL + f"defaults:\n  breaker:\n    failure_rate: {rate}\n"
    assert problems(text) == [
        f"routes.yaml:11: defaults.breaker.failure_rate: must be a number in (0, 1], got {rate}"
    ]


def test_failure_rate_of_one_is_valid() -> None:
    """The upper bound is inclusive."""
    policy = load(MINIMAL + "defaults:\n  breaker:\n    failure_rate: 1\n")
    assert policy.endpoints["claude"].breaker.failure_rate == 1.0


def test_half_open_max_calls_below_one() -> None:
    """half_open_max_calls must admit at least one trial."""
    text = MINIMAL.replace("[claude]\n", "[claude]\n    breaker: {half_open_max_calls: 0}\n")
    assert problems(text) == [
        "routes.yaml:9: routes.chat.breaker.half_open_max_calls: must be at least 1, got 0"
    ]


def test_unknown_default_route() -> None:
    """default_route must name a route; a near miss is suggested."""
    assert problems(MINIMAL + "default_route: chta\n") == [
        "routes.yaml:9: default_route: unknown route 'chta' (did you mean 'chat'?)"
    ]


@pytest.mark.parametrize("version", ["2", "'1'", "1.0", "true"])
def test_unsupported_version(version: str) -> None:
    """Only `version: 1` (the integer) is accepted."""
    [message] = problems(MINIMAL.replace("version: 1", f"version: {version}"))
    assert message.startswith("routes.yaml:1: version: unsupported version ")


def test_missing_version() -> None:
    """A policy without a version is also "unsupported version", reported at line 1."""
    assert problems("# no version\n" + MINIMAL.replace("version: 1\n", "")) == [
        "routes.yaml:2: version: unsupported version: 'version' is missing (add version: 1 at "
        "the top)"
    ]


def test_unknown_backend_schemes() -> None:
    """cache and state backends with an unknown scheme both fail, passwords masked."""
    text = (
        MINIMAL
        + "cache: {backend: 'postgres://u:hunter2@db/x'}\nstate:\n  backend: sqlite:///s.db\n"
    )
    with pytest.raises(PolicyError) as info:
        load(text)
    assert [str(i) for i in info.value.issues] == [
        "routes.yaml:9: cache.backend: unknown backend scheme 'postgres' in "
        "'postgres://u:***@db/x' (use memory, sqlite:///path.db or a redis://, rediss://, "
        "redis+sentinel://, redis+cluster:// or unix:// URL)",
        "routes.yaml:11: state.backend: unknown backend scheme 'sqlite' in 'sqlite:///s.db' "
        "(use memory or a redis://, rediss://, redis+sentinel://, redis+cluster:// or unix:// "
        "URL)",
    ]
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://localhost:99999/0", "the port must be 1 to 65535"),
        ("redis://localhost:6379/x", "the database must be a non-negative integer, got 'x'"),
        ("redis://localhost:6379/-1", "the database must be a non-negative integer"),
        ("redis:///0", "has no host"),
    ],
)
def test_bad_redis_urls(url: str, fragment: str) -> None:
    """Redis URLs are parsed: port and database number are checked."""
    [message] = problems(MINIMAL + f"state: {{backend: '{url}'}}\n")
    assert message.startswith("routes.yaml:9: state.backend: ")
    assert fragment in message


def test_missing_file_is_a_distinct_policy_error() -> None:
    """A missing file raises PolicyFileNotFound: both a PolicyError and a FileNotFoundError."""
    with pytest.raises(PolicyFileNotFound) as info:
        Policy.from_yaml("nope.yaml")
    assert isinstance(info.value, PolicyError)
    assert isinstance(info.value, FileNotFoundError)
    assert str(info.value) == "nope.yaml: no such file"
    assert info.value.issues == (PolicyIssue("nope.yaml", None, "", "no such file"),)


def test_several_errors_at_once_sorted_by_line() -> None:
    """Every problem of a file is reported in one PolicyError, in line order."""
    text = """\
    version: 1
    endpoints:
      claude:
        provider: anthropic
        model: claude-sonnet-4-5
        timeout: {read: 3x}
      gpt:
        provider: openai
    routes:
      chat:
        endpoints: [claude, gtp]
        deadline: -5s
    default_route: chat
    cache: {max_entries: 0}
    """
    assert problems(text) == [
        "routes.yaml:6: endpoints.claude.timeout.read: '3x' is not a duration (use 250ms, 3s, "
        "1.5m, 1h)",
        "routes.yaml:7: endpoints.gpt.model: required, but missing",
        "routes.yaml:8: endpoints.gpt.provider: unknown provider 'openai'; valid: anthropic, "
        "litellm",
        "routes.yaml:11: routes.chat.endpoints.1: unknown endpoint 'gtp' (did you mean 'gpt'?)",
        "routes.yaml:12: routes.chat.deadline: must be a positive duration, got '-5s'",
        "routes.yaml:14: cache.max_entries: must be at least 1, got 0",
    ]


def test_issue_path_is_the_path_as_given(tmp_path: Path) -> None:
    """Messages show the file as the user named it, not made absolute."""
    Path("conf").mkdir()
    write("version: 2\n", "conf/p.yaml")
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(Path("conf") / "p.yaml")
    assert str(info.value.issues[0]).startswith("conf/p.yaml:1: version: ")
    assert str(tmp_path) not in str(info.value)


def test_other_checks_with_lines() -> None:
    """base_url must be http(s); params may not set what failover sets; names must exist."""
    text = """\
    version: 1
    endpoints:
      claude:
        provider: anthropic
        model: m
        base_url: ftp://example.com
        params:
          temperature: 0.2
          model: other
    routes:
      chat: {endpoints: [claude], cache: {ttl: 1h, serve: always}, on_interrupt: retry}
    """
    assert problems(text) == [
        "routes.yaml:6: endpoints.claude.base_url: 'ftp://example.com' is not an http(s) URL "
        "with a host",
        "routes.yaml:9: endpoints.claude.params.model: is set by failover itself; not a param",
        "routes.yaml:11: routes.chat.cache.serve: unknown serve mode 'always'; valid: "
        "fallback, fresh",
        "routes.yaml:11: routes.chat.on_interrupt: unknown on_interrupt 'retry' (did you mean "
        "'restart'?); valid: raise, continue, restart",
    ]


def test_unreadable_yaml_values_are_reported_once() -> None:
    """An unknown tag or a self-referencing alias is one issue, not a cascade."""
    text = "version: 1\nendpoints: !env FOO\nroutes:\n  chat: &r {endpoints: [*r]}\n"
    assert problems(text) == [
        "routes.yaml:2: endpoints: cannot read this value (YAML tag '!env')",
        "routes.yaml:4: routes.chat.endpoints.0: an alias refers to the node that contains it",
    ]


def test_alias_bombs_are_refused() -> None:
    """Exponentially expanding aliases stop at a node budget instead of eating memory."""
    rows = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcdef", "bcdefg", strict=False):
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    assert problems("\n".join(rows) + "\n") == [
        "routes.yaml:1: invalid YAML: too many nodes (aliases?)"
    ]


def test_merge_keys_and_anchors_work_with_lines() -> None:
    """`<<: *base` merges; keys written locally win; errors in the anchor point at it."""
    text = """\
    version: 1
    endpoints:
      claude: &base
        provider: anthropic
        model: claude-sonnet-4-5
        timeout: {read: 10s}
      claude-eu:
        <<: *base
        base_url: https://eu.example.com
        timeout: {read: 20s}
    routes:
      chat: {endpoints: [claude, claude-eu]}
    """
    policy = load(text)
    assert policy.endpoints["claude-eu"].model == "claude-sonnet-4-5"
    assert policy.endpoints["claude-eu"].timeout.read == 20.0
    assert policy.endpoints["claude"].timeout.read == 10.0
    bad = text.replace("model: claude-sonnet-4-5", "model: 5")
    assert problems(bad) == [
        "routes.yaml:5: endpoints.claude.model: expected a string, got 5",
        "routes.yaml:5: endpoints.claude-eu.model: expected a string, got 5",
    ]


# --- from_dict ----------------------------------------------------------------------------


def test_from_dict_same_validation_without_lines() -> None:
    """from_dict applies the same checks; issues carry the key path (and source if given)."""
    bad = data(routes={"chat": {"endpoints": ["claud"], "deadline": "3x"}})
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(bad)
    # No lines to sort by: schema errors first, then the cross-reference checks.
    assert [str(i) for i in info.value.issues] == [
        "routes.chat.deadline: '3x' is not a duration (use 250ms, 3s, 1.5m, 1h)",
        "routes.chat.endpoints.0: unknown endpoint 'claud' (did you mean 'claude'?)",
    ]
    with pytest.raises(PolicyError) as named:
        Policy.from_dict(data(version=3), source="inline")
    assert (
        str(named.value)
        == "inline: version: unsupported version 3 (this failover reads version: 1)"
    )


def test_from_dict_equals_from_yaml() -> None:
    """The same policy as YAML and as a dict gives equal Policy objects."""
    assert Policy.from_dict(data()) == load(MINIMAL)


def test_from_dict_rejects_non_string_names_and_odd_inputs() -> None:
    """Keys that are not strings and top levels that are not mappings are PolicyErrors."""
    with pytest.raises(PolicyError, match="a name must be a string, got 3"):
        Policy.from_dict(data(endpoints={3: {"provider": "anthropic", "model": "m"}}))
    with pytest.raises(PolicyError, match="the top level must be a mapping"):
        Policy.from_dict(["version", 1])  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="the policy is empty"):
        Policy.from_dict({})


# --- defaults and merging -----------------------------------------------------------------


def test_built_in_defaults() -> None:
    """Without a defaults block, every value is the documented built-in default."""
    policy = load(MINIMAL)
    ep = policy.endpoints["claude"]
    assert ep.timeout == TimeoutPolicy(connect=3.0, read=60.0, stream_idle=30.0)
    assert ep.retry == RetryPolicy(
        attempts=2,
        backoff=BackoffPolicy(initial=0.25, max=4.0, multiplier=2.0, jitter="full"),
        max_retry_after=10.0,
    )
    assert ep.breaker == BreakerPolicy(
        failure_threshold=5,
        failure_rate=None,
        minimum_calls=20,
        window=60.0,
        slow_call=None,
        reset_timeout=30.0,
        half_open_max_calls=1,
    )
    assert ep.api_key is None
    assert ep.base_url is None
    assert dict(ep.params) == {}
    route = policy.routes["chat"]
    assert (route.deadline, route.cache, route.on_interrupt) == (90.0, None, "raise")
    assert route.timeout is None
    assert route.retry is None
    assert route.breaker is None
    assert (policy.cache.backend, policy.cache.kind, policy.cache.max_entries) == (
        "memory",
        "memory",
        10000,
    )
    assert (policy.state.backend, policy.state.kind) == ("memory", "memory")
    assert policy.default_route is None
    assert policy.source == "routes.yaml"


MERGE = """\
version: 1
defaults:
  timeout: {connect: 1s, read: 20s}
  retry: {attempts: 3, backoff: {initial: 100ms, jitter: none}}
  breaker: {failure_threshold: 4, failure_rate: 0.5, slow_call: 10s}
endpoints:
  a:
    provider: anthropic
    model: m
    timeout: {read: 30s}
    retry: {backoff: {max: 2s}}
    breaker: {failure_rate: null}
  b:
    provider: litellm
    model: openai/x
routes:
  chat:
    endpoints: [a, b]
    timeout: {connect: 500ms}
    retry: {attempts: 1, backoff: {initial: 50ms}}
    breaker: {window: 10s}
  plain:
    endpoints: [b]
"""


def test_defaults_merge_over_built_ins_field_by_field() -> None:
    """defaults: replaces only the keys it writes; the rest keep their built-in value."""
    b = load(MERGE).endpoints["b"]
    assert b.timeout == TimeoutPolicy(connect=1.0, read=20.0, stream_idle=30.0)
    assert (b.retry.attempts, b.retry.max_retry_after) == (3, 10.0)
    assert b.retry.backoff == BackoffPolicy(initial=0.1, max=4.0, multiplier=2.0, jitter="none")
    assert (b.breaker.failure_threshold, b.breaker.failure_rate, b.breaker.slow_call) == (
        4,
        0.5,
        10.0,
    )
    assert b.breaker.minimum_calls == 20


def test_endpoint_overrides_defaults_field_by_field() -> None:
    """An endpoint block wins over defaults for its keys only, nested backoff included."""
    a = load(MERGE).endpoints["a"]
    assert a.timeout == TimeoutPolicy(connect=1.0, read=30.0, stream_idle=30.0)
    assert a.retry.attempts == 3
    assert a.retry.backoff == BackoffPolicy(initial=0.1, max=2.0, multiplier=2.0, jitter="none")
    assert a.breaker.failure_rate is None  # null switches the defaults' rate off
    assert a.breaker.slow_call == 10.0
    assert a.breaker.failure_threshold == 4


def test_route_overrides_endpoint_in_effective() -> None:
    """effective(): built-in < defaults < endpoint < route, key by key."""
    policy = load(MERGE)
    timeout, retry, breaker = policy.effective("chat", "a")
    assert timeout == TimeoutPolicy(connect=0.5, read=30.0, stream_idle=30.0)
    assert retry.attempts == 1
    assert retry.backoff == BackoffPolicy(initial=0.05, max=2.0, multiplier=2.0, jitter="none")
    assert breaker.window == 10.0
    assert breaker.failure_rate is None
    assert breaker.failure_threshold == 4
    # A route without overrides gets the endpoint's own settings, the same objects.
    ep = policy.endpoints["b"]
    assert policy.effective("plain", "b") == (ep.timeout, ep.retry, ep.breaker)


def test_effective_unknown_names() -> None:
    """effective() raises RouteNotFound for a route and KeyError for an endpoint."""
    policy = load(MERGE)
    with pytest.raises(RouteNotFound):
        policy.effective("nope", "a")
    with pytest.raises(KeyError):
        policy.effective("chat", "nope")


def test_single_duration_timeout_sets_connect_and_read() -> None:
    """`timeout: 10s` means connect and read; stream_idle keeps its inherited value."""
    text = MINIMAL.replace("    model: claude-sonnet-4-5\n", "    model: m\n    timeout: 10s\n")
    text += "defaults:\n  timeout: {stream_idle: 5s}\n"
    assert load(text).endpoints["claude"].timeout == TimeoutPolicy(
        connect=10.0, read=10.0, stream_idle=5.0
    )
    bad = text.replace("timeout: 10s", "timeout: [10s]")
    assert problems(bad) == [
        "routes.yaml:6: endpoints.claude.timeout: expected a duration or a mapping, got a list"
    ]


def test_null_is_refused_where_it_cannot_mean_off() -> None:
    """`read: null` would be ambiguous; only failure_rate and slow_call accept null."""
    text = MINIMAL + "defaults:\n  timeout: {read: null}\n  retry: {backoff: null}\n"
    assert problems(text) == [
        "routes.yaml:10: defaults.timeout.read: null is not allowed here (leave the key out to "
        "inherit)",
        "routes.yaml:11: defaults.retry.backoff: null is not allowed here (leave the key out "
        "to inherit)",
    ]


def test_route_settings() -> None:
    """deadline, cache (with its defaults) and on_interrupt reach the RoutePolicy."""
    text = MINIMAL + "default_route: chat\n"
    text = text.replace(
        "[claude]\n",
        "[claude]\n    deadline: 1.5m\n    cache: {ttl: 10m}\n    on_interrupt: continue\n",
    )
    route = load(text).routes["chat"]
    assert route.deadline == 90.0
    assert route.on_interrupt == "continue"
    assert route.cache is not None
    assert (route.cache.ttl, route.cache.stale_if_error, route.cache.serve) == (
        600.0,
        86400.0,
        "fallback",
    )
    assert route.endpoints == ("claude",)


def test_backends_are_parsed() -> None:
    """Backend strings come with their kind and path or URL."""
    policy = load(
        MINIMAL
        + "cache: {backend: 'sqlite:///answers.db', max_entries: 5}\nstate: {backend: 'rediss://:pw@r:6380/2'}\n"
    )
    assert (policy.cache.kind, policy.cache.path, policy.cache.url) == (
        "sqlite",
        "answers.db",
        None,
    )
    assert (policy.state.kind, policy.state.url) == ("redis", "rediss://:pw@r:6380/2")
    assert "pw@" not in repr(policy)
    redis_cache = load(MINIMAL + "cache: {backend: 'redis://localhost'}\n").cache
    assert (redis_cache.kind, redis_cache.url, redis_cache.path) == (
        "redis",
        "redis://localhost",
        None,
    )


# --- lookups ------------------------------------------------------------------------------


def test_route_lookup() -> None:
    """route(None) uses default_route or the only route; unknown names suggest the closest."""
    single = load(MINIMAL)
    assert single.route().name == "chat"
    assert single.route("chat").name == "chat"
    with pytest.raises(RouteNotFound, match=r"unknown route 'chta' \(did you mean 'chat'\?\)"):
        single.route("chta")
    two = Policy.from_dict(
        data(routes={"chat": {"endpoints": ["claude"]}, "batch": {"endpoints": ["claude"]}})
    )
    with pytest.raises(RouteNotFound, match="no route given and the policy has no default_route"):
        two.route()
    with_default = Policy.from_dict({**two.to_dict(), "default_route": "batch"})
    assert with_default.route(None).name == "batch"


# --- env vars -----------------------------------------------------------------------------


def test_env_substitution_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR}, ${VAR:-default} (also for empty), $$ escapes, and keys are left alone."""
    monkeypatch.setenv("FO_MODEL", "claude-x")
    monkeypatch.setenv("FO_EMPTY", "")
    monkeypatch.delenv("FO_UNSET", raising=False)
    policy = Policy.from_dict(
        data(
            endpoints={
                "claude": {
                    "provider": "anthropic",
                    "model": "${FO_MODEL}",
                    "base_url": "${FO_UNSET:-https://gw.example.com}",
                    "params": {"stop": ["$$HOME", "${FO_EMPTY:-none}", "a$b"], "${FO_MODEL}": 1},
                }
            },
        )
    )
    ep = policy.endpoints["claude"]
    assert ep.model == "claude-x"
    assert ep.base_url == "https://gw.example.com"
    assert dict(ep.params) == {"stop": ["$HOME", "none", "a$b"], "${FO_MODEL}": 1}


def test_env_substitution_gives_numbers_and_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Substituted strings still validate as integers, numbers and durations."""
    monkeypatch.setenv("FO_ATTEMPTS", "4")
    text = (
        MINIMAL
        + "defaults:\n  retry: {attempts: '${FO_ATTEMPTS}', max_retry_after: '${FO_X:-2s}'}\n"
    )
    retry = load(text).endpoints["claude"].retry
    assert (retry.attempts, retry.max_retry_after) == (4, 2.0)


def test_malformed_reference() -> None:
    """`${` without a proper name and closing brace is an error, not left as text."""
    [message] = problems(MINIMAL.replace("model: claude-sonnet-4-5", "model: ${oops"))
    assert message.startswith("routes.yaml:5: endpoints.claude.model: malformed ${...} reference")


# --- secrets ------------------------------------------------------------------------------


def test_secret_type() -> None:
    """Secret masks itself everywhere except reveal(); equality and hashing use the value."""
    secret = Secret(SECRET)
    assert repr(secret) == "Secret('***')"
    assert str(secret) == "***"
    assert f"{secret}" == "***"
    assert secret.reveal() == SECRET
    assert secret == Secret(SECRET, reference="${K}")
    assert secret != Secret("other")
    assert len({secret, Secret(SECRET)}) == 1
    assert secret != SECRET  # never equal to the bare string: no accidental comparisons
    assert pickle.loads(pickle.dumps(secret)).reveal() == SECRET
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]


SECRET_CASES = [
    # (extra endpoint lines, extra top-level lines) that make the policy invalid
    ("    timeout: {read: 3x}\n", ""),
    ("    provider2: x\n", ""),
    ("", "default_route: nope\n"),
    ("    api_kye: other\n", "version: 1\n"),
]


@pytest.mark.parametrize(("endpoint_extra", "top_extra"), SECRET_CASES)
@pytest.mark.parametrize("via_env", [False, True])
def test_key_never_in_errors(
    monkeypatch: pytest.MonkeyPatch, endpoint_extra: str, top_extra: str, via_env: bool
) -> None:
    """An api_key, literal or from ${VAR}, never appears in a PolicyError."""
    monkeypatch.setenv("FO_KEY", SECRET)
    key = "${FO_KEY}" if via_env else SECRET
    text = (
        MINIMAL.replace(
            "    model: claude-sonnet-4-5\n", f"    model: m\n    api_key: {key}\n{endpoint_extra}"
        )
        + top_extra
    )
    with pytest.raises(PolicyError) as info:
        load(text)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert all(SECRET not in repr(issue) for issue in info.value.issues)


@pytest.mark.parametrize(
    "bad_key", ["12345678901", "[sk-ant-SECRET123]", "{k: sk-ant-SECRET123}", "''"]
)
def test_wrong_api_key_values_are_not_echoed(bad_key: str) -> None:
    """A malformed api_key is described by its type only."""
    text = MINIMAL.replace(
        "    model: claude-sonnet-4-5\n", f"    model: m\n    api_key: {bad_key}\n"
    )
    [message] = problems(text)
    assert message.startswith("routes.yaml:6: endpoints.claude.api_key: ")
    assert "12345678901" not in message
    assert SECRET not in message


def test_key_never_in_repr_or_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr(), model_dump and to_dict() mask literal keys; references stay references."""
    monkeypatch.setenv("FO_KEY", SECRET)
    policy = Policy.from_dict(
        data(
            endpoints={
                "lit": {"provider": "anthropic", "model": "m", "api_key": SECRET},
                "env": {"provider": "litellm", "model": "o/x", "api_key": "${FO_KEY}"},
            },
            routes={"chat": {"endpoints": ["lit", "env"]}},
        )
    )
    assert policy.endpoints["lit"].api_key is not None
    assert policy.endpoints["lit"].api_key.reveal() == SECRET
    assert policy.endpoints["env"].api_key == Secret(SECRET)
    for text in (
        repr(policy),
        str(policy),
        json.dumps(policy.to_dict()),
        policy.endpoints["lit"].model_dump_json(),
    ):
        assert SECRET not in text
    dumped = policy.to_dict()
    assert dumped["endpoints"]["lit"]["api_key"] == "***"
    fallback = Policy.from_dict(
        data(
            endpoints={
                "c": {"provider": "anthropic", "model": "m", "api_key": "${FO_NO:-" + SECRET + "}"}
            },
            routes={"chat": {"endpoints": ["c"]}},
        )
    )
    assert fallback.to_dict()["endpoints"]["c"]["api_key"] == "***"
    assert dumped["endpoints"]["env"]["api_key"] == "${FO_KEY}"
    assert policy.to_dict(reveal=True)["endpoints"]["lit"]["api_key"] == SECRET


# --- dumping and identity -----------------------------------------------------------------


def test_to_dict_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """to_dict() loads back to an equal policy, `$` in values included."""
    monkeypatch.setenv("FO_KEY", SECRET)
    text = MERGE.replace(
        "    model: m\n", "    model: 'cost$$5'\n    api_key: ${FO_KEY}\n    params: {p: '$$x'}\n"
    )
    text += "default_route: chat\ncache: {backend: 'sqlite:///c.db'}\n"
    policy = load(text)
    assert policy.endpoints["a"].model == "cost$5"
    again = Policy.from_dict(policy.to_dict())
    assert again == policy
    assert hash(again) == hash(policy)
    assert again.effective("chat", "a") == policy.effective("chat", "a")
    assert again.routes["chat"].breaker == BreakerOverride(window=10.0)
    assert json.loads(json.dumps(policy.to_dict())) == policy.to_dict()


def test_frozen_and_hashable() -> None:
    """Policies are immutable; every part hashes, so the router can key on them."""
    policy = load(MERGE)
    with pytest.raises(ValueError):
        policy.default_route = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.endpoints["x"] = policy.endpoints["a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.endpoints["a"].params["x"] = 1  # type: ignore[index]
    assert {policy.endpoints["a"].breaker: 1}[policy.endpoints["a"].breaker] == 1
    assert len({policy, load(MERGE)}) == 1
    assert hash(policy.routes["chat"]) == hash(load(MERGE).routes["chat"])


def test_override_equality_sees_explicit_null() -> None:
    """`failure_rate: null` (off) and an absent failure_rate (inherit) are different overrides."""
    assert BreakerOverride(failure_rate=None) != BreakerOverride()
    assert TimeoutOverride.model_validate("2s") == TimeoutOverride(connect=2.0, read=2.0)


def test_models_accept_seconds_and_duration_strings() -> None:
    """Other modules build policy blocks directly, from floats or duration strings."""
    assert TimeoutPolicy(connect="250ms", read=1, stream_idle=2.5) == TimeoutPolicy(  # type: ignore[arg-type]
        connect=0.25, read=1.0, stream_idle=2.5
    )
    ep = EndpointPolicy(name="x", provider="anthropic", model="m", params={"a": 1})
    assert ep.params["a"] == 1
    assert ep.timeout == TimeoutPolicy()


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("3s", 3.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        (2, 2.0),
        (0.5, 0.5),
        ("7", 7.0),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    """The documented duration forms, and bare numbers of seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad",
    ["3x", "3 s", "1e3s", "", "-1s", 0, -2, True, None, [], float("inf"), float("nan"), 10**400],
)
def test_parse_duration_rejects(bad: object) -> None:
    """Malformed, non-positive and non-finite durations raise ValueError."""
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (3.0, "3s"), (90.0, "90s"), (600.0, "10m"), (3600.0, "1h"), (1.5, "1.5s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    """Durations print the way a policy would write them."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- schema and imports -------------------------------------------------------------------


def test_json_schema() -> None:
    """A draft 2020-12 schema with a description on every property and duration patterns."""
    schema = Policy.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["version", "endpoints", "routes"]

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                assert prop.get("description"), f"{where}.{name} has no description"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(schema, "$")
    deadline = schema["$defs"]["RouteSpec"]["properties"]["deadline"]
    assert {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)?$"} in deadline["anyOf"]


def test_json_schema_accepts_the_example() -> None:
    """The shipped example validates against the schema (when jsonschema is installed)."""
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    example = Path(__file__).resolve().parents[1] / "routes.example.yaml"
    jsonschema.validate(yaml.safe_load(example.read_text()), Policy.json_schema())


def test_import_stays_light() -> None:
    """`import failover.policy._model` pulls in no provider SDK, redis, pybreaker or tenacity."""
    code = (
        "import sys, failover.policy._model; "
        "heavy = ('anthropic', 'litellm', 'redis', 'pybreaker', 'tenacity'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- observability: the listeners a Router gets from its policy ---------------------------


def test_observability_mistakes_are_reported_at_their_lines() -> None:
    """Each mistake of the section at its own line, with the file's other problems."""
    text = MINIMAL + textwrap.dedent(
        """\
        observability:
          logging: {level: loud}
          stats: {window: 3x, max_samples: 0}
          promethus: true
          otel: sure
        """
    )
    found = problems(text)
    start = MINIMAL.count("\n")
    assert found == [
        f"routes.yaml:{start + 2}: observability.logging.level: expected one of debug, info,"
        " warning, got 'loud'",
        f"routes.yaml:{start + 3}: observability.stats.window: '3x' is not a duration (use 250ms,"
        " 3s, 1.5m, 1h)",
        f"routes.yaml:{start + 3}: observability.stats.max_samples: expected a positive integer,"
        " got 0",
        f"routes.yaml:{start + 4}: observability.promethus: unknown key 'promethus' (did you mean"
        " 'prometheus'?); expected one of logging, otel, prometheus, stats, trace",
        f"routes.yaml:{start + 5}: observability.otel: expected true or false, got 'sure'",
    ]


def test_observability_section_round_trips_and_counts_in_equality() -> None:
    """The section is kept as written, read-only, and is part of the policy's identity."""
    section = {"stats": {"window": "2m"}, "logging": False}
    policy = Policy.from_dict(data(observability=section))
    assert dict(policy.observability) == section
    with pytest.raises(TypeError):
        policy.observability["otel"] = True  # type: ignore[index]
    assert Policy.from_dict(policy.to_dict()) == policy
    assert policy != Policy.from_dict(data())
    assert not Policy.from_dict(data()).observability
    reordered = Policy.from_dict(data(observability={"logging": False, "stats": {"window": "2m"}}))
    assert reordered == policy
    assert hash(reordered) == hash(policy)


def test_observability_must_be_a_mapping() -> None:
    """A section that is not a mapping is refused."""
    with pytest.raises(PolicyError, match="observability"):
        Policy.from_dict(data(observability=["stats"]))
