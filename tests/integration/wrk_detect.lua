-- Debian's wrk posting one JPEG (VLM_WRK_IMAGE) to /detect on every connection, keep-alive. Each
-- response is counted by status and, for errors, the error code of its body; a 503 without
-- "Retry-After: 1" is counted apart. done() prints one line, "VLM_WRK " and JSON, that
-- server_harness.WrkLoad reads.
--
-- After a 503 a connection waits VLM_WRK_BACKOFF_MS (100) before its next request: a short
-- back-off, not the Retry-After second, so the pressure stays; with none, a few connections
-- spinning on refusals take both cores of a small machine and starve the admitted requests.
local image = assert(io.open(assert(os.getenv("VLM_WRK_IMAGE"), "VLM_WRK_IMAGE is not set"), "rb"))
wrk.method = "POST"
wrk.body = image:read("*a")
wrk.headers["Content-Type"] = "image/jpeg"
image:close()

local backoff_ms = tonumber(os.getenv("VLM_WRK_BACKOFF_MS") or "100")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  retry_after_missing = 0
  refused = false
end

function delay()
  return refused and backoff_ms or 0
end

function response(status, headers, body)
  local key = tostring(status)
  refused = status == 503
  if status ~= 200 then
    key = key .. " " .. (body:match('"code"%s*:%s*"([%w_]+)"') or "?")
    local retry_after
    for name, value in pairs(headers) do
      if name:lower() == "retry-after" then retry_after = value end
    end
    if status == 503 and retry_after ~= "1" then retry_after_missing = retry_after_missing + 1 end
  end
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local total, missing = {}, 0
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("counts")) do total[key] = (total[key] or 0) + n end
    missing = missing + thread:get("retry_after_missing")
  end
  local parts = {}
  for key, n in pairs(total) do table.insert(parts, string.format('"%s": %d', key, n)) end
  local e = summary.errors
  io.write(string.format('VLM_WRK {"counts": {%s}, "retry_after_missing": %d, "socket_errors": {"connect": %d, ' ..
                         '"read": %d, "write": %d, "timeout": %d}, "p50_ms": %.1f, "p99_ms": %.1f}\n',
                         table.concat(parts, ", "), missing, e.connect, e.read, e.write, e.timeout,
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
