#!/usr/bin/env python3
"""caresync-store benchmark (area `store`): prints one BENCH line per scenario (Benchmarks/README.md).

Starts the release `caresync-store` on a free loopback port with a fresh SQLite file, then measures in one
run against that one server:
  - GET /fhir/metadata (no database): the HTTP ceiling, the baseline of the single-request scenarios;
  - single creates (wrk + create.lua), reads by id (wrk + read.lua), 50-entry transaction Bundles
    (wrk + transaction.lua, counted in resources/s and compared with single creates);
  - a plain bulk loader (one keep-alive connection, Python http.client, one request after another):
    single creates, then 50-entry transaction Bundles, the rates one client pushing records sees.

Usage: Benchmarks/store/bench.py [--store PATH] [--duration SECONDS] [--connections N] [--threads N]
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# A UK Core-shaped care plan of about 2 KB; %ID% is replaced by a unique business identifier value.
CAREPLAN = {
    "resourceType": "CarePlan",
    "meta": {"profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-CarePlan"]},
    "identifier": [{"system": "https://trust.example.nhs.uk/Id/care-plan", "value": "%ID%"}],
    "status": "active",
    "intent": "plan",
    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "736353004",
                              "display": "Inpatient care plan"}]}],
    "title": "Community respiratory care plan",
    "description": "Pulmonary rehabilitation and home oxygen review after hospital discharge.",
    "subject": {"reference": "Patient/9434765919",
                "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}},
    "period": {"start": "2025-04-01", "end": "2026-03-31"},
    "created": "2025-04-01T09:30:00+01:00",
    "author": {"reference": "Practitioner/c7a1e2f0", "display": "Dr A Example"},
    "careTeam": [{"reference": "CareTeam/resp-team"}],
    "addresses": [{"reference": "Condition/copd-1", "display": "Chronic obstructive lung disease"}],
    "goal": [{"reference": "Goal/walk-500m"}],
    "activity": [
        {"id": "act-%d" % index,
         "detail": {"kind": "ServiceRequest",
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "%d" % (304549008 + index),
                                         "display": "Respiratory therapy session %d" % index}]},
                    "status": "scheduled",
                    "doNotPerform": False,
                    "scheduledPeriod": {"start": "2025-04-%02d" % (index + 1), "end": "2025-05-%02d" % (index + 1)},
                    "performer": [{"reference": "Practitioner/c7a1e2f0"}],
                    "description": "Supervised exercise and breathing technique review, week %d." % index}}
        for index in range(4)
    ],
    "note": [{"text": "Patient prefers morning appointments; transport arranged by the practice."}],
}


def start_store(binary, directory):
    process = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--db", os.path.join(directory, "bench.sqlite"), "--log-level", "error"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline().strip()
    prefix = "listening on 127.0.0.1:"
    if not line.startswith(prefix):
        process.kill()
        sys.exit("caresync-store did not announce its port: %r" % line)
    return process, int(line[len(prefix):])


def run_wrk(port, path, script, script_args, duration, connections, threads):
    command = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency",
               "-s", os.path.join(HERE, script), "http://127.0.0.1:%d%s" % (port, path)]
    if script_args:
        command += ["--"] + script_args
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    for line in output.splitlines():
        if line.startswith("WRK "):
            result = json.loads(line[4:])
            if result["status_errors"] or result["socket_errors"]:
                sys.exit("wrk saw errors against %s: %s\n%s" % (path, result, output))
            result["rate"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    sys.exit("wrk printed no result:\n" + output)


def loader(port, template, count, bundle_size):
    """A plain bulk loader: one keep-alive connection, requests one after another. With bundle_size 0 it
    POSTs single creates, otherwise transaction Bundles of that many creates. Returns resources/s."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/fhir+json"}
    started = time.perf_counter()
    if bundle_size == 0:
        for index in range(count):
            connection.request("POST", "/fhir/CarePlan", template.replace("%ID%", "load-%d" % index), headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                sys.exit("loader create answered %d" % response.status)
    else:
        for bundle in range(count // bundle_size):
            entries = ",".join(
                '{"resource":%s,"request":{"method":"POST","url":"CarePlan"}}'
                % template.replace("%ID%", "load-tx-%d-%d" % (bundle, index)) for index in range(bundle_size))
            body = '{"resourceType":"Bundle","type":"transaction","entry":[%s]}' % entries
            connection.request("POST", "/fhir", body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                sys.exit("loader transaction answered %d" % response.status)
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def collect_paths(port, limit):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", "/fhir/CarePlan?_count=%d" % limit)
    bundle = json.loads(connection.getresponse().read())
    connection.close()
    return ["CarePlan/" + entry["resource"]["id"] for entry in bundle.get("entry", [])]


def bench_line(scenario, unit, value, baseline_name, baseline, target, met):
    return "BENCH " + json.dumps({
        "area": "store", "scenario": scenario, "unit": unit, "value": round(value, 1),
        "baseline_name": baseline_name, "baseline": round(baseline, 1),
        "ratio": round(value / baseline, 3) if baseline else None, "target": target, "met": bool(met)},
        separators=(",", ":"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=os.path.join(ROOT, ".build", "release", "caresync-store"))
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the server needs the other core)")
    options = parser.parse_args()
    if not os.access(options.store, os.X_OK):
        sys.exit("no caresync-store at %s (build it: swift build -c release --product caresync-store)" % options.store)

    with tempfile.TemporaryDirectory(prefix="caresync-store-bench-") as directory:
        template_path = os.path.join(directory, "careplan.json")
        template = json.dumps(CAREPLAN, separators=(",", ":"))
        with open(template_path, "w") as handle:
            handle.write(template)
        process, port = start_store(options.store, directory)
        try:
            wrk = lambda path, script, args=None: run_wrk(
                port, path, script, args or [], options.duration, options.connections, options.threads)
            print("store on port %d; %d s per scenario, %d connections, record %d bytes"
                  % (port, options.duration, options.connections, len(template)), flush=True)
            metadata = wrk("/fhir/metadata", "read.lua")
            print("metadata: %.0f req/s" % metadata["rate"], flush=True)
            creates = wrk("/fhir/CarePlan", "create.lua", [template_path])
            print("single creates: %.0f/s (p99 %.1f ms)" % (creates["rate"], creates["p99_us"] / 1000), flush=True)
            paths_file = os.path.join(directory, "paths.txt")
            with open(paths_file, "w") as handle:
                handle.write("\n".join(collect_paths(port, 1000)) + "\n")
            reads = wrk("/fhir/metadata", "read.lua", [paths_file])
            print("reads by id: %.0f/s (p99 %.1f ms)" % (reads["rate"], reads["p99_us"] / 1000), flush=True)
            transactions = wrk("/fhir", "transaction.lua", [template_path, "50"])
            bundled = transactions["rate"] * 50
            print("transaction bundles: %.0f/s = %.0f resources/s (p99 %.1f ms)"
                  % (transactions["rate"], bundled, transactions["p99_us"] / 1000), flush=True)
            loaded_single = loader(port, template, 2000, 0)
            print("bulk loader, single creates: %.0f/s" % loaded_single, flush=True)
            loaded_bundles = loader(port, template, 5000, 50)
            print("bulk loader, 50-entry transactions: %.0f resources/s" % loaded_bundles, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)

    print(bench_line("single create (wrk, %d connections)" % options.connections, "creates/s", creates["rate"],
                     "GET /fhir/metadata, same wrk settings", metadata["rate"], ">= 2000 creates/s",
                     creates["rate"] >= 2000))
    print(bench_line("read by id (wrk, %d connections)" % options.connections, "reads/s", reads["rate"],
                     "GET /fhir/metadata, same wrk settings", metadata["rate"], ">= 0.5x baseline",
                     reads["rate"] >= 0.5 * metadata["rate"]))
    print(bench_line("create in 50-entry transaction Bundles (wrk, %d connections)" % options.connections,
                     "resources/s", bundled, "single creates (wrk)", creates["rate"], ">= 2000 resources/s",
                     bundled >= 2000))
    print(bench_line("bulk loader, 50-entry transactions, one connection", "resources/s", loaded_bundles,
                     "bulk loader, single creates, one connection", loaded_single, ">= 3x baseline",
                     loaded_bundles >= 3 * loaded_single))


if __name__ == "__main__":
    main()
