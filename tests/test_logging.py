"""The logging listener: what reaches logger `failover`, at which level, with which fields."""

from __future__ import annotations

import logging

import pytest

from failover import Router
from failover.testing import Blackhole, FakeProvider, Status

from _support import KEY, make_policy

MSG = [{"role": "user", "content": "twelve chars"}]


def test_info_for_timeouts_failovers_and_breaker_changes(
    fakes: list[FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    """Timeouts, failovers and breaker transitions are INFO, with request details as extra."""
    fakes[0].set_mode(Blackhole())
    policy = make_policy(
        {f.name: f.url for f in fakes},
        timeout={"read": "100ms"},
        retry={"attempts": 1},
        breaker={"failure_threshold": 1},
    )
    caplog.set_level(logging.INFO, logger="failover")
    with Router.from_dict(policy) as router:
        router.complete(MSG)
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    messages = [r.getMessage() for r in info]
    assert any("try 1: timeout" in m for m in messages)
    assert any("failing over from primary to secondary" in m for m in messages)
    assert any("breaker primary: closed -> open" in m for m in messages)
    timeout = next(r for r in info if "timeout" in r.getMessage())
    assert timeout.failover_route == "chat"  # type: ignore[attr-defined]
    assert timeout.failover_endpoint == "primary"  # type: ignore[attr-defined]
    assert timeout.failover_model == "claude-test"  # type: ignore[attr-defined]
    assert timeout.failover_retry == 0  # type: ignore[attr-defined]
    assert timeout.failover_timeout == pytest.approx(0.1)  # type: ignore[attr-defined]
    assert timeout.failover_elapsed > 0  # type: ignore[attr-defined]
    assert timeout.failover_request_chars == len("twelve chars")  # type: ignore[attr-defined]
    assert all(r.levelno != logging.DEBUG for r in caplog.records)


def test_debug_for_every_attempt_and_never_the_prompt_or_key(
    fakes: list[FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG every attempt is logged; no record holds the prompt or the key."""
    fakes[0].set_mode(Status(529))
    caplog.set_level(logging.DEBUG, logger="failover")
    with Router.from_dict(make_policy({f.name: f.url for f in fakes})) as router:
        router.complete(MSG)
    attempts = [r for r in caplog.records if hasattr(r, "failover_outcome")]
    assert [(r.failover_endpoint, r.failover_outcome) for r in attempts] == [  # type: ignore[attr-defined]
        ("primary", "error"),
        ("primary", "error"),
        ("secondary", "ok"),
    ]
    assert any("retry 1 in" in r.getMessage() for r in caplog.records)
    dump = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    assert "twelve chars" not in dump
    assert KEY not in dump


def test_each_failure_kind_logs_what_it_means(caplog: pytest.LogCaptureFixture) -> None:
    """A failed attempt's log line names its kind and says what the kind means."""
    from failover._events import AttemptFinished
    from failover._failures import KINDS, describe
    from failover.instrumentation import LoggingListener

    listener = LoggingListener()
    with caplog.at_level(logging.DEBUG, logger="failover"):
        for kind in KINDS:
            listener(AttemptFinished("chat", "a", "m", 0, "error", 0.01, 0.01, error=kind))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == len(KINDS)
    assert len({describe(k) for k in KINDS}) == len(KINDS)  # no two kinds read the same
    for kind, message in zip(KINDS, messages, strict=True):
        assert f"try 1: {kind} in 10 ms ({describe(kind)})" in message
