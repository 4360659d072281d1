import CaresyncDaemon
import CaresyncTestSupport
import FHIRJSON
import Foundation
import Testing

/// `Schemas/config.schema.json` checked by an independent validator (Python `jsonschema` after YAML → JSON
/// with PyYAML) against the example configuration, and against the Swift loader on good and bad samples.
@Suite("Configuration schema")
struct ConfigurationSchemaTests {
    static let schema = TestPaths.repositoryRoot.appendingPathComponent("Schemas/config.schema.json").path
    static let example = TestPaths.repositoryRoot.appendingPathComponent("Deploy/caresync.example.yaml").path

    static let validatorScript = """
        import json, sys, yaml, jsonschema
        with open(sys.argv[1]) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        result = {}
        for path in sys.argv[2:]:
            with open(path) as f:
                document = yaml.safe_load(f)
            document = json.loads(json.dumps(document))
            result[path] = [error.json_path + ": " + error.message for error in validator.iter_errors(document)]
        print(json.dumps(result))
        """

    /// The schema's verdict on each file: the errors, empty when valid.
    static func pythonVerdicts(_ paths: [String]) async throws -> [String: [String]] {
        let result = try await Tool.run("python3", ["-c", validatorScript, schema] + paths)
        try #require(result.status == 0, "python3 jsonschema failed: \(result.errors)")
        let json = try JSON.parse(result.output)
        var verdicts: [String: [String]] = [:]
        for member in json.objectValue?.members ?? [] {
            verdicts[member.key] = member.value.arrayValue?.compactMap(\.stringValue) ?? []
        }
        return verdicts
    }

    /// Credentials the example names, made for the test.
    static func exampleCredentials(in directory: TemporaryDirectory) async throws -> URL {
        let credentials = directory.path("credentials")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
        try await TestKeys.rsa(in: directory, name: "credentials/hub-jwt-key")
        try await TestKeys.certificate(in: directory, name: "riverside")
        try FileManager.default.copyItem(at: directory.path("riverside.crt"), to: credentials.appendingPathComponent("riverside-client-cert"))
        try FileManager.default.copyItem(at: directory.path("riverside.key"), to: credentials.appendingPathComponent("riverside-client-key"))
        try FileManager.default.copyItem(at: directory.path("riverside.crt"), to: credentials.appendingPathComponent("riverside-ca"))
        try "northfield-token-value\n".write(to: credentials.appendingPathComponent("northfield-token"), atomically: true, encoding: .utf8)
        return credentials
    }

    @Test("Deploy/caresync.example.yaml is valid for the schema and for the loader")
    func example() async throws {
        let verdicts = try await Self.pythonVerdicts([Self.example])
        #expect(verdicts[Self.example] == [], "\(verdicts)")

        let directory = try TemporaryDirectory(prefix: "caresync-example")
        defer { directory.remove() }
        let credentials = try await Self.exampleCredentials(in: directory)
        let configuration = try await ConfigurationLoader(filePath: Self.example, environment: ["CREDENTIALS_DIRECTORY": credentials.path]).load()
        #expect(configuration.providers.map(\.name) == ["riverside-acute", "northfield-community"])
        #expect(configuration.hub.auth.typeName == "oauth2-client-credentials")
    }

    @Test("the example sets every key the loader knows")
    func exampleHasEveryKey() throws {
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
        let keys = [
            "state:", "path:", "sync:", "interval:", "resourceTypes:", "pageSize:", "clockSkewMargin:", "policy:", "hub:", "name:",
            "ods:", "baseURL:", "auth:", "type:", "tokenURL:", "clientID:", "privateKeyFile:", "keyID:", "scope:", "tokenFile:", "tls:",
            "caFile:", "clientCert:", "clientKey:", "pinnedPublicKey:", "minVersion:", "providers:", "mode:", "metrics:", "enabled:",
            "listen:", "allowNonLoopback:", "log:", "level:",
        ]
        for key in keys {
            #expect(text.contains(key), "the example does not show \(key)")
        }
    }

    /// Samples on which the schema and the loader must agree.
    static let samples: [(name: String, valid: Bool, yaml: String)] = {
        let minimal = ConfigurationFixture.minimal
        func replacing(_ old: String, _ new: String) -> String {
            precondition(minimal.contains(old), old)
            return minimal.replacingOccurrences(of: old, with: new)
        }
        let hubAuth = "auth: {type: none}\nproviders:"
        let providerAuth = "    auth: {type: none}"
        return [
            ("minimal", true, minimal),
            ("complete", true, ConfigurationFixture.complete),
            ("numeric durations", true, minimal + "\nsync: {interval: 1.5, clockSkewMargin: 0}\n"),
            ("unit durations", true, minimal + "\nsync: {interval: 250ms, clockSkewMargin: 2m}\n"),
            ("numeric TLS version", true, replacing(hubAuth, "auth: {type: none}\n  tls: {minVersion: 1.2}\nproviders:")),
            ("metrics exposed on purpose", true, minimal + "\nmetrics: {listen: 0.0.0.0:9464, allowNonLoopback: true}\n"),
            ("metrics on IPv6 loopback", true, minimal + "\nmetrics: {listen: \"[::1]:9464\", enabled: false}\n"),
            ("IPv6 loopback peer", true, replacing("http://localhost:8081/fhir", "http://[::1]:8081/fhir")),
            (
                "two pinned keys", true,
                replacing(
                    hubAuth,
                    "auth: {type: none}\n  tls: {pinnedPublicKey: \"sha256//8Rw90Ej3Ttt8RRkrg+WYDS9n7IS03bk5bjP/UXPtaY8=;sha256//YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=\"}\nproviders:"
                )
            ),
            ("bearer token file", true, replacing(hubAuth, "auth: {type: bearer, tokenFile: credentials/northfield-token}\nproviders:")),
            ("fan-out scope", true, replacing("mode: read-write", "mode: read-write\n    scope: none")),
            ("yes is a boolean", true, minimal + "\nmetrics: {enabled: yes}\n"),

            ("unknown top-level key", false, minimal + "\ncolour: blue\n"),
            ("key of another auth type", false, replacing(hubAuth, "auth: {type: none, tokenFile: policy.json}\nproviders:")),
            ("plain http to a remote host", false, replacing("http://localhost:8081/fhir", "http://fhir.example.org/fhir")),
            ("URL with a query", false, replacing("http://localhost:8081/fhir", "https://fhir.example.org/fhir?_format=json")),
            ("page size zero", false, minimal + "\nsync: {pageSize: 0}\n"),
            ("page size too large", false, minimal + "\nsync: {pageSize: 1001}\n"),
            ("page size as text", false, minimal + "\nsync: {pageSize: \"100\"}\n"),
            ("zero interval", false, minimal + "\nsync: {interval: 0s}\n"),
            ("negative interval", false, minimal + "\nsync: {interval: -1}\n"),
            ("interval without a unit", false, minimal + "\nsync: {interval: \"30\"}\n"),
            ("interval with a space", false, minimal + "\nsync: {interval: 30 s}\n"),
            ("Patient is not synchronised", false, minimal + "\nsync: {resourceTypes: [Patient]}\n"),
            ("no resource types", false, minimal + "\nsync: {resourceTypes: []}\n"),
            ("a resource type twice", false, minimal + "\nsync: {resourceTypes: [CarePlan, CarePlan]}\n"),
            ("lower-case ODS code", false, replacing("ods: RAX", "ods: rax")),
            ("name with a space", false, replacing("name: p1", "name: p 1")),
            ("provider without a mode", false, replacing("    mode: read-write\n", "")),
            ("unknown mode", false, replacing("mode: read-write", "mode: write-only")),
            ("provider without auth", false, replacing(providerAuth, "")),
            ("OAuth2 without a key", false, replacing(hubAuth, "auth: {type: oauth2-client-credentials, tokenURL: \"https://a.example.org/t\", clientID: c}\nproviders:")),
            ("mtls without a certificate", false, replacing(providerAuth, "    auth: {type: mtls}")),
            ("certificate without its key", false, replacing(providerAuth, providerAuth + "\n    tls: {clientCert: policy.json}")),
            ("TLS 1.1", false, replacing(providerAuth, providerAuth + "\n    tls: {minVersion: \"1.1\"}")),
            ("metrics on all interfaces", false, minimal + "\nmetrics: {listen: 0.0.0.0:9464}\n"),
            ("unknown log level", false, minimal + "\nlog: {level: verbose}\n"),
            ("no providers", false, String(minimal[..<minimal.range(of: "providers:")!.lowerBound]) + "providers: []\n"),
            ("no hub", false, String(minimal[minimal.range(of: "providers:")!.lowerBound...])),
            ("credential name with a dot", false, replacing(hubAuth, "auth: {type: bearer, tokenFile: \"credential:hub.token\"}\nproviders:")),
            ("boolean as text", false, minimal + "\nmetrics: {enabled: \"true\"}\n"),
            ("short pinned hash", false, replacing(hubAuth, "auth: {type: none}\n  tls: {pinnedPublicKey: \"sha256//abc=\"}\nproviders:")),
            ("empty key id", false, minimal.replacingOccurrences(of: hubAuth, with: "auth: {type: oauth2-client-credentials, tokenURL: \"https://a.example.org/t\", clientID: c, privateKeyFile: keys/hub-jwt.pem, keyID: \"\"}\nproviders:")),
            ("a list at the top", false, "- hub\n- providers\n"),
        ]
    }()

    @Test("the loader accepts exactly what the schema accepts, sample by sample")
    func loaderMatchesSchema() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        var paths: [String] = []
        for (index, sample) in Self.samples.enumerated() {
            paths.append(try fixture.directory.write("sample-\(index).yaml", sample.yaml))
        }
        let verdicts = try await Self.pythonVerdicts(paths)
        for (sample, path) in zip(Self.samples, paths) {
            let schemaErrors = try #require(verdicts[path])
            var loaderProblems: [ConfigurationProblem] = []
            do {
                _ = try await ConfigurationLoader(filePath: path, environment: fixture.environment()).load()
            } catch {
                loaderProblems = error.problems
            }
            #expect(schemaErrors.isEmpty == sample.valid, "schema on \(sample.name): \(schemaErrors)")
            #expect(loaderProblems.isEmpty == sample.valid, "loader on \(sample.name): \(loaderProblems)")
        }
    }

    @Test("rules only the loader can check: the schema accepts these, the loader refuses them")
    func loaderOnlyRules() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let samples: [(String, String, String)] = [
            ("duplicate peer names", ConfigurationFixture.minimal.replacingOccurrences(of: "name: p1", with: "name: hub"), "providers[0].name"),
            ("duplicate ODS codes", ConfigurationFixture.minimal.replacingOccurrences(of: "ods: RAX", with: "ods: QWE"), "providers[0].ods"),
            (
                "a file that does not exist",
                ConfigurationFixture.minimal.replacingOccurrences(of: "auth: {type: none}\nproviders:", with: "auth: {type: none}\n  tls: {caFile: nowhere.pem}\nproviders:"),
                "hub.tls.caFile"
            ),
        ]
        var paths: [String] = []
        for (index, sample) in samples.enumerated() {
            paths.append(try fixture.directory.write("loader-only-\(index).yaml", sample.1))
        }
        let verdicts = try await Self.pythonVerdicts(paths)
        for (sample, path) in zip(samples, paths) {
            #expect(verdicts[path] == [], "schema on \(sample.0)")
            do {
                _ = try await ConfigurationLoader(filePath: path, environment: [:]).load()
                Issue.record("loader accepted \(sample.0)")
            } catch {
                #expect(error.problems.map(\.keyPath) == [sample.2], "\(sample.0): \(error.problems)")
            }
        }
    }
}
