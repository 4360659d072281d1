import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import Testing

/// `caresync peers` and `caresync peers probe` against FHIR peers on loopback (a small Python server,
/// over TLS with a CA made by the openssl command line).
@Suite("caresync peers and peers probe")
struct PeersCommandTests {
    /// A FHIR peer child process (`Helpers/fhir_peer.py`).
    final class Peer: Sendable {
        let process: ChildProcess
        let port: Int

        init(_ arguments: [String]) async throws {
            process = try ChildProcess(
                executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3", "-u", Helper.path("fhir_peer.py")] + arguments)
            let line = try await process.waitForLine { $0.hasPrefix("LISTENING ") }
            port = Int(line.dropFirst("LISTENING ".count))!
        }

        var requests: [String] { process.output.filter { $0.hasPrefix("REQUEST ") } }

        deinit { process.send(SIGKILL) }
    }

    /// A CA and a server certificate for localhost / 127.0.0.1, made by the openssl command line.
    struct Certificates {
        let ca: String
        let certificate: String
        let key: String

        init(in directory: TemporaryDirectory) async throws {
            let base = directory.path("tls").path
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            ca = base + "/ca.pem"
            certificate = base + "/server.pem"
            key = base + "/server.key"
            let script = """
                set -e
                cd '\(base)'
                openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
                  -subj '/CN=caresync cli test CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
                printf 'basicConstraints=CA:FALSE\\nsubjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
                openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
                openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
                """
            guard try await Tool.run("/bin/sh", ["-c", script]).status == 0 else { throw CertificateError() }
        }

        struct CertificateError: Error {}
    }

    static let token = "probe-T0ken_value.123"

    /// A configuration: the hub over TLS with a bearer token, trust-a over plain http on loopback with
    /// no auth, trust-b on a port nothing listens on.
    func configuration(_ fixture: StateFixture, tls: Certificates, hubPort: Int, trustAPort: Int, caFile: Bool = true, token: String = token)
        throws -> String
    {
        try Data((token + "\n").utf8).write(to: fixture.directory.path("hub-token"))
        let path = fixture.directory.path("caresync.yaml")
        try """
            state:
              path: state
            sync:
              resourceTypes: [CarePlan, Encounter]
            hub:
              name: hub
              ods: QWE
              baseURL: https://localhost:\(hubPort)/fhir
              auth: {type: bearer, tokenFile: hub-token}
              tls: {\(caFile ? "caFile: \(tls.ca)" : "minVersion: \"1.2\"")}
            providers:
              - name: trust-a
                ods: RX1
                baseURL: http://127.0.0.1:\(trustAPort)/fhir
                mode: read-write
                auth: {type: none}
              - name: trust-b
                ods: RX2
                baseURL: http://127.0.0.1:9/fhir
                mode: read-only
                auth: {type: none}
            """.write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }

    @Test("probe over TLS with a bearer token: TLS, HTTP and FHIR versions, latency, auth working; exit 0")
    func probeHealthy() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let tls = try await Certificates(in: fixture.directory)
        let hub = try await Peer(["--cert", tls.certificate, "--key", tls.key, "--token", Self.token])
        let config = try configuration(fixture, tls: tls, hubPort: hub.port, trustAPort: 9)

        let result = try await caresync(["peers", "probe", "hub", "--config", config])
        #expect(result.status == 0, "\(result.output) \(result.errors)")
        #expect(result.output[0] == "probe hub (https://localhost:\(hub.port)/fhir)")
        let text = result.text
        #expect(text.contains("  token            ok       bearer token read from "), "\(text)")
        #expect(text.contains("  connect          ok       TLSv1.3, HTTP/1.1, connect "))
        #expect(text.contains("  metadata         ok       CapabilityStatement from fhir-peer.py 1.0 in "))
        #expect(text.contains("  fhir-version     ok       4.0.1 (R4)"))
        #expect(text.contains("  authorised-read  ok       GET CarePlan?_count=1 answered 200 with the credentials"))
        #expect(result.output.last?.hasPrefix("result: ok — TLS TLSv1.3, HTTP/1.1, FHIR 4.0.1, latency ") == true)
        #expect(result.output.last?.hasSuffix(" ms, auth working") == true)
        #expect(!text.contains(Self.token), "the token is never printed")
        #expect(hub.requests.contains("REQUEST GET /fhir/CarePlan?_count=1 Bearer_\(Self.token)"), "\(hub.requests)")

        let json = try await caresync(["peers", "probe", "hub", "--json", "--config", config])
        #expect(json.status == 0)
        try await expectValid(json.text, schema: "probe.schema.json")
        let document = try parseJSON(json.text)
        #expect(document["tlsVersion"] == "TLSv1.3")
        #expect(document["fhirVersion"] == "4.0.1")
        #expect(document["auth"]?["working"] == true)
    }

    @Test("probe against caresync-store, the project's FHIR R4 server: metadata, FHIR 4.0.1, an open read")
    func probeStore() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let store = try ChildProcess(
            executable: TestPaths.product("caresync-store"),
            arguments: ["--listen", "127.0.0.1:0", "--db", fixture.directory.path("hub.sqlite").path])
        defer { store.send(SIGKILL) }
        let line = try await store.waitForLine { $0.hasPrefix("listening on ") }
        let address = String(line.dropFirst("listening on ".count))
        let config = fixture.directory.path("caresync.yaml")
        try """
            state: {path: state}
            hub: {name: hub, ods: QWE, baseURL: "http://\(address)/fhir", auth: {type: none}}
            providers:
              - {name: trust-a, ods: RX1, baseURL: "http://127.0.0.1:9/fhir", mode: read-write, auth: {type: none}}
            """.write(to: config, atomically: true, encoding: .utf8)

        let result = try await caresync(["peers", "probe", "hub", "--json", "--config", config.path])
        #expect(result.status == 0, "\(result.text) \(result.errors)")
        try await expectValid(result.text, schema: "probe.schema.json")
        let document = try parseJSON(result.text)
        #expect(document["fhirVersion"] == "4.0.1")
        #expect(document["tlsVersion"] == .null)
        #expect(document["httpVersion"] == "HTTP/1.1")
        #expect(document["checks"]?.arrayValue?.map { $0["outcome"] } == ["skipped", "ok", "ok", "ok", "ok"])
    }

    @Test("a refused token, a wrong FHIR version, nothing listening, an untrusted certificate: each check says why, exit 1")
    func probeProblems() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let tls = try await Certificates(in: fixture.directory)
        let hub = try await Peer(["--cert", tls.certificate, "--key", tls.key, "--token", "another-token"])
        let dstu3 = try await Peer(["--fhir-version", "3.0.2"])
        let config = try configuration(fixture, tls: tls, hubPort: hub.port, trustAPort: dstu3.port)

        let refused = try await caresync(["peers", "probe", "hub", "--config", config])
        #expect(refused.status == 1)
        #expect(
            refused.text.contains(
                "  authorised-read  FAILED   the peer refused the token: HTTP 401: The access token is missing, expired or not valid for this server"),
            "\(refused.text)")
        #expect(refused.output.last?.hasSuffix("auth NOT working") == true)
        let refusedJSON = try await caresync(["peers", "probe", "hub", "--json", "--config", config])
        try await expectValid(refusedJSON.text, schema: "probe.schema.json")
        #expect(try parseJSON(refusedJSON.text)["auth"]?["working"] == false)

        let version = try await caresync(["peers", "probe", "trust-a", "--config", config])
        #expect(version.status == 1)
        #expect(version.text.contains("  connect          ok       plain HTTP (loopback), HTTP/1.1"), "\(version.text)")
        #expect(version.text.contains("  fhir-version     FAILED   the peer speaks FHIR 3.0.2; caresync needs 4.0.1 (R4) and refuses this peer"))
        #expect(version.text.contains("  authorised-read  ok       GET CarePlan?_count=1 answered 200 without credentials"))

        let down = try await caresync(["peers", "probe", "trust-b", "--json", "--config", config])
        #expect(down.status == 1)
        try await expectValid(down.text, schema: "probe.schema.json")
        let checks = try #require(try parseJSON(down.text)["checks"]?.arrayValue)
        #expect(checks[1]["name"] == "connect")
        #expect(checks[1]["outcome"] == "failed")
        #expect(checks[1]["detail"]?.stringValue?.contains("(cannot-connect)") == true, "\(checks[1])")
        #expect(checks.dropFirst(2).allSatisfy { $0["outcome"] == "skipped" })

        let untrustedConfig = try configuration(fixture, tls: tls, hubPort: hub.port, trustAPort: dstu3.port, caFile: false)
        let untrusted = try await caresync(["peers", "probe", "hub", "--config", untrustedConfig])
        #expect(untrusted.status == 1)
        #expect(untrusted.text.contains("(certificate-untrusted)"), "\(untrusted.text)")
    }

    @Test("peers: the configuration joined with the state; a peer only in the state is marked; --json matches")
    func list() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()
        let store = try await fixture.openWriter()
        try await store.registerPeer(PeerDescriptor(name: "old-trust", ods: "RX9", baseURL: "https://old.example.nhs.uk/fhir", mode: .readOnly))
        store.close()
        let tls = try await Certificates(in: fixture.directory)
        let config = try configuration(fixture, tls: tls, hubPort: 9, trustAPort: 9)

        let result = try await caresync(["peers", "--config", config])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output[0].hasPrefix("NAME       ROLE      ODS  MODE        BASE URL"), "\(result.output)")
        #expect(result.output[1].hasPrefix("hub        hub       QWE  hub         https://localhost:9/fhir"))
        #expect(result.output[1].contains("  bearer  idle  "))
        #expect(result.output[2].contains("  none    backing off  "), "\(result.output[2])")
        #expect(result.output[3].contains("unreachable"))
        #expect(result.output[4].hasPrefix("old-trust  provider  RX9  read-only"))
        #expect(result.output[4].contains("(not configured)"))

        let json = try await caresync(["peers", "--json", "--config", config])
        try await expectValid(json.text, schema: "peers.schema.json")
        let peers = try #require(try parseJSON(json.text)["peers"]?.arrayValue)
        #expect(peers.compactMap { $0["name"]?.stringValue } == ["hub", "trust-a", "trust-b", "old-trust"])
        #expect(peers[3]["configured"] == false)
        #expect(peers[0]["tls"] == "TLS >= 1.2, own CA")
        #expect(peers[1]["scope"] == "held-patients")
    }

    @Test("an unloadable configuration: peers warns and lists the state; probe needs it and exits 2")
    func unloadableConfiguration() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        let config = fixture.directory.path("caresync.yaml")
        try """
            state: {path: state}
            hub: {name: hub, ods: QWE, baseURL: "https://hub.example.nhs.uk/fhir", auth: {type: bearer, tokenFile: "credential:hub-token"}}
            providers:
              - {name: trust-a, ods: RX1, baseURL: "https://a.example.nhs.uk/fhir", mode: read-write, auth: {type: none}}
            """.write(to: config, atomically: true, encoding: .utf8)

        let list = try await caresync(["peers", "--config", config.path])
        #expect(list.status == 0, "\(list.errors)")
        #expect(list.errors.count == 1)
        #expect(list.errors.first?.hasPrefix("caresync peers: warning: the configuration \(config.path) cannot be used: hub.auth.tokenFile: ") == true, "\(list.errors)")
        #expect(list.output.count == 4)

        let probe = try await caresync(["peers", "probe", "hub", "--config", config.path])
        #expect(probe.status == 2)
        #expect(probe.errors.count == 1)
        #expect(probe.errors.first?.contains("CREDENTIALS_DIRECTORY") == true, "\(probe.errors)")

        // With the credential in place the configuration loads; an unknown peer is still bad input.
        try Data("hub-token-value\n".utf8).write(to: fixture.directory.path("hub-token"))
        let unknown = try await caresync(
            ["peers", "probe", "trust-z", "--config", config.path], environment: ["CREDENTIALS_DIRECTORY": fixture.directory.url.path])
        #expect(unknown.status == 2)
        #expect(unknown.errors == ["caresync peers probe: no peer named 'trust-z' in the configuration (peers: hub, trust-a)"])
    }
}
