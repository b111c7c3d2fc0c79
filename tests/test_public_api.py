"""The public surface, pinned: a name appears in or leaves an __all__ only on purpose.

A failing test here means a public name was added or removed. If that was the intent,
update the list below and say so in CHANGELOG.md; otherwise put the name back.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "failover": [
        "AllEndpointsFailed",
        "Attempt",
        "DeadlineExceeded",
        "EndpointStatus",
        "FailoverError",
        "Finished",
        "Policy",
        "PolicyError",
        "PolicyIssue",
        "RequestError",
        "Response",
        "Restarted",
        "RouteNotFound",
        "Router",
        "StreamEvent",
        "StreamInterrupted",
        "TextDelta",
        "Thinking",
        "ThinkingDelta",
        "ToolCall",
        "ToolCallDelta",
        "ToolCallStart",
        "Usage",
        "__version__",
    ],
    "failover.testing": [
        "Blackhole",
        "CapturedRequest",
        "CutStream",
        "Echo",
        "FakeProvider",
        "FakeToolCall",
        "Latency",
        "MalformedEvent",
        "MalformedStream",
        "Mode",
        "Ok",
        "Reply",
        "Reset",
        "SchemaProblem",
        "Status",
        "StreamError",
        "Trickle",
        "VirtualClock",
        "is_testing",
        "request_problem",
        "set_testing",
    ],
    "failover.instrumentation": [
        "AttemptFinished",
        "AttemptStarted",
        "BreakerStateChanged",
        "CallFinished",
        "CallStarted",
        "DeadlineReached",
        "EndpointStats",
        "Event",
        "FailedOver",
        "JsonlTraceListener",
        "Listener",
        "LoggingListener",
        "OpenTelemetryListener",
        "PanicTrial",
        "PrometheusListener",
        "RetryScheduled",
        "ServedFromCache",
        "StatsListener",
        "listeners_from_config",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned(module: str) -> None:
    """Each public module's __all__ is exactly the reviewed list, sorted."""
    exported = importlib.import_module(module).__all__
    assert exported == sorted(exported), f"{module}.__all__ is not sorted"
    assert sorted(exported) == PUBLIC[module]


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_public_name_resolves(module: str) -> None:
    """Every name in __all__ can be imported (lazy ones included)."""
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == []


def test_the_router_takes_in_process_providers() -> None:
    """Router(..., providers=...) and clock= are keyword parameters of the public constructor."""
    import inspect

    from failover import Router

    params = inspect.signature(Router.__init__).parameters
    assert params["providers"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["clock"].kind is inspect.Parameter.KEYWORD_ONLY
