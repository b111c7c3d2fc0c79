"""Caller mistakes get a typed error naming the argument, and a generator is read once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from failover import Router
from failover.testing import FakeProvider

from _support import make_policy


def _policy(fakes: list[FakeProvider], **kwargs: Any) -> dict[str, Any]:
    return make_policy({f.name: f.url for f in fakes}, **kwargs)


@pytest.mark.parametrize(
    ("messages", "route", "names"),
    [
        ("hello", None, "messages must be a list"),
        (None, None, "messages must be a list"),
        (b"hello", None, "messages must be a list"),
        ([None], None, "messages[0] must be a mapping"),
        ([{"role": "user", "content": "hi"}, "oops"], None, "messages[1] must be a mapping"),
        ([{"role": "user", "content": "hi"}], ["chat"], "route must be a str"),
    ],
)
def test_wrong_argument_types_name_the_argument(
    fakes: list[FakeProvider], messages: Any, route: Any, names: str
) -> None:
    """complete("hello"), complete(None), complete([None]), route=[...]: a TypeError that
    says which argument, before any request or breaker count."""
    with Router.from_dict(_policy(fakes)) as router:
        with pytest.raises(TypeError, match=names.replace("[", r"\[")):
            router.complete(messages, route=route)
        with pytest.raises(TypeError, match=names.replace("[", r"\[")):
            list(router.stream(messages, route=route))
        assert all(f.request_count == 0 for f in fakes)
        assert all(s.total_failures == 0 for s in router.status())


async def test_wrong_argument_types_async(fakes: list[FakeProvider]) -> None:
    """The async twins check their arguments the same way."""
    async with Router.from_dict(_policy(fakes)) as router:
        with pytest.raises(TypeError, match="messages must be a list"):
            await router.acomplete("hello")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="route must be a str"):
            async for _ in router.astream([{"role": "user", "content": "x"}], route=1):  # type: ignore[arg-type]
                pass


def test_a_generator_of_messages_is_read_once(fakes: list[FakeProvider]) -> None:
    """Messages given as a generator reach the provider whole, and the cache key is the
    request's own: an unrelated prompt never gets another's cached answer."""
    policy = _policy(fakes)
    policy["routes"]["chat"]["cache"] = {"ttl": "1h", "stale_if_error": "1h", "serve": "fresh"}

    def prompt(text: str) -> Iterator[dict[str, str]]:
        yield {"role": "user", "content": text}

    with Router.from_dict(policy) as router:
        first = router.complete(prompt("one two three"))
        assert not first.from_cache
        body = fakes[0].requests[-1].body
        assert body["messages"] == [{"role": "user", "content": "one two three"}]
        again = router.complete(prompt("one two three"))
        assert again.from_cache
        other = router.complete(prompt("something else entirely"))
        assert not other.from_cache
        assert fakes[0].requests[-1].body["messages"][0]["content"] == "something else entirely"


def test_verbose_logging_masks_url_passwords() -> None:
    """`failover complete -v` logs only logger `failover`, with URL passwords masked."""
    import logging

    from failover.cli._calls import _MaskUrls

    record = logging.LogRecord(
        "failover",
        logging.INFO,
        __file__,
        1,
        "cache at %s failed",
        ("redis://:s3cret@h:1/0",),
        None,
    )
    assert _MaskUrls().filter(record)
    assert "s3cret" not in record.getMessage()
    assert "redis://:***@h:1/0" in record.getMessage()
