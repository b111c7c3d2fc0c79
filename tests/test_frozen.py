"""The cheaper __init__ of the result types: still frozen dataclasses in every way."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from failover import Attempt, Response, Usage
from failover._frozen import fast_init

_MISSING = dataclasses.MISSING


def _response(**changes: Any) -> Response:
    fields: dict[str, Any] = {
        "text": "hi",
        "endpoint": "a",
        "provider": "anthropic",
        "model": "m",
        "attempts": (Attempt("a", "ok", latency=0.1),),
        "latency": 0.2,
        "usage": Usage(3, 4),
    }
    return Response(**{**fields, **changes})


@pytest.mark.parametrize("cls", [Response, Attempt, Usage])
def test_signature_and_defaults_are_the_dataclasses_own(cls: type) -> None:
    generated = inspect.signature(dataclasses.dataclass(frozen=True)(_plain_copy(cls)).__init__)
    ours = inspect.signature(cls.__init__)
    assert [(p.name, p.kind, p.annotation) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.annotation) for p in generated.parameters.values()
    ]
    factories = {f.name for f in dataclasses.fields(cls) if f.default_factory is not _MISSING}
    for name, param in ours.parameters.items():
        if name not in factories:  # a factory's default is a sentinel, in either
            assert param.default == generated.parameters[name].default, name


def _plain_copy(cls: type) -> type:
    """The class as @dataclass alone would have made it (its own generated __init__)."""
    namespace = {
        "__annotations__": dict(cls.__annotations__),
        "__module__": cls.__module__,
    }
    for field in dataclasses.fields(cls):
        namespace[field.name] = dataclasses.field(
            default=field.default,
            default_factory=field.default_factory,
            repr=field.repr,
            compare=field.compare,
        )
    return type(cls.__name__, (), namespace)


def test_frozen_equal_hashable_and_replaceable() -> None:
    resp = _response()
    with pytest.raises(dataclasses.FrozenInstanceError):
        resp.text = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        resp.usage.input_tokens = 1  # type: ignore[misc]
    assert resp == _response()
    assert resp != _response(text="other")
    assert resp == _response(raw=object())  # raw is compare=False
    assert hash(Usage(1, 2)) == hash(Usage(1, 2))
    assert dataclasses.replace(resp, text="new").text == "new"
    assert dataclasses.asdict(resp)["usage"] == {
        "input_tokens": 3,
        "output_tokens": 4,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert "raw" not in repr(resp)
    assert "text='hi'" in repr(resp)


def test_defaults_and_default_factory() -> None:
    resp = Response("t", "e", "p", "m")
    assert resp.attempts == ()
    assert resp.from_cache is False
    assert resp.cache_age is None
    assert resp.usage == Usage()
    assert resp.usage is not Response("t", "e", "p", "m").usage  # a factory, not shared
    assert Attempt("e", "skipped").error is None


def test_pickle_and_copy_round_trip() -> None:
    resp = _response()
    assert pickle.loads(pickle.dumps(resp)) == resp
    assert copy.deepcopy(resp) == resp


def test_fast_init_refuses_what_it_does_not_handle() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    @dataclasses.dataclass
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class KwOnly:
        x: int = dataclasses.field(kw_only=True, default=0)

    for cls in (Slotted, Mutable, KwOnly):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_post_init_still_runs() -> None:
    seen = []

    @fast_init
    @dataclasses.dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            seen.append(self.x)

    Checked(5)
    assert seen == [5]
