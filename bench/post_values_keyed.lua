-- wrk script: POST one new metric value per request (a unique metric_date each), with a
-- unique Idempotency-Key per request when KEYED=1.
-- env: TOKEN (bearer), METRIC (metric uid), BASE_DAY (day offset start), KEYED (0 or 1)
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  keyed = os.getenv("KEYED") == "1"
  base = tonumber(os.getenv("BASE_DAY") or "0")
end
local function day_to_date(n)
  -- days since 1900-01-01 to YYYY-MM-DD (the service accepts 1900..2199)
  local t = os.time{year=1900, month=1, day=1, hour=12} + n * 86400
  return os.date("!%Y-%m-%d", t)
end
function request()
  counter = counter + 1
  local n = base + tid * 50000 + counter
  local body = string.format('{"metric_uid":"%s","time_unit":"day","metric_date":"%s","value":350000000,"timezone":"America/Los_Angeles","_metadata":{"source":"bench"}}',
    os.getenv("METRIC") or "total_ar", day_to_date(n))
  local headers = {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. os.getenv("TOKEN")}
  if keyed then
    headers["Idempotency-Key"] = string.format("bench-%s-%d-%d", os.getenv("METRIC") or "", tid, counter)
  end
  return wrk.format("POST", nil, headers, body)
end
function done(summary, latency, requests)
  io.write(string.format("requests=%d p50_ms=%.2f p99_ms=%.2f rps=%.1f errors_non2xx=%d\n",
    summary.requests, latency:percentile(50)/1000, latency:percentile(99)/1000,
    summary.requests / (summary.duration/1e6), summary.errors.status))
end
