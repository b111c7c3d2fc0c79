"""The breaker's transitions as one Lua script, run atomically inside Redis.

The script applies :class:`~failover.breaker._core.BreakerCore`'s rules, line for line,
to a hash holding one breaker's state. Time is the Redis server's ``TIME`` in
milliseconds, so every process judges ``reset_timeout`` and the window on one clock.
One script with an ``op`` argument (rather than one per transition) keeps a single SHA to
load after a Redis restart, and keeps the shared helpers in one place.

Called as ``EVALSHA sha 1 KEY POLICY OP``: ``POLICY`` is the breaker's settings as
space-separated words (failure_threshold, failure_rate or -1, minimum_calls, window ms,
reset_timeout ms, half_open_max_calls, key ttl ms, trial lease ms), ``OP`` the operation
and its arguments (``acquire``, ``record GEN TRIAL FAILED``, ``release GEN TRIAL``,
``force STATE``, ``snapshot``). The answer is one string of seventeen words, read by
:func:`parse_reply`.

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

from typing import NamedTuple

from ._core import _BUCKETS, State, Transition

__all__ = ["SCRIPT", "Reply", "parse_reply"]

SCRIPT = """
-- TIME before a write needs effects replication: the default since Redis 5, asked for
-- explicitly on older servers.
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
-- Two space-separated arguments, not a dozen: each argument costs the client an encoding.
local p, a = {}, {}
for w in string.gmatch(ARGV[1], '%S+') do p[#p + 1] = w end
for w in string.gmatch(ARGV[2], '%S+') do a[#a + 1] = w end
local threshold = tonumber(p[1])
local rate = tonumber(p[2])          -- negative: no failure-rate rule
local min_calls = tonumber(p[3])
local width = tonumber(p[4]) / __BUCKETS__
local reset = tonumber(p[5])
local max_calls = tonumber(p[6])
local ttl = tonumber(p[7])
local lease = tonumber(p[8])
local op = a[1]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local s = {}
local raw = redis.call('HGETALL', key)
for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
local fresh = s.state == nil
if fresh then
  s = {state = 'closed', gen = now, cf = 0, inflight = 0, tsucc = 0, succ = 0, fail = 0,
       opened = -1, changed = now, win = '[]'}
else
  for _, f in ipairs({'gen', 'cf', 'inflight', 'tsucc', 'succ', 'fail', 'opened', 'changed'}) do
    s[f] = tonumber(s[f])
  end
end
local dirty = false
local tr_old, tr_code, tr_n1, tr_n2 = '-', '-', 0, 0

local function move(new, code, n1, n2)
  tr_old, tr_code, tr_n1, tr_n2 = s.state, code, n1 or 0, n2 or 0
  s.state = new
  s.gen = s.gen + 1
  s.inflight = 0
  s.tsucc = 0
  s.changed = now
  if new == 'open' then s.opened = now end
  if new == 'closed' then
    s.cf = 0
    s.win = '[]'
  end
  dirty = true
end

-- The window's buckets without those that fell out of it (BreakerCore's _Window._expire).
local function aged()
  local b = cjson.decode(s.win)
  local horizon = now - width * __BUCKETS__
  local first = 1
  while first <= #b and b[first] + width <= horizon do first = first + 3 end
  if first == 1 then return b end
  local kept = {}
  for i = first, #b do kept[#kept + 1] = b[i] end
  return kept
end

local function sums(b)
  local calls, failures = 0, 0
  for i = 1, #b, 3 do
    calls = calls + b[i + 1]
    failures = failures + b[i + 2]
  end
  return calls, failures
end

local admitted, trial, wcalls, wfails = 0, 0, -1, -1
if op == 'acquire' then
  if s.state == 'closed' then
    admitted = 1
    dirty = fresh  -- a new key: store the generation this permit carries
  else
    if s.state == 'open' then
      if now >= s.opened + reset then move('half_open', 'reset') end
    elseif s.inflight > 0 and s.inflight + s.tsucc >= max_calls and now >= s.changed + lease then
      move('open', 'lease', s.inflight)
    end
    if s.state == 'half_open' and s.inflight + s.tsucc < max_calls then
      s.inflight = s.inflight + 1
      admitted, trial, dirty = 1, 1, true
    end
  end
elseif op == 'record' then
  local gen, is_trial, failed = tonumber(a[2]), a[3] == '1', a[4] == '1'
  if failed then s.fail = s.fail + 1 else s.succ = s.succ + 1 end
  dirty = true
  if gen == s.gen then
    if is_trial then
      s.inflight = s.inflight - 1
      if failed then
        move('open', 'trial_failed')
      else
        s.tsucc = s.tsucc + 1
        if s.tsucc >= max_calls then move('closed', 'trials_ok', s.tsucc) end
      end
    elseif s.state == 'closed' then
      local b = aged()
      local n = #b
      if n == 0 or now >= b[n - 2] + width then
        b[n + 1], b[n + 2], b[n + 3] = now, 0, 0
        n = n + 3
      end
      b[n - 1] = b[n - 1] + 1
      if failed then b[n] = b[n] + 1 end
      s.win = cjson.encode(b)
      local calls, failures = sums(b)
      if failed then s.cf = s.cf + 1 else s.cf = 0 end
      if failed and s.cf >= threshold then
        move('open', 'threshold', s.cf)
      elseif rate >= 0 and calls >= min_calls and failures >= rate * calls then
        move('open', 'rate', failures, calls)
      end
    end
  end
elseif op == 'release' then
  if a[3] == '1' and tonumber(a[2]) == s.gen and s.state == 'half_open' then
    s.inflight = s.inflight - 1
    dirty = true
  end
elseif op == 'force' then
  if a[2] ~= s.state then move(a[2], 'forced') end
elseif op == 'snapshot' then
  wcalls, wfails = sums(aged())
end

if dirty then
  redis.call('HSET', key, 'state', s.state, 'gen', s.gen, 'cf', s.cf, 'inflight', s.inflight,
    'tsucc', s.tsucc, 'succ', s.succ, 'fail', s.fail, 'opened', s.opened,
    'changed', s.changed, 'win', s.win)
  redis.call('PEXPIRE', key, ttl)
end
-- One string, not an array: the client reads one reply instead of seventeen.
return table.concat({s.state, s.gen, now, s.opened, s.cf, s.inflight, s.tsucc, s.succ, s.fail,
  wcalls, wfails, admitted, trial, tr_old, tr_code, tr_n1, tr_n2}, ' ')
""".replace("__BUCKETS__", str(_BUCKETS))


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
