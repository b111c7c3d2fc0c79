"""A string that does not show itself: API keys live in :class:`Secret`.

Keys end up in reprs, tracebacks, log records and ``failover check`` output unless the
type itself refuses; making every printing path mask it is what keeps the guarantee
("no message, repr or log line ever contains an API key") true without vigilance
everywhere else.
"""

from __future__ import annotations

__all__ = ["Secret"]

_MASK = "***"


class Secret:
    """An API key or other credential: prints as ``***``, compares by value.

    Args:
        value: the secret itself.
        reference: the unexpanded form it was written as, such as
            ``"${ANTHROPIC_API_KEY}"``, when it came from an environment variable. It is
            not secret, and :meth:`failover.Policy.to_dict` emits it instead of the mask.
    """

    __slots__ = ("_reference", "_value")
    _value: str
    _reference: str | None

    def __init__(self, value: str, reference: str | None = None) -> None:
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_reference", reference)

    def reveal(self) -> str:
        """Return the secret value; call this only where it is handed to the SDK."""
        return self._value

    @property
    def reference(self) -> str | None:
        """The ``${VAR}`` form the value was written as, or ``None`` for a literal."""
        return self._reference

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return format(_MASK, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[type[Secret], tuple[str, str | None]]:
        # Pickling keeps the value (a process boundary, not a printout).
        return (Secret, (self._value, self._reference))
