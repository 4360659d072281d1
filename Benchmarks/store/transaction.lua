-- wrk script: 50-entry transaction Bundles of CarePlan creates (template file as first argument,
-- entry count as the optional second), each entry with a unique identifier.
local template
local entries = 50
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
  if args[2] then entries = tonumber(args[2]) end
end

function request()
  counter = counter + 1
  local parts = {}
  for index = 1, entries do
    local resource = template:gsub("%%ID%%", string.format("tx-%d-%d-%d", thread_id, counter, index))
    parts[index] = '{"resource":' .. resource .. ',"request":{"method":"POST","url":"CarePlan"}}'
  end
  local body = '{"resourceType":"Bundle","type":"transaction","entry":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/fhir", { ["Content-Type"] = "application/fhir+json" }, body)
end

function done(summary, latency, requests)
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(99)))
end
