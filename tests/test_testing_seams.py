"""The seams failover.testing gives users: a virtual clock, instant backoff, in-process adapters."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

import failover.testing
from failover import Router, Usage
from failover.providers import Provider, ProviderFailure, ProviderRequest, ProviderResult
from failover.testing import FakeProvider, Ok, Status, VirtualClock, is_testing, set_testing

from _support import make_policy

MSG = [{"role": "user", "content": "hello"}]
SLOW_BACKOFF = {"attempts": 3, "backoff": {"initial": "2s", "max": "2s", "jitter": "none"}}


@pytest.fixture(autouse=True)
def _test_mode_off() -> Iterator[None]:
    """Each test starts, and leaves the process, with test mode off."""
    set_testing(False)
    yield
    set_testing(False)


# --- the virtual clock -----------------------------------------------------------------------


def test_virtual_clock_is_exported_and_keeps_a_wall_time() -> None:
    """failover.testing.VirtualClock is the clock the Router injects, with a wall time."""
    from failover._clock import VirtualClock as Internal

    assert VirtualClock is Internal
    clock = VirtualClock(start=5.0, wall=1_000.0)
    assert (clock.monotonic(), clock.time()) == (5.0, 1_000.0)
    clock.advance(30)
    clock.sleep(2)
    assert (clock.monotonic(), clock.time()) == (37.0, 1_032.0)
    assert clock.slept == [2]


def test_virtual_clock_drives_the_breaker_through_reset_timeout(
    fakes: list[FakeProvider],
) -> None:
    """An hour-long reset_timeout passes with clock.advance, not with a real wait."""
    clock = VirtualClock()
    fakes[0].set_mode(Status(500))
    policy = make_policy(
        {f.name: f.url for f in fakes[:2]},
        retry={"attempts": 1},
        breaker={"failure_threshold": 2, "reset_timeout": "1h"},
    )
    started = time.monotonic()
    with Router.from_dict(policy, clock=clock) as router:
        for _ in range(2):
            assert router.complete(MSG).endpoint == "secondary"
        breaker = router.breaker("primary")
        assert breaker.state == "open"
        clock.advance(3599)
        assert router.complete(MSG).endpoint == "secondary"
        assert fakes[0].request_count == 2  # still open: skipped
        fakes[0].set_mode(Ok())
        clock.advance(1)  # reset_timeout has passed: the next call is the trial
        assert router.complete(MSG).endpoint == "primary"
        assert breaker.state == "closed"
    assert time.monotonic() - started < 5  # real time: a few loopback requests


def test_virtual_clock_ages_the_fallback_cache(fakes: list[FakeProvider]) -> None:
    """The cache reads the virtual clock's wall time: a stale answer expires on advance."""
    clock = VirtualClock()
    policy = make_policy({"primary": fakes[0].url}, retry={"attempts": 1})
    policy["routes"]["chat"]["cache"] = {"ttl": "1m", "stale_if_error": "1h"}
    with Router.from_dict(policy, clock=clock) as router:
        router.complete(MSG)
        fakes[0].set_mode(Status(503))
        clock.advance(3599)
        served = router.complete(MSG)
        assert served.from_cache
        assert served.cache_age == pytest.approx(3599)
        clock.advance(2)
        with pytest.raises(failover.AllEndpointsFailed):
            router.complete(MSG)


# --- test mode ---------------------------------------------------------------------------------


def test_set_testing_is_a_switch_and_a_context_manager() -> None:
    """set_testing flips the mode; used in a with block it restores the previous one."""
    assert not is_testing()
    with set_testing(True):
        assert is_testing()
        with set_testing(False):
            assert not is_testing()
        assert is_testing()
    assert not is_testing()
    set_testing(True)
    set_testing(True)  # idempotent
    assert is_testing()


def test_set_testing_skips_the_backoff_of_a_real_clock(fakes: list[FakeProvider]) -> None:
    """529 then 200 with a 2 s backoff: in test mode the retry goes out at once."""
    fakes[0].script(Status(529), Ok())
    policy = make_policy({"primary": fakes[0].url}, deadline="30s", retry=SLOW_BACKOFF)
    with set_testing(True), Router.from_dict(policy) as router:
        started = time.monotonic()
        response = router.complete(MSG)
        waited = time.monotonic() - started
    assert [(a.outcome, a.error) for a in response.attempts] == [
        ("error", "overloaded"),
        ("ok", None),
    ]
    assert waited < 1.5


async def test_set_testing_skips_the_backoff_in_async_calls(fakes: list[FakeProvider]) -> None:
    """acomplete's backoff (asleep on the real clock) is instant in test mode too."""
    fakes[0].script(Status(529), Status(529), Ok())
    policy = make_policy({"primary": fakes[0].url}, deadline="30s", retry=SLOW_BACKOFF)
    set_testing(True)
    async with Router.from_dict(policy) as router:
        started = time.monotonic()
        response = await router.acomplete(MSG)
        waited = time.monotonic() - started
    assert [a.outcome for a in response.attempts] == ["error", "error", "ok"]
    assert waited < 1.5


# --- in-process adapters ---------------------------------------------------------------------


class Scripted:
    """A minimal in-process adapter: answers from a script, no sockets."""

    name = "scripted"

    def __init__(self, *script: str | ProviderFailure) -> None:
        self.script = list(script)
        self.requests: list[ProviderRequest] = []
        self.closed = 0

    def _next(self, call: ProviderRequest) -> ProviderResult:
        self.requests.append(call)
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, ProviderFailure):
            raise step
        return ProviderResult(text=step, model="scripted-1", usage=Usage(3, 1))

    def complete(self, call: ProviderRequest) -> ProviderResult:
        return self._next(call)

    async def acomplete(self, call: ProviderRequest) -> ProviderResult:
        return self._next(call)

    def stream(self, call: ProviderRequest) -> Iterator[str | ProviderResult]:
        result = self._next(call)
        yield from result.text.split(" ")
        yield result

    async def astream(self, call: ProviderRequest) -> AsyncIterator[str | ProviderResult]:
        for item in self.stream(call):
            yield item

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


def overloaded() -> ProviderFailure:
    from failover._failures import Failure

    return ProviderFailure(Failure("overloaded", status_code=529, detail="overloaded"))


def scripted_router(*adapters: Scripted, clock: VirtualClock | None = None) -> Router:
    names = [f"ep{i}" for i in range(len(adapters))]
    policy = make_policy(dict.fromkeys(names, "http://127.0.0.1:9"), retry={"attempts": 2})
    providers: dict[str, Provider] = dict(zip(names, adapters, strict=True))
    return Router.from_dict(policy, providers=providers, clock=clock or VirtualClock())


def test_an_in_process_adapter_answers_through_the_router() -> None:
    """Router(providers={...}) drives an adapter as a built-in one: request, answer, close."""
    adapter = Scripted("hi there")
    router = scripted_router(adapter)
    response = router.complete(MSG, max_tokens=16)
    assert (response.text, response.endpoint, response.model) == ("hi there", "ep0", "scripted-1")
    assert response.usage.input_tokens == 3
    (request,) = adapter.requests
    assert list(request.messages) == MSG
    assert request.params["max_tokens"] == 16
    router.close()
    assert adapter.closed == 1


def test_an_in_process_adapter_is_retried_and_failed_over_in_virtual_time() -> None:
    """An adapter's ProviderFailure is retried with backoff on the clock, then failed over."""
    clock = VirtualClock()
    first, second = Scripted(overloaded(), overloaded()), Scripted("from second")
    router = scripted_router(first, second, clock=clock)
    response = router.complete(MSG)
    assert response.endpoint == "ep1"
    assert [(a.endpoint, a.outcome) for a in response.attempts] == [
        ("ep0", "error"),
        ("ep0", "error"),
        ("ep1", "ok"),
    ]
    assert len(clock.slept) == 1  # one backoff between ep0's two tries, in virtual time


async def test_an_in_process_adapter_streams_sync_and_async() -> None:
    """Both streams relay an adapter's deltas and end with its Response."""
    router = scripted_router(Scripted("one two three", "four five"))
    with router.stream(MSG) as s:
        assert "".join(s) == "onetwothree"
    assert s.response is not None
    assert s.response.endpoint == "ep0"
    async with router.astream(MSG) as a:
        assert [d async for d in a] == ["four", "five"]
    await router.aclose()
