import CaresyncDaemon
import CaresyncHTTP
import CaresyncTestSupport
import FHIRJSON
import Foundation
import Synchronization
import Testing

/// Verifies a JWT with Python's `cryptography` (an implementation independent of OpenSSL-through-Swift):
/// prints `{"valid": bool, "header": {...}, "claims": {...}}`.
enum PythonJWT {
    static let script = """
        import base64, json, sys
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.exceptions import InvalidSignature
        public_key = serialization.load_pem_public_key(open(sys.argv[1], "rb").read())
        token = sys.stdin.read().strip()
        def decode(part):
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        header, claims, signature = token.split(".")
        try:
            public_key.verify(decode(signature), (header + "." + claims).encode(), padding.PKCS1v15(), hashes.SHA512())
            valid = True
        except InvalidSignature:
            valid = False
        print(json.dumps({"valid": valid, "header": json.loads(decode(header)), "claims": json.loads(decode(claims)),
                          "padded": any(p.endswith("=") for p in (header, claims, signature))}))
        """

    static func verify(_ token: String, publicKey: String) async throws -> JSON {
        let result = try await Tool.run("python3", ["-c", script, publicKey], input: Data(token.utf8))
        try #require(result.status == 0, "python3: \(result.errors)")
        return try JSON.parse(result.output)
    }
}

/// A wall clock the test moves.
final class ManualClock: WallClock {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    func now() -> Date { current.withLock { $0 } }
    func advance(_ seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The token endpoint at the HTTP edge: records each form it receives and answers from a script.
final class ScriptedTokenEndpoint: TokenEndpointTransport {
    struct Request: Sendable {
        let url: String
        let form: [String: String]
    }

    private let state = Mutex<(requests: [Request], answers: [Result<TokenEndpointResponse, FakeNetworkError>])>(([], []))
    private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let gated: Bool

    struct FakeNetworkError: Error {}

    init(gated: Bool = false) {
        self.gated = gated
    }

    func answer(status: Int, json: String) {
        state.withLock { $0.answers.append(.success(TokenEndpointResponse(status: status, body: Array(json.utf8)))) }
    }

    func failConnection() {
        state.withLock { $0.answers.append(.failure(FakeNetworkError())) }
    }

    var requests: [Request] { state.withLock { $0.requests } }

    /// Lets a held request through.
    func release() {
        gate.withLock { continuation in
            continuation?.resume()
            continuation = nil
        }
    }

    var isHolding: Bool { gate.withLock { $0 != nil } }

    func postForm(to url: PeerURL, body: [UInt8], tls: TLSSettings) async throws -> TokenEndpointResponse {
        var form: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
            form[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        state.withLock { $0.requests.append(Request(url: url.text, form: form)) }
        if gated { await withCheckedContinuation { continuation in gate.withLock { $0 = continuation } } }
        let answer = state.withLock { $0.answers.isEmpty ? nil : $0.answers.removeFirst() }
        guard let answer else { return TokenEndpointResponse(status: 500, body: []) }
        return try answer.get()
    }
}

@Suite("Authentication")
struct AuthTests {
    let directory: TemporaryDirectory
    let keyPath: URL

    init() async throws {
        directory = try TemporaryDirectory(prefix: "caresync-auth")
        keyPath = try await TestKeys.rsa(in: directory, name: "client.pem")
    }

    func settings(keyID: String? = "kid-1", scope: String? = nil) throws -> OAuth2ClientCredentialsSettings {
        OAuth2ClientCredentialsSettings(
            tokenURL: try PeerURL("https://auth.example.nhs.uk/oauth2/token"), clientID: "caresync-client",
            privateKey: SecretValue(bytes: Array(try Data(contentsOf: keyPath)), origin: keyPath.path), keyID: keyID, scope: scope)
    }

    @Test("the client assertion is an RS512 JWT that an independent implementation verifies, with the claims NHS services expect")
    func clientAssertion() async throws {
        defer { directory.remove() }
        let signer = try RS512Signer(pem: Array(try Data(contentsOf: keyPath)))
        #expect(signer.bits == 2048)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let assertion = ClientAssertion(clientID: "caresync-client", audience: "https://auth.example.nhs.uk/oauth2/token", keyID: "kid-1")
        let token = try assertion.signed(with: signer, now: now)
        let verdict = try await PythonJWT.verify(token, publicKey: keyPath.path + ".pub")
        #expect(verdict["valid"] == .bool(true))
        #expect(verdict["padded"] == .bool(false), "base64url without padding")
        #expect(verdict["header"] == ["alg": "RS512", "typ": "JWT", "kid": "kid-1"])
        let claims = try #require(verdict["claims"]?.objectValue)
        #expect(claims["iss"] == "caresync-client")
        #expect(claims["sub"] == "caresync-client")
        #expect(claims["aud"] == "https://auth.example.nhs.uk/oauth2/token")
        #expect(claims["exp"]?.numberValue?.intValue == 1_800_000_300, "exp is five minutes ahead")
        #expect(Set(claims.keys) == ["iss", "sub", "aud", "jti", "exp"])
        let jti = try #require(claims["jti"]?.stringValue)
        #expect(UUID(uuidString: jti) != nil)
        #expect(try assertion.signed(with: signer, now: now) != token, "every assertion has a fresh jti")
        #expect(ClientAssertion(clientID: "c", audience: "a", lifetime: .seconds(3600)).lifetime == .seconds(300))

        // The checker can fail: a signature over other claims does not verify.
        let parts = token.split(separator: ".")
        let forged = try assertion.signed(with: signer, now: now.addingTimeInterval(60)).split(separator: ".")
        let tampered = [parts[0], forged[1], parts[2]].joined(separator: ".")
        await #expect(try PythonJWT.verify(tampered, publicKey: keyPath.path + ".pub")["valid"] == .bool(false))
    }

    @Test("keys RS512 cannot use are refused: short, not RSA, encrypted, not PEM")
    func unusableKeys() async throws {
        defer { directory.remove() }
        let short = try await TestKeys.rsa(bits: 1024, in: directory, name: "short.pem")
        let ec = directory.path("ec.pem")
        #expect(try await Tool.run("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec.path]).status == 0)
        let encrypted = directory.path("encrypted.pem")
        #expect(
            try await Tool.run("openssl", ["pkey", "-in", keyPath.path, "-aes256", "-passout", "pass:secret", "-out", encrypted.path]).status == 0)
        let cases: [(URL?, String)] = [(short, "1024 bits"), (ec, "RSA"), (encrypted, "unencrypted PEM"), (nil, "unencrypted PEM")]
        for (path, expected) in cases {
            let pem = try path.map { Array(try Data(contentsOf: $0)) } ?? Array("not a key".utf8)
            #expect(performing: { try RS512Signer(pem: pem) }, throws: { ($0 as? AuthError)?.code == .invalidKey && "\($0)".contains(expected) })
        }
    }

    @Test("OAuth2: the token request is a client_credentials form with a verifiable assertion; the token is cached until shortly before expiry")
    func tokenCaching() async throws {
        defer { directory.remove() }
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
        let endpoint = ScriptedTokenEndpoint()
        endpoint.answer(status: 200, json: #"{"access_token":"first.token","token_type":"Bearer","expires_in":599}"#)
        endpoint.answer(status: 200, json: #"{"access_token":"second.token","token_type":"bearer","expires_in":"599"}"#)
        endpoint.answer(status: 200, json: #"{"access_token":"third.token","token_type":"Bearer"}"#)
        let provider = try OAuth2ClientCredentialsTokenProvider(settings: try settings(scope: "system/CarePlan.write"), tls: TLSSettings(), transport: endpoint, clock: clock)

        let first = try #require(try await provider.accessToken())
        #expect(first.authorizationHeaderValue == "Bearer first.token")
        #expect(first.expiresAt == clock.now().addingTimeInterval(599))
        #expect(!"\(first)".contains("first.token"))
        let request = try #require(endpoint.requests.first)
        #expect(request.url == "https://auth.example.nhs.uk/oauth2/token")
        #expect(request.form["grant_type"] == "client_credentials")
        #expect(request.form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        #expect(request.form["scope"] == "system/CarePlan.write")
        #expect(Set(request.form.keys) == ["grant_type", "client_assertion_type", "client_assertion", "scope"])
        let verdict = try await PythonJWT.verify(try #require(request.form["client_assertion"]), publicKey: keyPath.path + ".pub")
        #expect(verdict["valid"] == .bool(true))
        #expect(verdict["claims"]?["aud"] == "https://auth.example.nhs.uk/oauth2/token")

        clock.advance(500)
        #expect(try await provider.accessToken()?.value == "first.token", "cached while more than a minute remains")
        #expect(endpoint.requests.count == 1)
        clock.advance(50)
        #expect(try await provider.accessToken()?.value == "second.token", "refreshed once less than a minute remains")
        #expect(endpoint.requests.count == 2)
        await provider.invalidate()
        #expect(try await provider.accessToken()?.value == "third.token", "a 401 from the peer drops the cached token")
        #expect(endpoint.requests.count == 3)
        clock.advance(47)
        #expect(try await provider.accessToken()?.value == "third.token", "a token without expires_in lasts a minute, refreshed 12 s early")
        #expect(endpoint.requests.count == 3)
        clock.advance(2)
        await #expect(throws: AuthError.self) { try await provider.accessToken() }
        #expect(endpoint.requests.count == 4)
    }

    @Test("OAuth2: concurrent callers share one token request")
    func singleFlight() async throws {
        defer { directory.remove() }
        let endpoint = ScriptedTokenEndpoint(gated: true)
        endpoint.answer(status: 200, json: #"{"access_token":"shared","token_type":"Bearer","expires_in":300}"#)
        let provider = try OAuth2ClientCredentialsTokenProvider(settings: try settings(), tls: TLSSettings(), transport: endpoint)
        try await withThrowingTaskGroup { group in
            for _ in 0..<8 { group.addTask { try await provider.accessToken()?.value } }
            while !endpoint.isHolding { try await Task.sleep(for: .milliseconds(5)) }
            // Let every caller reach the provider before the one request completes.
            try await Task.sleep(for: .milliseconds(50))
            endpoint.release()
            for try await value in group { #expect(value == "shared") }
        }
        #expect(endpoint.requests.count == 1)
    }

    @Test("OAuth2 errors: refusals are final, overload and network failures retriable, bad answers named")
    func tokenErrors() async throws {
        defer { directory.remove() }
        let endpoint = ScriptedTokenEndpoint()
        endpoint.answer(status: 400, json: #"{"error":"invalid_client","error_description":"assertion expired"}"#)
        endpoint.answer(status: 503, json: "")
        endpoint.failConnection()
        endpoint.answer(status: 200, json: "<html>")
        endpoint.answer(status: 200, json: #"{"access_token":"x y","token_type":"Bearer"}"#)
        endpoint.answer(status: 200, json: #"{"access_token":"ok","token_type":"MAC"}"#)
        let provider = try OAuth2ClientCredentialsTokenProvider(settings: try settings(), tls: TLSSettings(), transport: endpoint)
        let expectations: [(AuthError.Code, Bool, String)] = [
            (.tokenRejected, false, "invalid_client (assertion expired)"),
            (.tokenEndpointUnavailable, true, "answered 503"),
            (.tokenEndpointUnavailable, true, "could not be reached"),
            (.invalidTokenResponse, false, "not a JSON object"),
            (.invalidTokenResponse, false, "no usable access_token"),
            (.invalidTokenResponse, false, "only Bearer"),
        ]
        for (code, retriable, text) in expectations {
            do {
                _ = try await provider.accessToken()
                Issue.record("expected \(code)")
            } catch {
                #expect(error.code == code)
                #expect(error.isRetriable == retriable)
                #expect(error.message.contains(text), "\(error.message)")
            }
        }
    }

    @Test("bearer tokens: sent as configured, refused when they could smuggle a header")
    func bearer() async throws {
        defer { directory.remove() }
        let provider = try StaticBearerToken(SecretValue("abc.DEF-123_~+/==\n"))
        #expect(try await provider.accessToken()?.authorizationHeaderValue == "Bearer abc.DEF-123_~+/==")
        for bad in ["two words", "abc\r\nX-Evil: 1", "", "a=b"] {
            #expect(throws: AuthError.self, "\(bad)") { try StaticBearerToken(SecretValue(bad)) }
        }
        #expect(try await NoAccessToken().accessToken() == nil)
    }

    @Test("per-peer providers follow reloads: unchanged peers keep theirs, changed ones are rebuilt")
    func peerProviders() async throws {
        defer { directory.remove() }
        let endpoint = ScriptedTokenEndpoint()
        let hub = PeerConfiguration(
            name: "hub", ods: "QWE", baseURL: try PeerURL("https://hub.example.nhs.uk/fhir"), auth: .oauth2ClientCredentials(try settings()))
        let provider = ProviderConfiguration(
            peer: PeerConfiguration(
                name: "p1", ods: "RAX", baseURL: try PeerURL("https://p1.example.nhs.uk/fhir"), auth: .bearer(token: SecretValue("old-token"))),
            mode: .readWrite)
        var configuration = CaresyncConfiguration(hub: hub, providers: [provider])
        let tokens = try PeerAccessTokens(configuration: configuration, transport: endpoint)
        let hubProvider = try #require(tokens.provider(for: "hub") as? OAuth2ClientCredentialsTokenProvider)
        #expect(try await tokens.provider(for: "p1")?.accessToken()?.value == "old-token")
        #expect(tokens.provider(for: "nobody") == nil)

        configuration.providers[0].peer.auth = .bearer(token: SecretValue("new-token"))
        try tokens.apply(configuration)
        #expect(try await tokens.provider(for: "p1")?.accessToken()?.value == "new-token")
        #expect(tokens.provider(for: "hub") as? OAuth2ClientCredentialsTokenProvider === hubProvider, "the hub's cached token survives")

        configuration.hub.auth = .oauth2ClientCredentials(try settings(keyID: "kid-2"))
        try tokens.apply(configuration)
        #expect(tokens.provider(for: "hub") as? OAuth2ClientCredentialsTokenProvider !== hubProvider)

        #expect(throws: AuthError.self) { try PeerAccessTokens(configuration: configuration, transport: nil) }
    }
}

/// The real exchange: the OAuth2 provider over the libcurl transport against a token endpoint written in
/// Python that verifies the assertion on its own.
@Suite("OAuth2 token exchange over HTTP")
struct TokenExchangeTests {
    @Test("a token is issued for a valid assertion, refused for a wrong client, and an absent endpoint is retriable")
    func exchange() async throws {
        let directory = try TemporaryDirectory(prefix: "caresync-token")
        defer { directory.remove() }
        let key = try await TestKeys.rsa(in: directory, name: "client.pem")
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/CaresyncDaemonTests/Servers/token_endpoint.py").path
        let python = try #require(Tool.find("python3"))
        let server = try ChildProcess(executable: URL(fileURLWithPath: python), arguments: [script, key.path + ".pub", "caresync-client"])
        let listening = try await server.waitForLine { $0.hasPrefix("listening ") }
        let port = try #require(Int(listening.dropFirst("listening ".count)))
        let client = HTTPClient()
        defer { client.shutdown() }
        let transport = HTTPTokenEndpointTransport(client: client)

        func provider(clientID: String) throws -> OAuth2ClientCredentialsTokenProvider {
            let settings = OAuth2ClientCredentialsSettings(
                tokenURL: try PeerURL("http://127.0.0.1:\(port)/token"), clientID: clientID,
                privateKey: SecretValue(bytes: Array(try Data(contentsOf: key)), origin: key.path), scope: "system/CarePlan.write")
            return try OAuth2ClientCredentialsTokenProvider(settings: settings, tls: TLSSettings(), transport: transport)
        }

        let good = try provider(clientID: "caresync-client")
        #expect(try await good.accessToken()?.value == "issued-token-1")
        #expect(try await good.accessToken()?.value == "issued-token-1", "cached")
        await good.invalidate()
        #expect(try await good.accessToken()?.value == "issued-token-2", "a fresh assertion (new jti) is accepted")
        _ = try await server.waitForLine { $0 == "token request: ok" }

        let stranger = try provider(clientID: "someone-else")
        do {
            _ = try await stranger.accessToken()
            Issue.record("a token was issued to the wrong client")
        } catch {
            #expect(error.code == .tokenRejected)
            #expect(error.httpStatus == 401)
            #expect(error.message.contains("invalid_client"))
            #expect(!error.isRetriable)
        }
        #expect(server.output.filter { $0 == "token request: ok" }.count == 2, "\(server.output)")

        server.send(SIGKILL)
        _ = try await server.waitForExit()
        await good.invalidate()
        do {
            _ = try await good.accessToken()
            Issue.record("a token came from a stopped endpoint")
        } catch {
            #expect(error.code == .tokenEndpointUnavailable)
            #expect(error.isRetriable)
        }
    }
}
