-- Shared wrk hooks for myapi's bench scripts (loaded by read.lua and token.lua with dofile).
-- Counts responses by status class in every thread and prints one machine-readable
-- "RESULT key=value ..." line from done(): requests, req/s, latency percentiles in ms,
-- status counts and wrk's socket errors. Latencies are wrk's (microseconds) turned into ms.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Per-thread counters (each wrk thread has its own Lua state; done() adds them up).
s2xx = 0
s200 = 0
s503 = 0
s503_retry_after = 0
other = 0

function response(status, headers, body)
  if status == 200 then
    s200 = s200 + 1
  end
  if status >= 200 and status <= 299 then
    s2xx = s2xx + 1
  elseif status == 503 then
    s503 = s503 + 1
    for name, _ in pairs(headers) do
      if string.lower(name) == "retry-after" then
        s503_retry_after = s503_retry_after + 1
        break
      end
    end
  else
    other = other + 1
  end
end

local COUNTERS = { "s2xx", "s200", "s503", "s503_retry_after", "other" }

function done(summary, latency, requests)
  local totals = {}
  for _, name in ipairs(COUNTERS) do
    totals[name] = 0
    for _, t in ipairs(threads) do
      totals[name] = totals[name] + (t:get(name) or 0)
    end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
      .. " s2xx=%d s200=%d s503=%d s503_retry_after=%d other=%d non2xx=%d"
      .. " connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    totals.s2xx, totals.s200, totals.s503, totals.s503_retry_after, totals.other,
    totals.s503 + totals.other,
    e.connect, e.read, e.write, e.timeout))
end
