-- wrk script for bench/ingest.py: signed Shopify webhooks, each with its own X-Shopify-Event-Id.
--
-- The body and its signature are computed once by ingest.py (the HMAC covers only the body, so
-- one signature stays valid while the event id changes per request) and passed in through the
-- environment:
--   BENCH_BODY_FILE   path of the raw JSON body
--   BENCH_SIGNATURE   base64(HMAC-SHA256(secret, body))
--   BENCH_RUN_TAG     unique per wrk run, so event ids never repeat across runs
-- At the end, done() prints one line "RESULT {json}" with throughput, latency percentiles and
-- the responses counted by status (202, other 2xx, anything else) plus wrk's socket errors.

local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open BENCH_BODY_FILE " .. tostring(path))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  local tag = assert(os.getenv("BENCH_RUN_TAG"), "BENCH_RUN_TAG is not set")
  prefix = string.format("bench-%s-t%d-", tag, tid)
  counter = 0
  n202, n2xx, nother = 0, 0, 0
  wrk.method = "POST"
  wrk.body = read_file(os.getenv("BENCH_BODY_FILE"))
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Shopify-Hmac-Sha256"] = assert(os.getenv("BENCH_SIGNATURE"), "BENCH_SIGNATURE")
  wrk.headers["X-Shopify-Topic"] = "customers/update"
  wrk.headers["X-Shopify-API-Version"] = "2024-10"
  wrk.headers["X-Shopify-Shop-Domain"] = "crm-hub-fixtures.myshopify.com"
  wrk.headers["X-Shopify-Triggered-At"] = "2026-11-02T15:15:01.703281Z"
end

function request()
  counter = counter + 1
  local id = prefix .. counter
  wrk.headers["X-Shopify-Event-Id"] = id
  wrk.headers["X-Shopify-Webhook-Id"] = id
  return wrk.format()
end

function response(status, headers, body)
  if status == 202 then
    n202 = n202 + 1
  elseif status >= 200 and status < 300 then
    n2xx = n2xx + 1
  else
    nother = nother + 1
  end
end

function done(summary, latency, requests)
  local c202, c2xx, cother, sent = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    c202 = c202 + t:get("n202")
    c2xx = c2xx + t:get("n2xx")
    cother = cother + t:get("nother")
    sent = sent + t:get("counter")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"rps":%.1f,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"status_202":%d,"status_2xx_other":%d,"status_other":%d,"requests_built":%d,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    summary.bytes, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, c202, c2xx, cother, sent,
    e.connect, e.read, e.write, e.status, e.timeout))
end
