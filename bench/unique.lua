-- Misses only: every request asks a question nobody asked before.
local thread_id = 0
local counter = 0

setup = function(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

init = function(args)
  counter = 0
  prefix = os.getenv("PREFIX") or tostring(os.time())
end

request = function()
  counter = counter + 1
  local path = "/v1/convai/test-invocations?agent_id=" .. prefix .. "_" .. thread_id .. "_" .. counter .. "&page_size=30"
  return wrk.format("GET", path)
end
