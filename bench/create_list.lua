-- wrk script: alternate a create (a new metric_date each time) and a list of the same entity.
-- env: TOKEN (bearer), METRIC (metric uid). Prints one line: requests, latencies, errors.
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
local function day_to_date(n)
  local t = os.time{year=1900, month=1, day=1, hour=12} + n * 86400
  return os.date("!%Y-%m-%d", t)
end
function request()
  counter = counter + 1
  local headers = {["Content-Type"]="application/json", ["Authorization"]="Bearer " .. os.getenv("TOKEN")}
  if counter % 2 == 0 then
    return wrk.format("GET", wrk.path .. "?per_page=10", headers)
  end
  local body = string.format('{"metric_uid":"%s","metric_date":"%s","value":%d}',
    os.getenv("METRIC") or "scale", day_to_date(tid * 12000 + counter / 2), counter)
  return wrk.format("POST", nil, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("requests=%d p50_ms=%.2f p99_ms=%.2f rps=%.1f errors_non2xx=%d errors_socket=%d\n",
    summary.requests, latency:percentile(50)/1000, latency:percentile(99)/1000,
    summary.requests / (summary.duration/1e6), e.status, e.connect + e.read + e.write + e.timeout))
end
