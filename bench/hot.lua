-- Hot keys: every request asks for one of KEYS pre-warmed pages, in turn, so all are cache hits.
local keys = tonumber(os.getenv("KEYS") or "100")
local counter = 0

request = function()
  counter = counter + 1
  local path = "/v1/convai/test-invocations?agent_id=hot" .. (counter % keys) .. "&page_size=30"
  return wrk.format("GET", path)
end
