"""Shared fixtures: fake providers on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from failover.testing import FakeProvider


@pytest.fixture(scope="session", autouse=True)
def _sdks_imported() -> None:
    """Import the SDKs once, up front. A route's first call counts its SDK import against
    its deadline (as it should); deadline-bounded tests must measure calls, not imports.
    Importing here, on the main thread, also keeps imports off the litellm worker threads
    (CPython 3.11.7 can fail a compile when two threads parse source at once)."""
    import anthropic  # noqa: F401
    import litellm  # noqa: F401


@pytest.fixture
def fakes() -> Iterator[list[FakeProvider]]:
    """Three running fake providers: primary, secondary, backup."""
    providers = [FakeProvider(name=n).start() for n in ("primary", "secondary", "backup")]
    yield providers
    for provider in providers:
        provider.stop()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the test in its own directory, so `routes.yaml` is a relative path."""
    monkeypatch.chdir(tmp_path)
