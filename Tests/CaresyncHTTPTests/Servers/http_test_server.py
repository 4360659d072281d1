#!/usr/bin/env python3
"""HTTP/1.1 test server for the CaresyncHTTP tests (Python standard library only).

Listens on 127.0.0.1 on a free port and reports what happens on stdout, one event per line, so a
test can observe the server side of every connection:

    LISTENING <port>
    ACCEPT <connection>                 a TCP connection was accepted
    TLSFAIL <connection> <reason>       its TLS handshake failed
    REQUEST <connection> <method> <path>
    CLOSED <connection>                 the connection is finished (closed by either side)

Routes (any method):
    /echo                 200, JSON: method, path, headers [[name, value]…], body (hex), connection
    /gzip?size=N          N bytes of text, gzip-encoded when the request accepts gzip
    /bytes?size=N[&chunked=1]
                          N bytes, with Content-Length or chunked (no length known up front)
    /stall                headers and 10 of 100000 announced bytes, then nothing until the client leaves
    /hang                 reads the request and never answers, until the client leaves
    /status?code=N        an empty response with status N (302 carries a Location)
    /headers              a response with repeated and folded header fields

Options: --cert/--key serve TLS; --client-ca requires a client certificate signed by that CA;
--max-tls 1.2 caps the TLS version. The server exits by itself after --lifetime seconds.
"""

import argparse
import gzip
import http.server
import itertools
import json
import os
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
COUNTER = itertools.count(1)
TLS_CONTEXT = None
WAIT_LIMIT = 120.0  # seconds a /stall or /hang handler waits for the client to leave


def event(*parts):
    with LOCK:
        sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
        sys.stdout.flush()


def wait_for_peer_close(sock, limit=WAIT_LIMIT):
    """Blocks until the peer closes the connection (or `limit` seconds pass)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if not sock.recv(4096):
                    return
            except (OSError, ssl.SSLError):
                return


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.connection_id = next(COUNTER)
        self.tls_failed = False
        event("ACCEPT", self.connection_id)
        if TLS_CONTEXT is not None:
            try:
                self.request = TLS_CONTEXT.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                self.tls_failed = True
                event("TLSFAIL", self.connection_id, str(error).replace("\n", " "))
        super().setup()

    def handle(self):
        if self.tls_failed:
            # Lingering close, as production servers do: closing with the client's request still unread
            # makes the kernel send a reset, which discards the TLS alert before the client reads it.
            try:
                self.request.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            wait_for_peer_close(self.request, limit=2)
            return
        if not self.tls_failed:
            try:
                super().handle()
            except (ssl.SSLError, ConnectionError):
                pass

    def finish(self):
        try:
            super().finish()
        except (OSError, ssl.SSLError):
            pass
        event("CLOSED", self.connection_id)

    def log_message(self, format, *args):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ssl.SSLError, ConnectionError):
            self.close_connection = True

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        event("REQUEST", self.connection_id, self.command, url.path)
        body = self.read_body()
        if url.path == "/echo":
            payload = {
                "method": self.command,
                "path": self.path,
                "headers": [[name, value] for name, value in self.headers.items()],
                "body": body.hex(),
                "connection": self.connection_id,
            }
            self.send_bytes(200, json.dumps(payload).encode(), [("Content-Type", "application/json")])
        elif url.path == "/gzip":
            size = int(query.get("size", "1000"))
            text = (b"caresync gzip test line\n" * (size // 24 + 1))[:size]
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                self.send_bytes(200, gzip.compress(text), [("Content-Encoding", "gzip")])
            else:
                self.send_bytes(200, text)
        elif url.path == "/bytes":
            size = int(query.get("size", "0"))
            if query.get("chunked") == "1":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                remaining = size
                while remaining > 0:
                    chunk = b"x" * min(remaining, 16384)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    remaining -= len(chunk)
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_bytes(200, b"x" * size)
        elif url.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            wait_for_peer_close(self.connection)
            self.close_connection = True
        elif url.path == "/hang":
            wait_for_peer_close(self.connection)
            self.close_connection = True
        elif url.path == "/status":
            code = int(query.get("code", "200"))
            headers = [("Location", "/echo")] if 300 <= code < 400 else []
            self.send_bytes(code, b"", headers)
        elif url.path == "/headers":
            self.send_response(200)
            self.send_header("Set-Cookie", "a=1")
            self.send_header("set-cookie", "b=2")
            self.send_header("X-Folded", "first\r\n  second")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_bytes(404, b"not found")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    global TLS_CONTEXT
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--client-ca")
    parser.add_argument("--max-tls", choices=["1.2", "1.3"])
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args()

    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        context.set_alpn_protocols(["http/1.1"])
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
        if args.max_tls == "1.2":
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        TLS_CONTEXT = context

    server = Server(("127.0.0.1", 0), Handler)
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    event("LISTENING", server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
