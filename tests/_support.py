"""Helpers shared by the tests (importable as a plain module)."""

from __future__ import annotations

from typing import Any

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
