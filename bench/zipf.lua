-- Mixed load: KEYS questions whose popularity follows Zipf's law (exponent 1.1), like real traffic.
-- Counts statuses and cache hits per thread and prints them as one JSON line at the end.
local threads = {}

setup = function(thread)
  thread:set("seed", #threads + 1)
  table.insert(threads, thread)
end

init = function(args)
  math.randomseed(os.time() * 1000 + seed)
  local n = tonumber(os.getenv("KEYS") or "5000")
  local prefix = os.getenv("PREFIX") or "mix"
  cumulative = {}
  paths = {}
  local total = 0
  for i = 1, n do
    total = total + 1 / (i ^ 1.1)
    cumulative[i] = total
    paths[i] = "/v1/convai/test-invocations?agent_id=" .. prefix .. i .. "&page_size=30"
  end
  for i = 1, n do cumulative[i] = cumulative[i] / total end
  statuses = {}
  hits = 0
  answers = 0
end

request = function()
  local r = math.random()
  local lo, hi = 1, #cumulative
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cumulative[mid] < r then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", paths[lo])
end

response = function(status, headers, body)
  answers = answers + 1
  statuses[status] = (statuses[status] or 0) + 1
  -- HAProxy in front (the replicas scenario) sends header names in lower case.
  local cache = headers["Cache-Status"] or headers["cache-status"] or headers["X-Cache-Status"]
    or headers["x-cache-status"] or ""
  if string.find(cache, "hit") or cache == "HIT" or cache == "STALE" or cache == "UPDATING" then
    hits = hits + 1
  end
end

done = function(summary, latency, requests)
  local total_hits, total_answers, merged = 0, 0, {}
  for _, thread in ipairs(threads) do
    total_hits = total_hits + thread:get("hits")
    total_answers = total_answers + thread:get("answers")
    local s = thread:get("statuses")
    for code, count in pairs(s) do merged[code] = (merged[code] or 0) + count end
  end
  local parts = {}
  for code, count in pairs(merged) do table.insert(parts, '"' .. code .. '":' .. count) end
  io.write(string.format('MIXED {"answers":%d,"hits":%d,"statuses":{%s},"p50_us":%d,"p99_us":%d}\n',
    total_answers, total_hits, table.concat(parts, ","), latency:percentile(50), latency:percentile(99)))
end
