-- failover's breaker transitions, run atomically inside Redis (see _redis_lua.py).
-- EVALSHA sha 1 KEY POLICY OP [BATCH]: BATCH is "GEN N STALE", closed-state successes
-- this process counted locally since its last script run (N for generation GEN, STALE
-- for older ones), applied before OP as N successive successes would be.
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

-- n closed-state outcomes, all failed or all succeeded: the window, the consecutive
-- failures and the two opening rules (BreakerCore.record after the trial branch).
local function closed_outcome(n, failed)
  local b = aged()
  local k = #b
  if k == 0 or now >= b[k - 2] + width then
    b[k + 1], b[k + 2], b[k + 3] = now, 0, 0
    k = k + 3
  end
  b[k - 1] = b[k - 1] + n
  if failed then b[k] = b[k] + n end
  s.win = cjson.encode(b)
  local calls, failures = sums(b)
  if failed then s.cf = s.cf + n else s.cf = 0 end
  if failed and s.cf >= threshold then
    move('open', 'threshold', s.cf)
  elseif rate >= 0 and calls >= min_calls and failures >= rate * calls then
    move('open', 'rate', failures, calls)
  end
end

-- Successes batched by the caller (closed state only): before the op, in their order.
if ARGV[3] then
  local g, n, stale = string.match(ARGV[3], '^(%S+) (%S+) (%S+)$')
  g, n, stale = tonumber(g), tonumber(n), tonumber(stale)
  s.succ = s.succ + n + stale
  dirty = true
  if n > 0 and g == s.gen and s.state == 'closed' then closed_outcome(n, false) end
end

local admitted, trial, wcalls, wfails = 0, 0, -1, -1
if op == 'acquire' then
  if s.state == 'closed' then
    admitted = 1
    dirty = dirty or fresh  -- a new key: store the generation this permit carries
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
      closed_outcome(1, failed)
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
