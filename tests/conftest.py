"""Shared fixtures: fake providers on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from failover.testing import FakeProvider


@pytest.fixture
def fakes() -> Iterator[list[FakeProvider]]:
    """Three running fake providers: primary, secondary, backup."""
    providers = [FakeProvider(name=n).start() for n in ("primary", "secondary", "backup")]
    yield providers
    for provider in providers:
        provider.stop()
