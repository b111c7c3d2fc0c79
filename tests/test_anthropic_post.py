"""A plain chat goes to Anthropic through ``client.post`` with ``messages.create``'s options.

The adapter skips ``messages.create``'s keyword checks and body assembly for a request
whose keywords are the body as it is (about 30 µs a call). These tests hold it to making
the same request as ``messages.create``: the same request options (tracing span, timeout,
response type), the same bytes on the wire, and the SDK's deprecation warning. They run
the real anthropic clients against FakeProvider on loopback.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic._data import DEPRECATED_MODELS

from failover.policy._model import EndpointPolicy
from failover.policy._secret import Secret
from failover.providers import ProviderRequest, make_provider
from failover.providers import _anthropic as adapter
from failover.testing import FakeProvider

from _support import KEY

PLAIN = [{"role": "user", "content": "hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
    }
]
# Headers that differ between any two requests, whichever way they are sent.
VOLATILE = {"idempotency-key", "traceparent"}

Seen = list[tuple[Any, Any]]


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(name="a") as f:
        yield f


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Seen:
    """For each request the adapter's clients send: the response type asked for, and the
    options as the client prepared them to build the request (its own last step)."""
    calls: Seen = []
    real = adapter._client_class

    def spying(is_async: bool) -> type[Any]:
        base = real(is_async)
        if is_async:

            class AsyncSpy(base):  # type: ignore[misc, valid-type]
                async def request(self, cast_to: Any, options: Any, **kw: Any) -> Any:
                    calls.append((cast_to, None))
                    return await super().request(cast_to, options, **kw)

                async def _prepare_options(self, options: Any) -> Any:
                    prepared = await super()._prepare_options(options)
                    calls[-1] = (calls[-1][0], prepared)
                    return prepared

            return AsyncSpy

        class Spy(base):  # type: ignore[misc, valid-type]
            def request(self, cast_to: Any, options: Any, **kw: Any) -> Any:
                calls.append((cast_to, None))
                return super().request(cast_to, options, **kw)

            def _prepare_options(self, options: Any) -> Any:
                prepared = super()._prepare_options(options)
                calls[-1] = (calls[-1][0], prepared)
                return prepared

        return Spy

    monkeypatch.setattr(adapter, "_client_class", spying)
    return calls


def _provider(fake: FakeProvider, model: str = "claude-test") -> Any:
    ep = EndpointPolicy(
        name="ep", provider="anthropic", model=model, base_url=fake.url, api_key=Secret(KEY)
    )
    return make_provider(ep)


def _call(messages: list[dict[str, Any]] = PLAIN, read: float = 30.0, **params: Any) -> Any:
    return ProviderRequest(messages, {"max_tokens": 16, **params}, 2.0, read)


def _options(options: Any) -> dict[str, Any]:
    """The request options as sent: unset values (``Omit``, ``NotGiven``, ``{}``) dropped."""

    def given(value: Any) -> bool:
        return not isinstance(value, (anthropic.Omit, anthropic.NotGiven)) and value != {}

    fields = {name: getattr(options, name) for name in type(options).model_fields}
    assert fields.pop("idempotency_key").startswith("stainless-python-retry-")  # one per request
    body = fields.pop("json_data")
    fields = {k: v for k, v in fields.items() if given(v)}
    fields["json_data"] = {k: v for k, v in body.items() if given(v)}
    return fields


def _wire(fake: FakeProvider) -> list[tuple[str, str, dict[str, str], Any]]:
    return [
        (r.method, r.path, {k: v for k, v in r.headers.items() if k not in VOLATILE}, r.body)
        for r in fake.requests
    ]


def _both(
    provider: Any, call: Any, fake: FakeProvider, seen: Seen, *, aio: bool = False
) -> tuple[dict[str, Any], Any]:
    """Send ``call`` through the adapter, then ``messages.create`` with the same keywords
    on the same client; check both made the same request; the adapter's options and
    the request as the fake received it."""
    kwargs = provider._kwargs(call)
    if aio:

        async def send() -> tuple[Any, Any]:
            ours = await provider.acomplete(call)
            theirs = await provider.aclient().messages.create(**kwargs)
            await provider.aclose()
            return ours, theirs

        ours, theirs = asyncio.run(send())
    else:
        ours = provider.complete(call)
        theirs = provider.client().messages.create(**kwargs)
    assert ours.text == theirs.content[0].text
    assert [cast_to for cast_to, _ in seen] == [anthropic.types.Message] * 2
    options = [_options(o) for _, o in seen]
    for name in options[1]:
        assert options[0].get(name) == options[1][name], name
    assert options[0].keys() == options[1].keys()
    wire = _wire(fake)
    assert wire[0] == wire[1]
    assert len(wire) == 2
    return options[0], wire[0]


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("messages", "params"),
    [
        (PLAIN, {}),
        (PLAIN, {"system": "Be brief."}),
        ([{"role": "system", "content": "Be brief."}, *PLAIN], {}),
        (
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"},
            ],
            {"max_tokens": 99},
        ),
    ],
    ids=["plain", "system", "system-message", "turns"],
)
def test_a_plain_chat_makes_the_request_messages_create_makes(
    fake: FakeProvider, seen: Seen, messages: Any, params: dict[str, Any], aio: bool
) -> None:
    provider = _provider(fake)
    options, _ = _both(provider, _call(messages, **params), fake, seen, aio=aio)
    assert options["span_name"] == "anthropic.messages.create"
    assert options["span_route"] == "/v1/messages"
    provider.close()


def test_a_cut_timeout_is_the_one_sent(fake: FakeProvider, seen: Seen) -> None:
    """A read timeout cut to the deadline's time left reaches the SDK, not the endpoint's."""
    provider = _provider(fake)
    options, _ = _both(provider, _call(read=0.75), fake, seen)
    assert options["timeout"].read == 0.75
    provider.close()


def test_other_requests_go_through_messages_create(fake: FakeProvider, seen: Seen) -> None:
    """Tools, temperature (an extra body key): messages.create assembles the body."""
    provider = _provider(fake)
    kwargs = provider._kwargs(_call(tools=TOOLS, temperature=0.5))
    assert not kwargs.keys() <= adapter._POSTED_AS_IS
    assert provider._post_options(dict(kwargs)) is None
    _, (_, _, _, body) = _both(provider, _call(tools=TOOLS, temperature=0.5), fake, seen)
    assert body["tools"][0]["name"] == "f"
    assert body["temperature"] == 0.5
    provider.close()


def test_a_deprecated_model_still_gets_the_sdk_warning(fake: FakeProvider) -> None:
    model = next(iter(DEPRECATED_MODELS))
    provider = _provider(fake, model=model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        provider.complete(_call())
    assert any(
        issubclass(w.category, DeprecationWarning) and model in str(w.message) for w in caught
    )
    provider.close()


def test_without_the_sdk_names_every_call_uses_messages_create(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SDK version without ``make_request_options`` (or the others): nothing breaks."""
    monkeypatch.setattr(adapter, "_create_options", lambda: None)
    provider = _provider(fake)
    assert provider._post is None
    assert provider.complete(_call()).text == "Hello from a"
    provider.close()
