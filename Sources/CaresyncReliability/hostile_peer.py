#!/usr/bin/env python3
"""A FHIR peer that misbehaves on purpose, for caresync's reliability suite (docs/reliability.md).

One HTTP/1.1 server; each configured path is a peer of its own, with its FHIR base at
http://127.0.0.1:PORT/<path>/fhir. Usage: hostile_peer.py CONFIG.json; prints `listening on 127.0.0.1:PORT`.

CONFIG: {"paths": {"<path>": {"mode": MODE, "records": {"CarePlan": [RECORD, ...], ...}}}}
RECORD: {"b64": base64 of the resource's exact bytes, "min_request": n, "max_request": n} (the request
        bounds are optional: the record is served only on the n-th search of its type at that path and on).

Modes (what GET [type]?… answers for CarePlan; Encounter and RelatedPerson get an empty searchset):
  records               a valid searchset with the records' bytes as they are (bad records inside a good page)
  not-json              200, application/fhir+json, a body that is not JSON
  wrong-content-type    200, text/html
  truncated             200 with a Content-Length larger than the body, then the connection closes
  foreign-next          a valid first page whose next link points at another host
  no-server-time        a valid page with no Bundle.meta.lastUpdated and no Date header
  history-bundle        a Bundle of type history instead of searchset
  not-a-bundle          200 with an OperationOutcome
  empty-body            200, application/fhir+json, no body
  server-error          500 with an HTML page, forever
  oversized             a searchset larger than caresync's 64 MiB response limit
  r5                    metadata says FHIR 5.0.0
  push-malformed-etag, push-malformed-location, push-truncated
                        search as `records`; PUT and POST are answered with a malformed ETag, a Location
                        that names no resource, or a truncated answer
"""
import base64
import datetime
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

CONFIG = {}
COUNTS = {}
LOCK = threading.Lock()
OVERSIZED = None


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def capability(version):
    return json.dumps({
        "resourceType": "CapabilityStatement", "status": "active", "date": "2025-04-01", "kind": "instance",
        "fhirVersion": version, "format": ["json"],
        "rest": [{"mode": "server", "resource": [{"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}]}
                                                 for t in ("CarePlan", "Encounter", "RelatedPerson")]}],
    }).encode()


def searchset(base, type_name, resources, next_link=None, with_time=True):
    parts = [b'{"resourceType":"Bundle","type":"searchset"']
    if with_time:
        parts.append(b',"meta":{"lastUpdated":"' + now().encode() + b'"}')
    links = [{"relation": "self", "url": base + "/" + type_name}]
    if next_link:
        links.append({"relation": "next", "url": next_link})
    parts.append(b',"link":' + json.dumps(links).encode())
    entries = [b'{"fullUrl":"' + (base + "/" + type_name + "/x%d" % index).encode() + b'","resource":' + raw + b'}'
               for index, raw in enumerate(resources)]
    parts.append(b',"entry":[' + b",".join(entries) + b"]}")
    return b"".join(parts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/fhir+json; charset=utf-8", headers=None, date=True, length=None):
        if date:
            self.send_response(status)
        else:
            self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        if length is not None and length != len(body):
            self.wfile.flush()
            self.close_connection = True

    def route(self):
        path = urlsplit(self.path).path
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[1] != "fhir" or parts[0] not in CONFIG["paths"]:
            return None, None, None
        return parts[0], CONFIG["paths"][parts[0]], parts[2:]

    def do_GET(self):
        name, peer, rest = self.route()
        if peer is None:
            return self.answer(404, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}')
        mode = peer["mode"]
        base = "http://%s/%s/fhir" % (self.headers.get("Host"), name)
        if rest == ["metadata"]:
            return self.answer(200, capability("5.0.0" if mode == "r5" else "4.0.1"))
        if len(rest) != 1 or rest[0] not in ("CarePlan", "Encounter", "RelatedPerson"):
            return self.answer(404, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}')
        type_name = rest[0]
        with LOCK:
            COUNTS[(name, type_name)] = COUNTS.get((name, type_name), 0) + 1
            count = COUNTS[(name, type_name)]
        resources = [base64.b64decode(record["b64"]) for record in peer.get("records", {}).get(type_name, [])
                     if record.get("min_request", 0) <= count <= record.get("max_request", 1 << 60)]
        if type_name != "CarePlan" or mode in ("records", "r5") or mode.startswith("push-"):
            return self.answer(200, searchset(base, type_name, resources))
        if mode == "not-json":
            return self.answer(200, b"<<this is not JSON>>")
        if mode == "wrong-content-type":
            return self.answer(200, b"<html><body>Service temporarily re-routed</body></html>", "text/html")
        if mode == "truncated":
            body = searchset(base, type_name, resources)
            return self.answer(200, body[: len(body) // 2], length=len(body) + 1000)
        if mode == "foreign-next":
            return self.answer(200, searchset(base, type_name, resources, next_link="http://hostile.invalid/fhir/CarePlan?page=2"))
        if mode == "no-server-time":
            return self.answer(200, searchset(base, type_name, resources, with_time=False), date=False)
        if mode == "history-bundle":
            return self.answer(200, searchset(base, type_name, resources).replace(b'"type":"searchset"', b'"type":"history"', 1))
        if mode == "not-a-bundle":
            return self.answer(200, b'{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}')
        if mode == "empty-body":
            return self.answer(200, b"")
        if mode == "server-error":
            return self.answer(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        if mode == "oversized":
            global OVERSIZED
            with LOCK:
                if OVERSIZED is None:
                    note = b'{"text":"' + b"x" * (1 << 20) + b'"}'
                    OVERSIZED = searchset(base, type_name, []).replace(
                        b'"entry":[]', b'"entry":[{"resource":{"resourceType":"CarePlan","id":"big","note":['
                        + b",".join([note] * 66) + b"]}}]")
            return self.answer(200, OVERSIZED)
        return self.answer(500, b"unknown mode", "text/plain")

    def do_PUT(self):
        self.write_answer()

    def do_POST(self):
        self.write_answer()

    def write_answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        name, peer, rest = self.route()
        if peer is None:
            return self.answer(404, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}')
        mode = peer["mode"]
        type_name = rest[0] if rest else "CarePlan"
        resource_id = rest[1] if len(rest) > 1 else "new-1"
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = {}
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            return self.answer(400, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"no batch or transaction here"}]}')
        location = "http://%s/%s/fhir/%s/%s/_history/2" % (self.headers.get("Host"), name, type_name, resource_id)
        if mode == "push-malformed-etag":
            return self.answer(200, body, headers={"ETag": "version-two", "Location": location})
        if mode == "push-malformed-location":
            return self.answer(200, body, headers={"Location": "http://elsewhere.invalid/not-a-resource"})
        if mode == "push-truncated":
            return self.answer(200, body[: len(body) // 2], headers={"ETag": 'W/"2"', "Location": location}, length=len(body) + 500)
        return self.answer(405, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported"}]}')


def main():
    with open(sys.argv[1]) as handle:
        CONFIG.update(json.load(handle))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
