-- bench_server.lua — wrk script for bench/bench_server.sh: POST /api/v1/compare with two JPEGs as
-- multipart fields a and b and an API key; counts every non-2xx answer (wrk itself counts only socket
-- errors) and prints requests/s, latency percentiles and that count in done().
local function slurp(p)
  local f = assert(io.open(p, "rb")); local d = f:read("*a"); f:close(); return d
end
local boundary = "fkbench7d93a1c2"
local a, b = slurp(os.getenv("FK_BENCH_A")), slurp(os.getenv("FK_BENCH_B"))
wrk.method = "POST"
wrk.path = "/api/v1/compare"
wrk.headers["X-API-Key"] = os.getenv("FK_BENCH_KEY")
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
  .. a .. "\r\n--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"b\"; filename=\"b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
  .. b .. "\r\n--" .. boundary .. "--\r\n"

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("non2xx") end
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_s=%.1f rps=%.1f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f non2xx=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    n, e.connect + e.read + e.write + e.status + e.timeout))
end
