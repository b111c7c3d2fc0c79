"""Keys and prompts echoed by a provider never reach details, messages, logs or reprs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from failover import AllEndpointsFailed, RequestError, Router
from failover.providers._redact import redact
from failover.testing import Echo, FakeProvider

from _support import KEY, make_policy

PROMPT = "Summarise the confidential merger memo for project bluebird please"
MSG = [{"role": "user", "content": PROMPT}]


def test_redact_masks_tokens_and_cuts_request_text() -> None:
    """sk-/bearer/x-api-key tokens masked, the key masked, echoed prompt cut, kept short."""
    detail = (
        f"bad key {KEY} sk-proj-abcdef123456 Authorization: Bearer tok_abcdefghij "
        f"x-api-key: zzzzyyyyxxxx; you sent: {PROMPT}"
    )
    out = redact(detail, secrets=[KEY], texts=[PROMPT])
    for secret in (KEY, "sk-proj-abcdef123456", "tok_abcdefghij", "zzzzyyyyxxxx", "bluebird"):
        assert secret not in out
    assert len(redact("x" * 5000)) <= 200


def _leaks(text: str) -> list[str]:
    return [s for s in (KEY, PROMPT[:21], "bluebird", "merger memo") if s in text]


@pytest.mark.parametrize("provider", ["anthropic", "litellm"])
@pytest.mark.parametrize("code", [401, 400, 500])
def test_echoed_key_and_prompt_never_leak(
    provider: str, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    """An error body quoting key and prompt: absent from attempts, str(exc), repr, log extras."""
    with FakeProvider(mode=Echo(code)) as fake:
        url = fake.url if provider == "anthropic" else fake.openai_url
        policy = make_policy({"a": url}, providers={"a": provider})
        error_type = RequestError if code == 400 else AllEndpointsFailed
        with (
            caplog.at_level(logging.DEBUG, logger="failover"),
            Router.from_dict(policy) as router,
            pytest.raises(error_type) as info,
        ):
            router.complete(MSG, max_tokens=8)
        assert fake.request_count >= 1
    exc: Any = info.value
    seen = [str(exc), repr(exc)]
    seen += [a.detail + repr(a) for a in getattr(exc, "attempts", ())]
    for record in caplog.records:
        seen.append(record.getMessage())
        seen += [repr(v) for k, v in vars(record).items() if k.startswith("failover")]
    leaks = [leak for text in seen for leak in _leaks(text)]
    assert not leaks, leaks
