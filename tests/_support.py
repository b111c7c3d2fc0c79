"""Helpers shared by the tests (importable as a plain module)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from failover import Policy, PolicyError

KEY = "sk-ant-test-SECRETKEY-0123456789"


def make_policy(
    urls: dict[str, str],
    *,
    providers: dict[str, str] | None = None,
    deadline: str = "5s",
    **defaults: Any,
) -> dict[str, Any]:
    """A one-route policy ('chat') over the given endpoint URLs, in order."""
    providers = providers or {}
    base = {
        "timeout": {"connect": "1s", "read": "2s"},
        "retry": {"attempts": 2, "backoff": {"initial": "1ms", "max": "5ms"}},
        "breaker": {"failure_threshold": 3, "reset_timeout": "30s"},
    }
    for key, value in defaults.items():
        base[key] = {**base.get(key, {}), **value}
    endpoints = {}
    for name, url in urls.items():
        provider = providers.get(name, "anthropic")
        if provider == "anthropic":
            endpoints[name] = {
                "provider": "anthropic",
                "model": "claude-test",
                "api_key": KEY,
                "base_url": url,
            }
        else:
            endpoints[name] = {
                "provider": "litellm",
                "model": "openai/fake-model",
                "api_key": KEY,
                "base_url": url,
            }
    return {
        "version": 1,
        "defaults": base,
        "endpoints": endpoints,
        "routes": {"chat": {"endpoints": list(urls), "deadline": deadline}},
    }


# --- policy files: the tests that use these run in their own directory (tmp_path) ---

# The smallest valid policy file: one endpoint, one route.
MINIMAL = """\
version: 1
endpoints:
  claude:
    provider: anthropic
    model: claude-sonnet-4-5
routes:
  chat:
    endpoints: [claude]
"""


def write(text: str, name: str = "routes.yaml") -> str:
    """Write ``text`` (dedented) to ``name`` in the current directory; its name."""
    Path(name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def load(text: str) -> Policy:
    """The policy of YAML ``text``, loaded from a file as users load it."""
    return Policy.from_yaml(write(text))


def problems(text: str) -> list[str]:
    """The issues of an invalid policy, as printed."""
    with pytest.raises(PolicyError) as info:
        load(text)
    return [str(issue) for issue in info.value.issues]


def policy_data(
    endpoint: str = "claude", model: str = "claude-sonnet-4-5", route: str = "chat", **top: Any
) -> dict[str, Any]:
    """A valid one-endpoint, one-route policy dict with top-level keys replaced."""
    base: dict[str, Any] = {
        "version": 1,
        "endpoints": {endpoint: {"provider": "anthropic", "model": model}},
        "routes": {route: {"endpoints": [endpoint]}},
    }
    base.update(top)
    return base
