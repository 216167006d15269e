-- Hot keys: every request asks for one of KEYS pre-warmed pages, in turn, so all are cache hits.
-- With PACE_MS set, each connection waits that many milliseconds before each request: the same load for
-- every server, below what any of them can serve, so latencies compare without saturating the machine.
local keys = tonumber(os.getenv("KEYS") or "100")
local pace = tonumber(os.getenv("PACE_MS") or "0")
-- With ACCEPT_ENCODING set, every request sends it (gzip clients).
local encoding = os.getenv("ACCEPT_ENCODING")
local headers = {}
if encoding then headers["Accept-Encoding"] = encoding end
-- With CLOSE set, every request asks to close its connection: each request is a new connection (over TLS, a
-- full handshake).
if os.getenv("CLOSE") then headers["Connection"] = "close" end
local counter = 0

request = function()
  counter = counter + 1
  local path = "/v1/convai/test-invocations?agent_id=hot" .. (counter % keys) .. "&page_size=30"
  return wrk.format("GET", path, headers)
end

if pace > 0 then
  delay = function()
    return pace
  end
end
