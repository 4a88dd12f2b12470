-- wrk script for loadtests/bench: POST /rtbs.json pings with a realistic JSON body.
--
-- BENCH_MODE=repeat  cycle through BENCH_CALLERS callers: after the first round every
--                    ping is a repeat, so the gateway answers from its shield (hit path)
-- BENCH_MODE=unique  a new caller on every request, numbered from BENCH_START (each wrk
--                    thread gets its own block of ten million), wrapping after BENCH_WRAP
--                    requests when BENCH_WRAP > 0: the forward path, and the store filler
--                    of the RSS check
--
-- done() prints one line "BENCH_RESULT {json}" that loadtests/bench.py reads.
-- Numbers are valid NANP numbers (area codes libphonenumber accepts with any exchange
-- 200-999), the same scheme as locustfile.py.

local mode = os.getenv("BENCH_MODE") or "unique"
local callers = tonumber(os.getenv("BENCH_CALLERS") or "100")
local start = tonumber(os.getenv("BENCH_START") or "0")
local wrap = tonumber(os.getenv("BENCH_WRAP") or "0")
local key = os.getenv("BENCH_RTB_KEY") or "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"
local codes = {"212", "213", "305", "312", "404", "415", "512", "617",
               "702", "713", "720", "818", "917", "206", "303"}
local headers = {["Content-Type"] = "application/json"}
local next_tid = 0
local counter = 0
local offset = 0
local prebuilt = {}

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local function caller(n)
  local area = codes[n % 15 + 1]
  local rest = math.floor(n / 15)
  return string.format("+1%s%03d%04d", area, 200 + math.floor(rest / 10000) % 800, rest % 10000)
end

local function ping(n)
  local body = string.format(
    '{"key":"%s","publisher_id":"pub_%d","caller_number":"%s","caller_zip":"%05d",' ..
    '"caller_state":"CA","utm_source":"google","utm_campaign":"medicare_q4_2026",' ..
    '"age":%d,"tcpa_consent":true}',
    key, 1000 + n % 24, caller(n), 10000 + n % 89999, 21 + n % 60)
  return wrk.format("POST", "/rtbs.json", headers, body)
end

function init(args)
  offset = start + (tid or 0) * 10000000
  if mode == "repeat" then
    for i = 0, callers - 1 do
      prebuilt[i + 1] = ping(start + i)
    end
  end
end

function request()
  if mode == "repeat" then
    counter = counter % callers + 1
    return prebuilt[counter]
  end
  local n = offset + counter
  counter = counter + 1
  if wrap > 0 and counter >= wrap then
    counter = 0
  end
  return ping(n)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
