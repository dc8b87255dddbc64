-- POST unique Secret objects, stop after exactly N responses, print one JSON summary line.
--
-- wrk -t1 -c32 -d300s -s benchmarks/wrk/create.lua URL -- N THREADS PREFIX [TOKEN]
--
-- Each thread sends its share of N (names bench-PREFIX-THREAD-COUNTER, unique per run),
-- counts 2xx and non-2xx responses and stops itself at its share, printing "WRK_STOPPED".
-- wrk's main thread sleeps for the whole -d duration regardless, so the caller sends it
-- SIGINT once every thread has stopped; the rate is therefore timed here, from the first
-- request to the last response (CLOCK_MONOTONIC through LuaJIT's ffi), not by wrk.
-- done() prints "WRK_RESULT {json}" with that window, latency percentiles (microseconds)
-- and counts, which benchmarks/api_throughput.py parses.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local counter = 1

function setup(thread)
   thread:set("id", counter - 1)
   counter = counter + 1
   table.insert(threads, thread)
end

local BODY = '{"apiVersion":"cnai.io/v1alpha1","kind":"Secret",'
   .. '"metadata":{"name":"%s","namespace":"default","labels":{"app":"bench"}},'
   .. '"data":{"password":"c2VjcmV0LXZhbHVl"}}'

function init(args)
   local n, nthreads = tonumber(args[1]), tonumber(args[2])
   prefix = args[3]
   target = math.floor(n / nthreads)
   if id < n % nthreads then
      target = target + 1
   end
   sent, responses, ok2xx, non2xx, sample = 0, 0, 0, 0, ""
   first_us, last_us = 0, 0
   headers = { ["Content-Type"] = "application/json" }
   if args[4] and args[4] ~= "" then
      headers["Authorization"] = "Bearer " .. args[4]
   end
end

function request()
   if sent == 0 then
      first_us = now_us()
   end
   sent = sent + 1
   local name = string.format("bench-%s-%d-%d", prefix, id, sent)
   return wrk.format("POST", nil, headers, string.format(BODY, name))
end

function response(status, _, body)
   responses = responses + 1
   if status >= 200 and status < 300 then
      ok2xx = ok2xx + 1
   else
      non2xx = non2xx + 1
      if sample == "" then
         sample = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
   if responses == target then
      last_us = now_us()
      io.write("WRK_STOPPED\n")
      io.flush()
      wrk.thread:stop()
   end
end

local function quote(s)
   return '"' .. string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

function done(summary, latency, _)
   local resp, ok, bad, samples = 0, 0, 0, {}
   local first, last = math.huge, 0
   for _, t in ipairs(threads) do
      first = math.min(first, t:get("first_us"))
      last = math.max(last, t:get("last_us"))
      resp = resp + t:get("responses")
      ok = ok + t:get("ok2xx")
      bad = bad + t:get("non2xx")
      local s = t:get("sample")
      if s ~= "" then
         table.insert(samples, quote(s))
      end
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"window_us":%d,"duration_us":%d,"requests":%d,"responses":%d,"ok2xx":%d,"non2xx":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,'
         .. '"p999":%d},"non2xx_samples":[%s]}\n',
      last - first, summary.duration, summary.requests, resp, ok, bad,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), table.concat(samples, ",")))
end
