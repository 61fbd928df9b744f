-- wrk script for bench/server/run.sh: each request embeds one text, the texts
-- taken in turn from $EMBER_BENCH_TEXTS (bench/server/texts.py), each wrk
-- thread starting at a different place. At the end it prints one line,
-- "RESULT key=value ...", for run.sh to read.
local route = os.getenv("EMBER_BENCH_ROUTE") or "embed"
local threads = {}
local n_threads = 0

function setup(thread)
  thread:set("tid", n_threads)
  n_threads = n_threads + 1
  table.insert(threads, thread)
end

function init(args)
  bodies = dofile(os.getenv("EMBER_BENCH_TEXTS"))[route]
  next_i = (tid * 7919) % #bodies
  bad = 0
  path = route == "openai" and "/v1/embeddings" or "/embed"
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  next_i = next_i % #bodies + 1
  return wrk.format("POST", path, headers, bodies[next_i])
end

function response(status, hdrs, body)
  -- a 200 must carry a vector (wrk counts non-2xx by itself)
  if status == 200 and not (string.find(body, "embedding", 1, true) or string.sub(body, 1, 2) == "[[") then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local badbodies = 0
  for _, t in ipairs(threads) do badbodies = badbodies + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d badbody=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.status, e.connect, e.read, e.write, e.timeout, badbodies))
end
