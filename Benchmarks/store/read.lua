-- wrk script: reads by id. The first script argument is a file of paths (`CarePlan/<id>`), one a line;
-- requests cycle through them. Without arguments it GETs the URL given to wrk.
local paths = {}
local position = 0

function init(args)
  if args[1] then
    for line in io.lines(args[1]) do paths[#paths + 1] = "/fhir/" .. line end
  end
  position = math.random(#paths > 0 and #paths or 1)
end

function request()
  if #paths == 0 then return wrk.format("GET") end
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

function done(summary, latency, requests)
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(99)))
end
