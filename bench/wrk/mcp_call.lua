-- wrk script: POST one pre-built JSON-RPC tools/call over and over, on keep-alive connections.
--
-- Environment (read once per wrk thread):
--   MCP_ERA           legacy (MCP-Protocol-Version: 2025-11-25, stateless, no initialize; SSE answer)
--                     or modern (2026-07-28: Mcp-Method / Mcp-Name headers and the _meta envelope)
--   MCP_TOOL          echo (default) or add
--   MCP_TOKEN         bearer token (the service's API key); unset for the bare-SDK baseline
--   MCP_MAX_REQUESTS  stop after this many responses in total (0 or unset: run for -d only)
--   MCP_THREADS       the -t given to wrk (splits MCP_MAX_REQUESTS between threads)
--
-- A response counts as good only if it is HTTP 200 and its body holds "isError":false (a JSON-RPC
-- error, a tool error or a 429/503 is bad). done() prints one line "WRKJSON {...}" for the driver.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local function build()
   local era = os.getenv("MCP_ERA") or "legacy"
   local tool = os.getenv("MCP_TOOL") or "echo"
   local token = os.getenv("MCP_TOKEN")
   local arguments = '{"text":"hello"}'
   if tool == "add" then arguments = '{"a":2,"b":3}' end
   local headers = {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json, text/event-stream",
   }
   local params
   if era == "modern" then
      headers["MCP-Protocol-Version"] = "2026-07-28"
      headers["Mcp-Method"] = "tools/call"
      headers["Mcp-Name"] = tool
      params = '{"name":"' .. tool .. '","arguments":' .. arguments .. ',"_meta":{'
         .. '"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
         .. '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},'
         .. '"io.modelcontextprotocol/clientCapabilities":{}}}'
   else
      headers["MCP-Protocol-Version"] = "2025-11-25"
      params = '{"name":"' .. tool .. '","arguments":' .. arguments .. '}'
   end
   if token and token ~= "" then
      headers["Authorization"] = "Bearer " .. token
   end
   local body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":' .. params .. '}'
   return wrk.format("POST", "/mcp", headers, body)
end

function init(args)
   good = 0
   bad = 0
   seen = 0
   local max_requests = tonumber(os.getenv("MCP_MAX_REQUESTS") or "0") or 0
   local nthreads = tonumber(os.getenv("MCP_THREADS") or "1") or 1
   limit = 0
   if max_requests > 0 then
      limit = math.ceil(max_requests / nthreads)
   end
   prepared = build()
end

function request()
   return prepared
end

function response(status, headers, body)
   seen = seen + 1
   if status == 200 and string.find(body, '"isError":false', 1, true) then
      good = good + 1
   else
      bad = bad + 1
      if bad <= 3 then
         io.stderr:write("bad response: status " .. status .. ": " .. string.sub(body or "", 1, 300) .. "\n")
      end
   end
   if limit > 0 and seen >= limit then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local g, b = 0, 0
   for _, thread in ipairs(threads) do
      g = g + (thread:get("good") or 0)
      b = b + (thread:get("bad") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us":%d,"requests":%d,"good":%d,"bad":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.duration, summary.requests, g, b,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
