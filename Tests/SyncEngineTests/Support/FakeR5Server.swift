import CaresyncTestSupport
import Foundation

/// `Servers/r5_server.py`: a peer whose CapabilityStatement declares FHIR 5.0.0 (an I/O-edge stand-in for
/// a server caresync must refuse).
final class FakeR5Server: Sendable {
    let process: ChildProcess
    let port: Int

    /// Starts `Servers/<script>` (default the R5 stand-in; `odd_peer.py` answers badly on purpose).
    init(script name: String = "r5_server.py") async throws {
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/SyncEngineTests/Servers/\(name)")
        process = try ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/env"), arguments: ["python3", script.path])
        let prefix = "listening on 127.0.0.1:"
        let line = try await process.waitForLine { $0.hasPrefix(prefix) }
        guard let port = Int(line.dropFirst(prefix.count)) else { throw TestFailure("the R5 stand-in did not start: \(process.errors)") }
        self.port = port
    }

    var baseURL: String { "http://127.0.0.1:\(port)/fhir" }

    /// The paths requested so far.
    var requests: [String] { process.output.filter { $0.hasPrefix("GET ") }.map { String($0.dropFirst(4)) } }

    func stop() {
        process.send(SIGTERM)
    }
}
