-- wrk script: single FHIR creates. Each request POSTs the CarePlan template (first script argument,
-- a file holding "%ID%" where the business identifier goes) with a unique identifier value.
local template
local counter = 0
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  template = file:read("*a")
  file:close()
end

function request()
  counter = counter + 1
  local body = template:gsub("%%ID%%", string.format("wrk-%d-%d", thread_id, counter))
  return wrk.format("POST", "/fhir/CarePlan", { ["Content-Type"] = "application/fhir+json" }, body)
end

function done(summary, latency, requests)
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(99)))
end
