"""``failover demo``: a scripted outage against local fake providers, narrated.

Three FakeProviders stand behind one route. A steady stream of calls goes through the
Router while the primary is refused, then blackholed, then recovers; each line says who
answered and what the router did on the way. No keys, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from .._events import AttemptFinished, BreakerStateChanged, Event, FailedOver
from .._router import Router
from ..testing import Blackhole, FakeProvider, Ok

__all__ = ["run"]

_PACE = 0.12  # seconds between calls


def _policy(urls: dict[str, str]) -> dict[str, Any]:
    endpoint = {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": "demo-key"}
    return {
        "version": 1,
        "defaults": {
            "timeout": {"connect": "200ms", "read": "300ms"},
            "retry": {"attempts": 2, "backoff": {"initial": "50ms", "max": "200ms"}},
            "breaker": {"failure_threshold": 3, "reset_timeout": "1.5s"},
        },
        "endpoints": {name: {**endpoint, "base_url": url} for name, url in urls.items()},
        "routes": {
            "chat": {
                "endpoints": list(urls),
                "deadline": "2s",
                "cache": {"ttl": "1h", "stale_if_error": "24h"},
            }
        },
    }


class _Narrator:
    """Collects what happened during one call, and prints breaker changes as they come."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.notes: list[str] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, BreakerStateChanged):
            self.say(f"      breaker {event.endpoint}: {event.old} -> {event.new} ({event.reason})")
        elif isinstance(event, AttemptFinished) and event.outcome != "ok":
            what = event.error if event.status_code is None else f"HTTP {event.status_code}"
            self.notes.append(f"{event.endpoint} {event.outcome}: {what}")
        elif isinstance(event, FailedOver) and event.next_endpoint:
            self.notes.append(f"-> {event.next_endpoint}")


def run(say: Callable[[str], None] = print) -> int:
    """Play the scripted outage; return the process exit status (0 when it went as planned)."""
    logging.getLogger("failover").addHandler(logging.NullHandler())
    with (
        FakeProvider(name="primary") as primary,
        FakeProvider(name="secondary") as secondary,
        FakeProvider(name="backup") as backup,
    ):
        urls = {"primary": primary.url, "secondary": secondary.url, "backup": backup.url}
        narrator = _Narrator(say)
        router = Router.from_dict(_policy(urls), listeners=[narrator])
        messages = [{"role": "user", "content": "Say hello"}]
        served: dict[str, int] = {}
        counter = 0

        def calls(n: int) -> None:
            nonlocal counter
            for _ in range(n):
                counter += 1
                narrator.notes.clear()
                started = time.monotonic()
                resp = router.complete(messages, max_tokens=32)
                ms = (time.monotonic() - started) * 1000
                who = "cache" if resp.from_cache else resp.endpoint
                served[who] = served.get(who, 0) + 1
                if resp.from_cache:
                    narrator.notes.append(
                        f"cached answer from {resp.endpoint}, {resp.cache_age:.1f} s old"
                    )
                trail = f"   [{'; '.join(narrator.notes)}]" if narrator.notes else ""
                say(f"  #{counter:<3} {who:<9} {ms:6.1f} ms  {resp.text!r}{trail}")
                time.sleep(_PACE)

        say("failover demo: route 'chat' = primary -> secondary -> backup (all local fakes)")
        router.status()  # builds the route now, so the SDK import does not time call #1
        say("breaker: opens after 3 failures, half-opens after 1.5 s; deadline 2 s per call\n")
        say("1. All healthy: the primary answers.")
        calls(4)
        say("\n2. The primary goes down (connection refused): retries, failover, breaker opens.")
        port = primary.port
        primary.stop()
        calls(6)
        say("\n3. It comes back as a blackhole (accepts, never answers): the breaker stays")
        say("   open, then one half-open trial times out at 300 ms and reopens it.")
        revived = FakeProvider(name="primary", port=port, mode=Blackhole()).start()
        calls(14)
        say("\n4. The primary recovers: the next half-open trial succeeds and closes it.")
        revived.set_mode(Ok())
        calls(12)
        say("\n5. Everything goes down. The route has a cache: the last good answer to the")
        say("   same request is served, marked as such, instead of an error.")
        for fake in (revived, secondary, backup):
            fake.stop()
        calls(5)
        router.close()
        say(
            f"\nServed: {served}. Requests seen: primary"
            f" {primary.request_count + revived.request_count}, "
            f"secondary {secondary.request_count}, backup {backup.request_count}."
        )
        ok = (
            served.get("primary", 0) >= 2
            and served.get("secondary", 0) >= 1
            and served.get("cache", 0) == 5
        )
        say("Done: no call failed, dead endpoints were skipped without a socket being opened.")
        return 0 if ok else 1
