#!/usr/bin/env python3
"""A minimal FHIR peer for `caresync peers probe` tests (Python standard library only).

Listens on 127.0.0.1 on a free port, prints `LISTENING <port>`, then one `REQUEST <method> <path> <auth>`
line per request (`<auth>` is the Authorization header or `-`).

    GET /fhir/metadata        200 CapabilityStatement with --fhir-version (default 4.0.1)
    GET /fhir/<Type>?...      200 empty searchset Bundle; 401 + OperationOutcome when --token is set and
                              the request does not carry `Authorization: Bearer <token>`
    anything else             404 OperationOutcome

Options: --cert/--key serve TLS (HTTP/1.1); --fhir-version; --token; --lifetime seconds (default 300).
"""

import argparse
import http.server
import json
import socketserver
import ssl
import sys
import threading

ARGS = None


def outcome(text, code="not-found"):
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "details": {"text": text}}]}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        auth = self.headers.get("Authorization") or "-"
        print("REQUEST", self.command, self.path, auth.replace(" ", "_"), flush=True)
        path = self.path.split("?", 1)[0]
        if path == "/fhir/metadata":
            self.send_json(200, {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                                 "date": "2025-06-15", "fhirVersion": ARGS.fhir_version, "format": ["json"],
                                 "software": {"name": "fhir-peer.py", "version": "1.0"}})
        elif path.startswith("/fhir/") and path.count("/") == 2:
            if ARGS.token and auth != "Bearer " + ARGS.token:
                self.send_json(401, outcome("The access token is missing, expired or not valid for this server", "login"))
            else:
                self.send_json(200, {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []})
        else:
            self.send_json(404, outcome("no route " + path))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--fhir-version", default="4.0.1")
    parser.add_argument("--token")
    parser.add_argument("--lifetime", type=float, default=300)
    ARGS = parser.parse_args()
    server = Server(("127.0.0.1", 0), Handler)
    if ARGS.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.cert, ARGS.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("LISTENING", server.server_address[1], flush=True)
    threading.Timer(ARGS.lifetime, server.shutdown).start()
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
