"""A tiny OAuth2 token endpoint for caresync's tests: POST /token with a private_key_jwt client assertion.

Usage: token_endpoint.py PUBLIC_KEY.pem CLIENT_ID
Prints "listening PORT", then one line per request: "token request: ok" or the problems found. Answers 200
with a bearer token when the form and the RS512 assertion are right (signature verified with the public key,
iss = sub = CLIENT_ID, aud = this endpoint's URL, exp within five minutes, jti never seen before), else 401.
"""
import base64
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

public_key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
client_id = sys.argv[2]
seen_jti = set()
issued = 0


def decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def check(handler, form):
    problems = []
    if handler.headers.get("Content-Type") != "application/x-www-form-urlencoded":
        problems.append("content type %r" % handler.headers.get("Content-Type"))
    if form.get("grant_type") != "client_credentials":
        problems.append("grant_type")
    if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        problems.append("client_assertion_type")
    try:
        header, claims, signature = form.get("client_assertion", "").split(".")
        public_key.verify(decode(signature), (header + "." + claims).encode(), padding.PKCS1v15(), hashes.SHA512())
        header, claims = json.loads(decode(header)), json.loads(decode(claims))
    except (ValueError, InvalidSignature) as error:
        return problems + ["assertion: %s" % (error.__class__.__name__)]
    audience = "http://127.0.0.1:%d/token" % handler.server.server_address[1]
    now = time.time()
    if header.get("alg") != "RS512":
        problems.append("alg")
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        problems.append("iss/sub %r" % claims.get("iss"))
    if claims.get("aud") != audience:
        problems.append("aud %r" % claims.get("aud"))
    if not (now < claims.get("exp", 0) <= now + 305):
        problems.append("exp")
    if claims.get("jti") in seen_jti or not claims.get("jti"):
        problems.append("jti reused")
    seen_jti.add(claims.get("jti"))
    return problems


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global issued
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        form = dict(urllib.parse.parse_qsl(body.decode()))
        problems = check(self, form) if self.path == "/token" else ["path %s" % self.path]
        if problems:
            status, answer = 401, {"error": "invalid_client", "error_description": "; ".join(problems)}
        else:
            issued += 1
            status, answer = 200, {"access_token": "issued-token-%d" % issued, "token_type": "Bearer", "expires_in": 599}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        print("token request: " + ("ok" if not problems else "; ".join(problems)), flush=True)

    def log_message(self, *arguments):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
