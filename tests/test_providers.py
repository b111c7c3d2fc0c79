"""Provider adapters: closing clients of finished event loops, stream header waits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from failover import AllEndpointsFailed, Router
from failover.testing import Blackhole, FakeProvider

from _support import make_policy

MSG = [{"role": "user", "content": "hello there"}]

_TWO_LOOPS = textwrap.dedent(
    """
    import asyncio, gc, sys
    sys.path.insert(0, "tests")
    from failover import Router
    from failover.testing import FakeProvider
    from _support import make_policy

    with FakeProvider(name="a") as a, FakeProvider(name="b") as b:
        policy = make_policy({"a": a.url, "b": b.openai_url}, providers={"b": "litellm"})
        router = Router.from_dict(policy)
        async def call(route_first):
            return (await router.acomplete([{"role": "user", "content": "hi"}], max_tokens=4)).text
        for _ in range(2):
            assert asyncio.run(call(True))
        policy["routes"]["chat"]["endpoints"] = ["b"]
        router_b = Router.from_dict(policy)
        async def call_b():
            resp = await router_b.acomplete([{"role": "user", "content": "hi"}], max_tokens=4)
            return resp.text
        for _ in range(2):
            assert asyncio.run(call_b())
        router.close()
        router_b.close()
        del router, router_b
        gc.collect()
        async def later():
            await asyncio.sleep(0.05)
            gc.collect()
        asyncio.run(later())
    print("done")
    """
)


def test_close_after_two_event_loops_is_quiet() -> None:
    """Async clients of loops that asyncio.run() closed are closed without noise (-W error)."""
    env = {**os.environ, "PYTHONWARNINGS": "error", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", "-c", _TWO_LOOPS],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("done")
    for noise in (
        "Event loop is closed",
        "never retrieved",
        "ResourceWarning",
        "Exception ignored",
    ):
        assert noise not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("provider", ["anthropic", "litellm"])
def test_a_silent_primary_fails_a_stream_over_within_read(provider: str) -> None:
    """The wait for a stream's headers is bounded by read, not max(read, stream_idle)."""
    with FakeProvider(name="a", mode=Blackhole()) as a, FakeProvider(name="b") as b:
        urls = {"a": a.url, "b": b.url}
        if provider == "litellm":
            urls = {"a": a.openai_url, "b": b.openai_url}
        policy = make_policy(
            urls,
            providers={"a": provider, "b": provider},
            deadline="20s",
            timeout={"connect": "1s", "read": "300ms", "stream_idle": "10s"},
            retry={"attempts": 1},
        )
        with Router.from_dict(policy) as router:
            t0 = time.monotonic()
            with router.stream(MSG, max_tokens=8) as s:
                text = "".join(s)
            elapsed = time.monotonic() - t0
            t0 = time.monotonic()
            router.complete(MSG, max_tokens=8)
    assert text == "Hello from b"
    assert elapsed < 2.0, elapsed  # read (0.3 s) plus set-up, far from stream_idle (10 s)


def test_all_failures_use_the_router_error_types() -> None:
    """A failing stream ends in AllEndpointsFailed, never a raw SDK error."""
    with FakeProvider(name="a", mode=Blackhole()) as a:
        policy = make_policy({"a": a.url}, deadline="1s", timeout={"read": "200ms"})
        with Router.from_dict(policy) as router, pytest.raises(AllEndpointsFailed):
            "".join(router.stream(MSG, max_tokens=8))
