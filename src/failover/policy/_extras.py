"""Which optional extras a policy needs that this environment lacks.

``failover check`` warns about them, so that a policy naming a ``litellm`` endpoint or a
Redis backend fails at check time with the fix, not at the first call with a raw
``ModuleNotFoundError``. Detection uses :func:`importlib.util.find_spec`, which locates a
package without importing it (importing litellm alone takes seconds).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._model import Policy

__all__ = ["MissingExtra", "missing_extras"]


@dataclass(frozen=True, slots=True)
class MissingExtra:
    """An extra the policy needs and the environment lacks.

    Attributes:
        extra: the extra's name (``litellm``, ``redis``).
        module: the module that cannot be found.
        users: what in the policy needs it (``endpoint 'gpt'``, ``state backend``).
    """

    extra: str
    module: str
    users: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{', '.join(self.users)} need(s) the {self.module!r} package, which is not "
            f"installed: pip install 'failover[{self.extra}]'"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-installed package
        return False


def missing_extras(
    policy: Policy, installed: Callable[[str], bool] | None = None
) -> list[MissingExtra]:
    """The extras ``policy`` needs that are not installed, in a stable order.

    Args:
        policy: the policy.
        installed: tells whether a module can be found; default: :func:`find_spec`.
    """
    found = installed if installed is not None else _installed
    needs: dict[tuple[str, str], list[str]] = {}
    for name, endpoint in policy.endpoints.items():
        if endpoint.provider == "litellm":
            needs.setdefault(("litellm", "litellm"), []).append(f"endpoint {name!r}")
    if policy.state.kind == "redis":
        needs.setdefault(("redis", "redis"), []).append("state backend")
    if policy.cache.kind == "redis":
        needs.setdefault(("redis", "redis"), []).append("cache backend")
    return [
        MissingExtra(extra, module, tuple(users))
        for (extra, module), users in needs.items()
        if not found(module)
    ]
