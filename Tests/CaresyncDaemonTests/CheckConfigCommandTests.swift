import CaresyncTestSupport
import Foundation
import Testing

/// `caresync check-config` as an operator runs it: a real child process, its exit code and output.
@Suite("caresync check-config")
struct CheckConfigCommandTests {
    func checkConfig(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: [String], errors: [String]) {
        let child = try ChildProcess(executable: try TestPaths.product("caresync"), arguments: ["check-config"] + arguments, environment: environment)
        let status = try await child.waitForExit()
        return (status, child.output, child.errors)
    }

    @Test("a valid file: exit 0 and a summary of the peers, no secret printed")
    func valid() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let path = try fixture.directory.write("caresync.yaml", ConfigurationFixture.complete)
        let result = try await checkConfig(["--config", path], environment: fixture.environment())
        #expect(result.status == 0, "\(result.errors)")
        let text = result.output.joined(separator: "\n")
        #expect(result.output.first == "\(path): valid (3 peers)")
        #expect(text.contains("icb-hub"))
        #expect(text.contains("riverside-acute"))
        #expect(text.contains("northfield"))
        #expect(text.contains("read-only"))
        #expect(text.contains("auth bearer (token from credential:northfield-token)"))
        #expect(!text.contains(ConfigurationFixture.token), "the bearer token is printed")
        #expect(!text.contains("PRIVATE KEY"), "the private key is printed")
        #expect(result.errors.isEmpty)
    }

    @Test("--state-dir overrides state.path")
    func stateDirectory() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let path = try fixture.directory.write("caresync.yaml", ConfigurationFixture.minimal)
        let result = try await checkConfig(["--config", path, "--state-dir", "/srv/caresync-state"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains { $0.hasPrefix("state: /srv/caresync-state;") }, "\(result.output)")
    }

    @Test("an invalid file: exit 2 and every problem with its key on stderr")
    func invalid() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let yaml = ConfigurationFixture.minimal.replacingOccurrences(of: "http://localhost:8081/fhir", with: "http://fhir.example.org/fhir") + """

            sync:
              pageSize: 0
            colour: blue
            """
        let path = try fixture.directory.write("caresync.yaml", yaml)
        let result = try await checkConfig(["--config", path], environment: ["CARESYNC_LOG_LEVEL": "loud"])
        #expect(result.status == 2)
        #expect(result.output.isEmpty)
        #expect(result.errors.first == "\(path): 4 problems")
        #expect(
            Set(result.errors.dropFirst()) == [
                "  colour: unknown key; allowed here: state, sync, policy, hub, providers, metrics, log",
                "  providers[0].baseURL: plain http is only allowed to loopback addresses",
                "  sync.pageSize: the page size must be from 1 to 1000 (found 0)",
                "  log.level: \"loud\" is not a log level (trace, debug, info, notice, warning, error, critical)",
            ], "\(result.errors)")
    }

    @Test("a missing file: exit 2 naming it")
    func missingFile() async throws {
        let result = try await checkConfig(["--config", "/nonexistent/caresync.yaml"])
        #expect(result.status == 2)
        #expect(result.errors.contains("  <file>: cannot read /nonexistent/caresync.yaml: No such file or directory"), "\(result.errors)")
    }

    @Test("a bad bearer token file is reported without echoing it")
    func secretNotEchoed() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        try "Bearer leaked-secret-value\n".write(to: fixture.credentials.appendingPathComponent("northfield-token"), atomically: true, encoding: .utf8)
        let path = try fixture.directory.write("caresync.yaml", ConfigurationFixture.complete)
        let result = try await checkConfig(["--config", path], environment: fixture.environment())
        #expect(result.status == 2)
        #expect(result.errors.contains { $0.contains("providers[1].auth.tokenFile") }, "\(result.errors)")
        #expect(!(result.errors + result.output).joined().contains("leaked-secret-value"))
    }
}
