#!/usr/bin/env python3
"""A FHIR server stand-in that declares FHIR R5 (5.0.0) in its CapabilityStatement: the peer caresync must
refuse. Prints `listening on 127.0.0.1:PORT`, then one `GET <path>` line per request."""
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("GET " + self.path, flush=True)
        if self.path.endswith("/metadata"):
            body = json.dumps({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                               "fhirVersion": "5.0.0", "format": ["json"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
        else:
            body = json.dumps({"resourceType": "OperationOutcome",
                               "issue": [{"severity": "error", "code": "not-supported"}]}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
