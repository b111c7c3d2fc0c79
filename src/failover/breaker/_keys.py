"""Redis key names for shared state, derived from what a breaker or a cache entry *is*.

A breaker's key depends on its endpoint's identity (provider, model, base URL) and the
breaker settings that define its rules, never on the rest of the policy: two versions of a
policy (a rolling deploy that adds an endpoint or a route) share every breaker they have
in common, and every cached answer. An explicit ``namespace`` (the policy's
``namespace:``) keeps fleets apart on one Redis, e.g. staging and production.

Each breaker's key carries a Redis Cluster hash tag (``{...}``) made of hex digits only,
so whatever the model name or namespace holds, every key of one breaker hashes to one
slot and the Lua script may touch them all.
"""

from __future__ import annotations

import hashlib
import json

from ..policy._model import BreakerPolicy

__all__ = ["breaker_key", "cache_prefix", "settings_fingerprint"]

_ROOT = "failover"


def _prefix(namespace: str | None) -> str:
    if not namespace:
        return f"{_ROOT}:"
    # Braces would start a hash tag of their own in Redis Cluster: keep them out.
    safe = namespace.replace("{", "(").replace("}", ")")
    return f"{_ROOT}:{safe}:"


def settings_fingerprint(policy: BreakerPolicy) -> str:
    """The breaker settings that decide transitions, as a short stable string.

    ``slow_call`` is left out: it is judged by the caller before an outcome is recorded,
    so processes that differ in it still count into one breaker.
    """
    rate = "-" if policy.failure_rate is None else repr(float(policy.failure_rate))
    return "/".join(
        (
            str(policy.failure_threshold),
            rate,
            str(policy.minimum_calls),
            repr(float(policy.window)),
            repr(float(policy.reset_timeout)),
            str(policy.half_open_max_calls),
        )
    )


def breaker_key(
    namespace: str | None,
    provider: str,
    model: str,
    base_url: str | None,
    settings_fingerprint: str,
) -> str:
    """The Redis key of one breaker, e.g. ``failover:breaker:{1f0c...}:anthropic/claude``.

    Args:
        namespace: the policy's ``namespace:``; ``None`` for the shared default.
        provider: the endpoint's provider (``anthropic``, ``litellm``).
        model: the endpoint's model.
        base_url: the endpoint's base URL, ``None`` for the provider's default.
        settings_fingerprint: :func:`settings_fingerprint` of the breaker's settings.
    """
    identity = json.dumps([provider, model, base_url or "", settings_fingerprint])
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:20]
    # The readable tail is for operators (redis-cli --scan); the digest is the identity.
    label = f"{provider}/{model}".replace("{", "(").replace("}", ")")
    return f"{_prefix(namespace)}breaker:{{{digest}}}:{label}"


def cache_prefix(namespace: str | None) -> str:
    """The prefix of cached answers' keys (the request key from ``cache_key`` follows)."""
    return f"{_prefix(namespace)}cache:"
