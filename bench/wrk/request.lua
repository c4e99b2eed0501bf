-- One wrk script for every measured route, configured by environment variables:
--   BENCH_KEY      the API key (Authorization: Bearer)
--   BENCH_METHOD   GET, PUT or POST (default GET)
--   BENCH_PATH     the path; "{id}" becomes a random id in [BENCH_ID_MIN, BENCH_ID_MAX]
--   BENCH_BODY     a JSON body; "{id}" as above, "{n}" a value unique to the request
--   BENCH_ACCEPT   the Accept header (default application/json)
--   BENCH_RATE     total requests per second to pace at (0 or unset: as fast as possible)
--   BENCH_RUN      a tag unique to the run, part of "{n}"
--   BENCH_IDEMPOTENT  1: every request carries an Idempotency-Key of its own ("{n}")
-- Pacing: each wrk thread hands out send slots BENCH_RATE / threads apart; a connection
-- waits for the next free slot before it sends (wrk's delay() hook). Latency is
-- measured by wrk from the send, as for the unpaced runs.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local method, path, body, id_min, id_max, headers, period, next_slot, run, seq, idempotent

function init(args)
  method = os.getenv("BENCH_METHOD") or "GET"
  path = os.getenv("BENCH_PATH") or "/"
  body = os.getenv("BENCH_BODY")
  if body == "" then body = nil end
  id_min = tonumber(os.getenv("BENCH_ID_MIN") or "1")
  id_max = tonumber(os.getenv("BENCH_ID_MAX") or "1")
  run = os.getenv("BENCH_RUN") or "run"
  idempotent = os.getenv("BENCH_IDEMPOTENT") == "1"
  headers = {
    ["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or ""),
    ["Accept"] = os.getenv("BENCH_ACCEPT") or "application/json",
  }
  if body then headers["Content-Type"] = "application/json" end
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  if rate > 0 then period = 1000 * nthreads / rate end
  next_slot = 0
  seq = 0
  math.randomseed(os.time() * 100 + (tid or 0))
end

function request()
  seq = seq + 1
  local id = tostring(math.random(id_min, id_max))
  local unique = run .. "-" .. tostring(tid or 0) .. "-" .. tostring(seq)
  local p = path:gsub("{id}", id)
  local b = nil
  if body then b = body:gsub("{id}", id):gsub("{n}", unique) end
  if idempotent then headers["Idempotency-Key"] = unique end
  return wrk.format(method, p, headers, b)
end

if os.getenv("BENCH_RATE") and tonumber(os.getenv("BENCH_RATE")) > 0 then
  function delay()
    local now = now_ms()
    next_slot = math.max(next_slot + period, now)
    return math.floor(next_slot - now)
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("bench: requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout))
  io.write(string.format("bench: p50_us=%d p99_us=%d\n",
    latency:percentile(50), latency:percentile(99)))
end
