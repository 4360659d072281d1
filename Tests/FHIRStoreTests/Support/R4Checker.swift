import CaresyncTestSupport
import Foundation

/// Runs `Scripts/check_fhir_r4.py` (Python `fhirclient` R4 models, strict) over JSON documents.
enum R4Checker {
    static let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/FHIRStoreTests/Scripts/check_fhir_r4.py")

    /// Checks every document; returns the checker's output lines and its exit status.
    static func check(_ documents: [(name: String, bytes: [UInt8])]) async throws -> (status: Int32, lines: [String]) {
        let directory = try TemporaryDirectory(prefix: "caresync-store-r4")
        defer { directory.remove() }
        var paths: [String] = []
        for document in documents {
            let url = directory.path(document.name + ".json")
            try Data(document.bytes).write(to: url)
            paths.append(url.path)
        }
        let process = try ChildProcess(
            executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", script.path] + paths
        )
        let status = try await process.waitForExit(timeout: 300)
        return (status, process.output + process.errors)
    }
}
