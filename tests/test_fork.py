"""A Router used before os.fork(): parent and children each get their own answers."""

from __future__ import annotations

import os
import sys

import pytest

from failover import Router
from failover.testing import FakeProvider

from _support import make_policy

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CALLS = 300


@pytest.mark.parametrize("provider", ["anthropic", "litellm"])
def test_forked_children_never_share_connections(provider: str) -> None:
    """Parent and two children, 300 calls each with their own max_tokens: no cross-talk.

    Each process asks for a different number of words of the same answer, so an answer
    read off a connection another process shares shows up as a wrong length (or an error).
    """
    with FakeProvider(name="a", text="x " * 10) as fake:
        url = fake.url if provider == "anthropic" else fake.openai_url
        policy = make_policy({"a": url}, providers={"a": provider})
        with Router.from_dict(policy) as router:
            assert router.complete([{"role": "user", "content": "hi"}], max_tokens=2).text
            children = []
            for tag in (3, 5):
                pid = os.fork()
                if pid == 0:  # the child: exit code = wrong answers (capped)
                    code = 1
                    try:
                        code = min(_run_words(router, tag), 100)
                    finally:
                        sys.stdout.flush()
                        os._exit(code)
                children.append(pid)
            wrong_parent = _run_words(router, 7)
            codes = [os.waitpid(pid, 0)[1] for pid in children]
    assert wrong_parent == 0
    assert [os.waitstatus_to_exitcode(c) for c in codes] == [0, 0]


def _run_words(router: Router, tag: int) -> int:
    """CALLS calls asking max_tokens=tag of a 10-word answer: each must have tag words."""
    wrong = 0
    for _ in range(CALLS):
        try:
            resp = router.complete([{"role": "user", "content": "hi"}], max_tokens=tag)
        except Exception:
            wrong += 1
            continue
        wrong += len(resp.text.split()) != tag
    return wrong


def test_a_lock_held_at_the_fork_is_not_held_in_the_child() -> None:
    """Breaker stores and retry budgets get fresh locks in a forked child, so a lock
    another thread held at the fork cannot wedge the child's first call."""
    from failover import _fork
    from failover._clock import VirtualClock
    from failover._retry import RetryBudget
    from failover.breaker._breaker import MemoryBreakerStore
    from failover.breaker._core import BreakerSettings

    store = MemoryBreakerStore(BreakerSettings(), VirtualClock())
    budget = RetryBudget()
    store._lock.acquire()
    budget._lock.acquire()
    _fork.after_fork_in_child()  # what os.register_at_fork runs in the child
    assert store.acquire().admitted
    budget.called(0.0)
    assert budget.spend(0.0)
