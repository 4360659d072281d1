import CaresyncDaemon
import CaresyncHTTP
import CaresyncTestSupport
import FHIRModel
import Foundation
import Logging
import Testing

/// A directory with a configuration file and the files it names: an RSA key for the hub's JWT, a
/// certificate and key for a provider's mTLS, a bearer token in a credentials directory.
struct ConfigurationFixture {
    let directory: TemporaryDirectory
    let credentials: URL
    static let token = "s3cr3t-T0ken.value_~+/="

    init() async throws {
        directory = try TemporaryDirectory(prefix: "caresync-config")
        try await TestKeys.rsa(in: directory, name: "keys/hub-jwt.pem")
        try await TestKeys.certificate(in: directory, name: "tls/riverside")
        credentials = directory.path("credentials")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
        try (Self.token + "\n").write(to: credentials.appendingPathComponent("northfield-token"), atomically: true, encoding: .utf8)
        try directory.write("policy.json", "{}")
    }

    /// The environment the loader sees: the credentials directory and `extra`.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        ["CREDENTIALS_DIRECTORY": credentials.path].merging(extra) { $1 }
    }

    /// Writes `yaml` as `caresync.yaml` and loads it.
    func load(_ yaml: String, environment extra: [String: String] = [:], overrides: [String: String] = [:]) async throws(ConfigurationError)
        -> CaresyncConfiguration
    {
        let path = try! directory.write("caresync.yaml", yaml)
        return try await ConfigurationLoader(filePath: path, environment: environment(extra), overrides: overrides).load()
    }

    /// The problems loading `yaml` reports (empty when it loads).
    func problems(_ yaml: String, environment extra: [String: String] = [:]) async -> [ConfigurationProblem] {
        do {
            _ = try await load(yaml, environment: extra)
            return []
        } catch {
            return error.problems
        }
    }

    static let complete = """
        state:
          path: state
        sync:
          interval: 45s
          resourceTypes: [CarePlan, RelatedPerson]
          pageSize: 250
          clockSkewMargin: 1500ms
        policy: policy.json
        hub:
          name: icb-hub
          ods: QWE
          baseURL: https://hub.example.nhs.uk/fhir/R4/
          auth:
            type: oauth2-client-credentials
            tokenURL: https://auth.example.nhs.uk/oauth2/token
            clientID: caresync-client
            privateKeyFile: keys/hub-jwt.pem
            keyID: key-1
            scope: system/CarePlan.write
          tls:
            caFile: tls/riverside.crt
            pinnedPublicKey: sha256//8Rw90Ej3Ttt8RRkrg+WYDS9n7IS03bk5bjP/UXPtaY8=
            minVersion: 1.3
        providers:
          - name: riverside-acute
            ods: RAX
            baseURL: https://fhir.riverside.example.nhs.uk/R4
            mode: read-write
            scope: all-patients
            auth:
              type: mtls
            tls:
              clientCert: tls/riverside.crt
              clientKey: tls/riverside.key
          - name: northfield
            ods: RYX
            baseURL: http://127.0.0.1:8081/fhir
            mode: read-only
            auth:
              type: bearer
              tokenFile: credential:northfield-token
        metrics:
          enabled: true
          listen: 127.0.0.1:9464
          allowNonLoopback: false
        log:
          level: debug
        """

    static let minimal = """
        hub:
          name: hub
          ods: QWE
          baseURL: http://127.0.0.1:8080/fhir
          auth: {type: none}
        providers:
          - name: p1
            ods: RAX
            baseURL: http://localhost:8081/fhir
            mode: read-write
            auth: {type: none}
        """
}

@Suite("Configuration loading")
struct ConfigurationLoaderTests {
    @Test("every key of a complete file arrives typed")
    func completeFile() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let configuration = try await fixture.load(ConfigurationFixture.complete)
        let base = fixture.directory.url.path
        #expect(configuration.state.path == base + "/state")
        #expect(configuration.sync.interval == .seconds(45))
        #expect(configuration.sync.resourceTypes == [.carePlan, .relatedPerson])
        #expect(configuration.sync.pageSize == 250)
        #expect(configuration.sync.clockSkewMargin == .milliseconds(1500))
        #expect(configuration.policy == .file(FileReference(path: base + "/policy.json")))
        #expect(configuration.hub.name == "icb-hub")
        #expect(configuration.hub.baseURL.text == "https://hub.example.nhs.uk/fhir/R4")
        guard case .oauth2ClientCredentials(let oauth) = configuration.hub.auth else {
            Issue.record("hub auth is \(configuration.hub.auth.typeName)")
            return
        }
        #expect(oauth.tokenURL.text == "https://auth.example.nhs.uk/oauth2/token")
        #expect(oauth.clientID == "caresync-client")
        #expect(oauth.keyID == "key-1")
        #expect(oauth.scope == "system/CarePlan.write")
        #expect(String(decoding: oauth.privateKey.bytes, as: UTF8.self).contains("BEGIN PRIVATE KEY"))
        #expect(configuration.hub.tls.minimumVersion == .v1_3)
        #expect(configuration.hub.tls.caFile?.path == base + "/tls/riverside.crt")
        #expect(configuration.hub.tls.pinnedPublicKey?.curlValue == "sha256//8Rw90Ej3Ttt8RRkrg+WYDS9n7IS03bk5bjP/UXPtaY8=")
        #expect(configuration.providers.count == 2)
        let riverside = configuration.providers[0]
        #expect(riverside.mode == .readWrite)
        #expect(riverside.scope == .allPatients)
        #expect(riverside.auth == .mutualTLS)
        #expect(riverside.tls.clientKey?.path == base + "/tls/riverside.key")
        #expect(riverside.tls.minimumVersion == .v1_2)
        let northfield = configuration.providers[1]
        #expect(northfield.mode == .readOnly)
        #expect(northfield.scope == .heldPatients)
        #expect(northfield.baseURL.isLoopback)
        #expect(northfield.auth == .bearer(token: SecretValue(bytes: Array((ConfigurationFixture.token + "\n").utf8), origin: "credential:northfield-token")))
        #expect(configuration.metrics == MetricsSettings(enabled: true, listen: ListenAddress(host: "127.0.0.1", port: 9464), allowNonLoopback: false))
        #expect(configuration.log.level == .debug)
    }

    @Test("a minimal file takes the defaults")
    func defaults() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let configuration = try await fixture.load(ConfigurationFixture.minimal, environment: ["STATE_DIRECTORY": "/var/lib/caresync-test:/other"])
        #expect(configuration.state.path == "/var/lib/caresync-test")
        #expect(configuration.sync == SyncSettings())
        #expect(configuration.sync.resourceTypes == ResourceType.synchronised)
        #expect(configuration.policy == .embedded)
        #expect(configuration.metrics == MetricsSettings())
        #expect(configuration.log.level == .info)
        #expect(configuration.providers[0].scope == .heldPatients)
        #expect(configuration.hub.tls == TLSSettings())
    }

    @Test("CARESYNC_ environment variables override the file, command-line overrides beat both")
    func environmentOverrides() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let configuration = try await fixture.load(
            ConfigurationFixture.complete,
            environment: [
                "CARESYNC_SYNC_INTERVAL": "10",
                "CARESYNC_SYNC_PAGE_SIZE": "50",
                "CARESYNC_SYNC_RESOURCE_TYPES": "Encounter,CarePlan",
                "CARESYNC_HUB_BASE_URL": "https://other-hub.example.nhs.uk/fhir",
                "CARESYNC_HUB_AUTH_CLIENT_ID": "from-env",
                "CARESYNC_PROVIDERS_1_MODE": "read-write",
                "CARESYNC_METRICS_LISTEN": "0.0.0.0:9100",
                "CARESYNC_METRICS_ALLOW_NON_LOOPBACK": "true",
                "CARESYNC_LOG_LEVEL": "warning",
                "CARESYNC_STATE_PATH": "/from/env",
            ],
            overrides: ["state.path": "/from/command-line"])
        #expect(configuration.sync.interval == .seconds(10))
        #expect(configuration.sync.pageSize == 50)
        #expect(configuration.sync.resourceTypes == [.encounter, .carePlan])
        #expect(configuration.hub.baseURL.text == "https://other-hub.example.nhs.uk/fhir")
        guard case .oauth2ClientCredentials(let oauth) = configuration.hub.auth else {
            Issue.record("hub auth changed type")
            return
        }
        #expect(oauth.clientID == "from-env")
        #expect(configuration.providers[1].mode == .readWrite)
        #expect(configuration.metrics.listen == ListenAddress(host: "0.0.0.0", port: 9100))
        #expect(configuration.log.level == .warning)
        #expect(configuration.state.path == "/from/command-line")
    }

    @Test("environment variables that name no key, or a value of the wrong type, are reported under their names")
    func badEnvironment() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let problems = await fixture.problems(
            ConfigurationFixture.minimal,
            environment: [
                "CARESYNC_SYNC_INTERVALL": "10s",
                "CARESYNC_PROVIDERS_3_NAME": "ghost",
                "CARESYNC_SYNC_PAGE_SIZE": "many",
                "CARESYNC_PROVIDERS_0_BASE_URL": "http://10.0.0.7/fhir",
            ])
        #expect(problems.contains { $0.keyPath == "CARESYNC_SYNC_INTERVALL" && $0.code == .unknownEnvironmentVariable })
        #expect(problems.contains { $0.keyPath == "CARESYNC_PROVIDERS_3_NAME" && $0.code == .unknownEnvironmentVariable })
        #expect(problems.contains { $0.keyPath == "sync.pageSize" && $0.message.contains("CARESYNC_SYNC_PAGE_SIZE") })
        #expect(
            problems.contains {
                $0.description == "providers[0].baseURL: plain http is only allowed to loopback addresses (from CARESYNC_PROVIDERS_0_BASE_URL)"
            })
        #expect(problems.count == 4, "\(problems)")
    }

    @Test("plain http is refused except to loopback addresses")
    func plainHTTP() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let yaml = ConfigurationFixture.minimal + """

              - name: p2
                ods: RBX
                baseURL: http://fhir.example.nhs.uk/R4
                mode: read-only
                auth: {type: none}
            """
        let problems = await fixture.problems(yaml)
        #expect(problems.map(\.description) == ["providers[1].baseURL: plain http is only allowed to loopback addresses"])
        #expect(problems.first?.code == .insecureURL)

        for loopback in ["http://127.0.0.1:1/fhir", "http://127.8.9.10/fhir", "http://localhost/fhir", "http://[::1]:8080/fhir", "HTTPS://Example.org/"] {
            #expect(throws: Never.self, "\(loopback)") { try PeerURL(loopback) }
        }
        for refused in ["http://10.0.0.1/fhir", "http://[::2]/fhir", "http://localhost.example.org/", "http://0.0.0.0/"] {
            #expect("\(refused)", performing: { try PeerURL(refused) }, throws: { ($0 as? PeerURL.Problem)?.code == .insecureURL })
        }
        for invalid in ["ftp://x.org/", "https://user:pw@x.org/", "https://x.org/fhir?x=1", "https://x.org:70000/", "hub.example.org/fhir", "https:///fhir"] {
            #expect(throws: PeerURL.Problem.self, "\(invalid)") { try PeerURL(invalid) }
        }
    }

    @Test("every problem in a file is reported with its key path, not only the first")
    func everyProblem() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let yaml = """
            sync:
              interval: 0s
              pageSize: 5000
              resourceTypes: [CarePlan, Patient, Observation]
              clockSkewMargin: soon
            hub:
              name: icb hub
              ods: qwe
              baseURL: https://hub.example.nhs.uk/fhir
              auth:
                type: bearer
            providers:
              - name: p1
                ods: RAX
                baseURL: https://p1.example.nhs.uk/fhir
                mode: read-sometimes
                auth:
                  type: oauth2-client-credentials
                  tokenURL: http://auth.example.nhs.uk/token
                  clientID: 42
                  privateKeyFile: missing-key.pem
                tls:
                  clientCert: tls/riverside.crt
                  minVersion: "1.0"
              - name: p1
                ods: RAX
                baseURL: https://p2.example.nhs.uk/fhir
                mode: read-only
                auth: {type: mtls}
            metrics:
              listen: 192.0.2.1:9464
            log:
              level: verbose
            """
        let problems = await fixture.problems(yaml)
        let byKey = Dictionary(grouping: problems, by: \.keyPath)
        let expected: [String: ConfigurationProblem.Code] = [
            "sync.interval": .invalidValue,
            "sync.pageSize": .invalidValue,
            "sync.resourceTypes": .invalidValue,
            "sync.clockSkewMargin": .wrongType,
            "hub.name": .invalidValue,
            "hub.ods": .invalidValue,
            "hub.auth.tokenFile": .missing,
            "providers[0].mode": .invalidValue,
            "providers[0].auth.tokenURL": .insecureURL,
            "providers[0].auth.clientID": .wrongType,
            "providers[0].auth.privateKeyFile": .unreadableReference,
            "providers[0].tls.minVersion": .invalidValue,
            "providers[0].tls.clientKey": .missing,
            "providers[1].name": .duplicatePeer,
            "providers[1].ods": .duplicatePeer,
            "providers[1].tls": .missing,
            "metrics.listen": .nonLoopbackListen,
            "log.level": .invalidValue,
        ]
        for (key, code) in expected {
            #expect(byKey[key]?.contains { $0.code == code } == true, "expected \(code) at \(key); got \(byKey[key] ?? [])")
        }
        #expect(byKey["sync.resourceTypes"]?.count == 2, "Patient and Observation are both named")
        let unexpected = Set(byKey.keys).subtracting(expected.keys)
        #expect(unexpected.isEmpty, "unexpected problems: \(unexpected.sorted())")
    }

    @Test("unknown keys are errors at every level, with a suggestion for near misses")
    func unknownKeys() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let yaml = """
            sync:
              intervall: 30s
            hub:
              name: hub
              ods: QWE
              baseURL: https://hub.example.nhs.uk/fhir
              auth:
                type: none
                tokenFile: token.txt
              tls:
                verify: false
            providers:
              - name: p1
                ods: RAX
                baseURL: https://p1.example.nhs.uk/fhir
                mode: read-write
                auth: {type: none}
                colour: blue
            debug: true
            """
        let problems = await fixture.problems(yaml)
        #expect(Set(problems.map(\.keyPath)) == ["sync.intervall", "hub.auth.tokenFile", "hub.tls.verify", "providers[0].colour", "debug"])
        #expect(problems.allSatisfy { $0.code == .unknownKey })
        #expect(problems.first { $0.keyPath == "sync.intervall" }?.message.contains("did you mean interval?") == true)
        #expect(problems.first { $0.keyPath == "hub.auth.tokenFile" }?.message == "not used by auth type none")
    }

    @Test("secrets come from $CREDENTIALS_DIRECTORY; a missing credential is named")
    func credentials() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let yaml = ConfigurationFixture.minimal.replacingOccurrences(
            of: "auth: {type: none}\nproviders:",
            with: "auth: {type: bearer, tokenFile: \"credential:hub-token\"}\nproviders:")
        #expect(yaml != ConfigurationFixture.minimal)
        let missing = await fixture.problems(yaml)
        #expect(missing.map(\.description) == ["hub.auth.tokenFile: credential \"hub-token\" is not in $CREDENTIALS_DIRECTORY"])

        try "hub.token-value\n".write(to: fixture.credentials.appendingPathComponent("hub-token"), atomically: true, encoding: .utf8)
        let configuration = try await fixture.load(yaml)
        #expect(configuration.hub.auth == .bearer(token: SecretValue(bytes: Array("hub.token-value\n".utf8), origin: "credential:hub-token")))

        var withoutDirectory: [ConfigurationProblem] = []
        do {
            _ = try await ConfigurationLoader(filePath: fixture.directory.path("caresync.yaml").path, environment: [:]).load()
        } catch {
            withoutDirectory = error.problems
        }
        #expect(withoutDirectory.map(\.code) == [.credentialMissing])

        try "two words\n".write(to: fixture.credentials.appendingPathComponent("hub-token"), atomically: true, encoding: .utf8)
        let notAToken = await fixture.problems(yaml)
        #expect(notAToken.map(\.description) == ["hub.auth.tokenFile: credential:hub-token does not hold a bearer token (RFC 6750 token characters only)"])
        #expect(!notAToken.description.contains("two words"), "the secret is never echoed")
    }

    @Test("a private key that cannot sign RS512 is refused when the configuration loads")
    func badPrivateKey() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        try await TestKeys.rsa(bits: 1024, in: fixture.directory, name: "keys/hub-jwt.pem")
        let problems = await fixture.problems(ConfigurationFixture.complete)
        #expect(problems.map(\.keyPath) == ["hub.auth.privateKeyFile"])
        #expect(problems.first?.code == .invalidKey)
        #expect(problems.first?.message.contains("1024 bits") == true)
    }

    @Test("the file itself: missing, not YAML, duplicate keys, wrong shapes")
    func fileProblems() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        do {
            _ = try await ConfigurationLoader(filePath: fixture.directory.path("absent.yaml").path, environment: [:]).load()
            Issue.record("a missing file loaded")
        } catch {
            #expect(error.problems.map(\.code) == [.unreadableFile])
            #expect(error.problems.first?.message.contains("No such file") == true)
        }
        #expect(await fixture.problems("hub: [unclosed").map(\.code) == [.syntax])
        #expect(await fixture.problems("- a\n- b\n").map(\.description).contains("<file>: expected a mapping of keys, found a list"))
        #expect(await fixture.problems(ConfigurationFixture.minimal + "\nhub: {}\n").map(\.code) == [.duplicateKey])
        let shapes = await fixture.problems(
            ConfigurationFixture.minimal + """

                sync: 30s
                metrics:
                  enabled: "yes please"
                  listen: 9464
                """)
        #expect(Set(shapes.map(\.keyPath)) == ["sync", "metrics.enabled", "metrics.listen"])
        #expect(shapes.allSatisfy { $0.code == .wrongType })
    }

    @Test("a configuration built in code is checked by the same rules")
    func builtInCode() throws {
        let hub = PeerConfiguration(name: "hub", ods: "QWE", baseURL: try PeerURL("http://127.0.0.1:9000/fhir"))
        let provider = ProviderConfiguration(
            peer: PeerConfiguration(name: "p1", ods: "RAX", baseURL: try PeerURL("http://127.0.0.1:9001/fhir")), mode: .readWrite)
        let good = CaresyncConfiguration(state: StateSettings(path: "/tmp/x"), hub: hub, providers: [provider])
        #expect(good.problems().isEmpty)
        #expect(try good.validated() == good)

        var bad = good
        bad.providers.append(provider)
        bad.sync.pageSize = 0
        bad.metrics.listen = ListenAddress(host: "0.0.0.0", port: 9464)
        bad.providers[0].peer.auth = .mutualTLS
        #expect(
            Set(bad.problems().map(\.description)) == [
                "sync.pageSize: the page size must be from 1 to 1000 (found 0)",
                "providers[0].tls: auth type mtls needs tls.clientCert and tls.clientKey",
                "providers[1].name: \"p1\" is already the name of providers[0]",
                "providers[1].ods: RAX is already the ODS code of providers[0]",
                "metrics.listen: 0.0.0.0:9464 is not a loopback address; set metrics.allowNonLoopback: true to expose metrics beyond this machine",
            ])
        #expect(throws: ConfigurationError.self) { try bad.validated() }
    }

    @Test("secret values never print")
    func secretsDoNotPrint() {
        let secret = SecretValue("top-secret-token", origin: "credential:x")
        let auth = AuthConfiguration.bearer(token: secret)
        #expect(!"\(secret)".contains("top-secret"))
        #expect(!String(reflecting: secret).contains("top-secret"))
        #expect(!"\(auth)".contains("top-secret"))
    }
}
