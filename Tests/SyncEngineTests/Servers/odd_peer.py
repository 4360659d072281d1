#!/usr/bin/env python3
"""A FHIR peer stand-in that answers badly, for the client's bad-input rules. Prints
`listening on 127.0.0.1:PORT`.
  GET /fhir/metadata           a CapabilityStatement, FHIR 4.0.1
  GET /fhir/CarePlan           a searchset whose next link points to another host
  GET /fhir/RelatedPerson      a searchset whose next link leaves the FHIR base path
  GET /fhir/Encounter          HTML, not FHIR JSON
  GET /fhir/Patient            a searchset whose entry has no resource
  GET /fhir/Patient?shape=awkward    a valid searchset written awkwardly (whitespace, member order,
                                     escapes, brackets inside strings)
  GET /fhir/Patient?shape=truncated  a searchset cut off inside a resource's string"""
import http.server
import json
import sys

RESOURCE = {"resourceType": "CarePlan", "id": "cp-1", "meta": {"versionId": "1", "lastUpdated": "2025-04-01T09:30:00Z"},
            "status": "active", "intent": "plan"}

# Valid JSON, written as no serialiser would: the client must find each resource's exact bytes and
# identity fields wherever they stand.
AWKWARD = """ {
  "entry" : [ { "fullUrl" : "urn:x:{1}", "resource" :
      { "meta" : { "lastUpdated" : "2025-04-01T09:30:00Z", "tag" : [ { "code" : "]}" } ], "versionId" : "7" },
        "text" : { "div" : "<div>say \\"}]{[\\" brackets \\\\</div>" }, "id" : "pt\\u002d1",
        "resourceType" : "Patient", "extension" : [ [ ] , { } ] } ,
      "search" : { "mode" : "match" } },
    {"resource":{"resourceType":"Patient","id":"pt-2","meta":{"versionId":"1","lastUpdated":"2025-04-01T09:30:01Z"}}}
  ] ,
  "meta" : { "lastUpdated" : "2025-04-01T09:30:02Z" } , "type" : "searchset", "resourceType" : "Bundle"
}
"""


class Handler(http.server.BaseHTTPRequestHandler):
    def bundle(self, next_url, entries=None):
        return {"resourceType": "Bundle", "type": "searchset", "meta": {"lastUpdated": "2025-04-01T09:30:01Z"},
                "link": [{"relation": "next", "url": next_url}],
                "entry": entries if entries is not None else [{"resource": RESOURCE}]}

    def do_GET(self):
        port = self.server.server_address[1]
        path = self.path.split("?")[0]
        content_type = "application/fhir+json"
        if path == "/fhir/metadata":
            body = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
                    "format": ["json"]}
        elif path == "/fhir/CarePlan":
            body = self.bundle("http://other.example:%d/fhir/CarePlan?page=2" % port)
        elif path == "/fhir/RelatedPerson":
            body = self.bundle("http://127.0.0.1:%d/elsewhere/RelatedPerson?page=2" % port)
        elif path == "/fhir/Patient" and "shape=awkward" in self.path:
            body = AWKWARD
        elif path == "/fhir/Patient" and "shape=truncated" in self.path:
            body = AWKWARD[:AWKWARD.index("brackets")]
        elif path == "/fhir/Patient":
            body = self.bundle("http://127.0.0.1:%d/fhir/Patient?page=2" % port, entries=[{"fullUrl": "x"}])
        else:
            body, content_type = "<html>maintenance</html>", "text/html"
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
