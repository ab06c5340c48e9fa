-- wrk script: POST one body over every connection, then print what benchmarks/wrk.py reads.
local file = assert(io.open(os.getenv("EDGEBENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("EDGEBENCH_TYPE")

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "EDGEBENCH requests=%d duration_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
  local points = {}
  for tenth = 1, 999 do
    points[#points + 1] = string.format("%d", latency:percentile(tenth / 10))
  end
  io.write("EDGEBENCH quantiles_us=" .. table.concat(points, ",") .. "\n")
end
