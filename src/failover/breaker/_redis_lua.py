"""The breaker's transitions as one Lua script, run atomically inside Redis.

The script (``breaker.lua``, a package resource) applies
:class:`~failover.breaker._core.BreakerCore`'s rules, line for line, to a hash holding one
breaker's state. Time is the Redis server's ``TIME`` in
milliseconds, so every process judges ``reset_timeout`` and the window on one clock.
One script with an ``op`` argument (rather than one per transition) keeps a single SHA to
load after a Redis restart, and keeps the shared helpers in one place.

Called as ``EVALSHA sha 1 KEY POLICY OP [BATCH]``: ``POLICY`` is the breaker's settings as
space-separated words (failure_threshold, failure_rate or -1, minimum_calls, window ms,
reset_timeout ms, half_open_max_calls, key ttl ms, trial lease ms), ``OP`` the operation
and its arguments (``acquire``, ``record GEN TRIAL FAILED``, ``release GEN TRIAL``,
``force STATE``, ``snapshot``), ``BATCH`` the closed-state successes counted locally
since the caller's last run (``GEN N STALE``: see :mod:`failover.breaker._redis`), applied
first. The answer is one string of seventeen words, read by :func:`parse_reply`.

The hash's fields: ``state``; ``gen`` (the generation, starting at the server's time in
ms when the key is made, so that a permit from before a Redis restart or an expiry never
matches a generation after it); ``cf`` (consecutive failures); ``inflight`` and
``tsucc`` (half-open trials under way and succeeded); ``succ`` and ``fail`` (totals);
``opened`` (ms, -1 if never); ``changed`` (ms of the last transition); ``win`` (the
failure-rate window as a JSON list ``[start_ms, calls, failures, ...]``).

One addition to the core's rules: a half-open breaker whose trial permits are all taken
and not returned within ``lease`` (a process crashed, or lost Redis mid-trial) reopens on
the next acquire, as if a trial had failed. Without it a lost permit would wedge the
breaker half-open for the whole fleet until the key expired.
"""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

from ._core import _BUCKETS, State, Transition

__all__ = ["SCRIPT", "Reply", "parse_reply"]

# The script lives in breaker.lua, next to this module (packaged with it), so it can be
# read, linted and diffed as Lua.
SCRIPT = (
    resources.files(__package__)
    .joinpath("breaker.lua")
    .read_text(encoding="utf-8")
    .replace("__BUCKETS__", str(_BUCKETS))
)


# The script's state words, typed (and checked: a stray word fails loudly here).
_STATES: dict[str, State] = {"closed": "closed", "open": "open", "half_open": "half_open"}


class Reply(NamedTuple):
    """What every run of the script answers: the state after the op, and what it did.

    Times are the Redis server's, in milliseconds since the Unix epoch.
    """

    state: State
    generation: int
    server_ms: int
    opened_ms: int  # -1: never opened
    consecutive_failures: int
    trials_in_flight: int
    trial_successes: int
    total_successes: int
    total_failures: int
    window_calls: int  # -1 except for "snapshot"
    window_failures: int
    admitted: bool
    trial: bool
    transition: Transition | None


def parse_reply(raw: str, *, rate: float | None, lease: float, forced_reason: str = "") -> Reply:
    """Turn the script's answer into a :class:`Reply`, wording any transition.

    Args:
        raw: the script's answer: seventeen space-separated words.
        rate: the policy's ``failure_rate``, for the wording of a rate trip.
        lease: the trial lease in seconds, for the wording of a lease expiry.
        forced_reason: the caller's reason, for a transition forced by hand.
    """
    words = raw.split(" ")
    word, gen, now, opened, cf, inflight, tsucc, succ, fail, wc, wf, adm, trial = words[:13]
    old, code, n1, n2 = words[13:17]
    state = _STATES[word]
    transition = None
    if code != "-":
        transition = Transition(_STATES[old], state, _reason(code, int(n1), int(n2), rate, lease))
        if code == "forced":
            transition = transition._replace(reason=forced_reason)
    return Reply(
        state,
        int(gen),
        int(now),
        int(opened),
        int(cf),
        int(inflight),
        int(tsucc),
        int(succ),
        int(fail),
        int(wc),
        int(wf),
        adm == "1",
        trial == "1",
        transition,
    )


def _reason(code: str, n1: int, n2: int, rate: float | None, lease: float) -> str:
    """The same words :class:`~failover.breaker._core.BreakerCore` uses for each move."""
    if code == "reset":
        return "reset timeout elapsed"
    if code == "trial_failed":
        return "a half-open trial failed"
    if code == "trials_ok":
        return f"{n1} trial(s) succeeded"
    if code == "threshold":
        return f"{n1} consecutive failures"
    if code == "rate":
        return f"failure rate {n1}/{n2} reached {rate or 0:.0%}"
    if code == "lease":
        return f"{n1} trial permit(s) not returned within {lease:g} s"
    return code
