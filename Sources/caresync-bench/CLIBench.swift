import Foundation

/// `caresync-bench cli`: the operator CLI as an operator runs it — the `caresync status` process, start to
/// exit, on a state database holding 1,000,000 queued pushes (``QueueBench/fillForStatus(directory:)``),
/// against the `sqlite3` shell running the same reads on the same file (the floor for any process that
/// opens the database and reads it). Both are measured in the same run, 11 times each, alternating;
/// medians reported. Needs the release `caresync` (`CARESYNC_BIN_DIR`, set by `Benchmarks/run`) and
/// `sqlite3` on the PATH.
enum CLIBench {
    static func run() async throws {
        guard let binaries = ProcessInfo.processInfo.environment["CARESYNC_BIN_DIR"] else {
            throw BenchError("cli: CARESYNC_BIN_DIR is not set (Benchmarks/run sets it to the release products)")
        }
        let caresync = binaries + "/caresync"
        guard FileManager.default.isExecutableFile(atPath: caresync) else {
            throw BenchError("cli: \(caresync) is not built (swift build -c release)")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("caresync-cli-bench-\(getpid())").path
        try? FileManager.default.removeItem(atPath: root)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + "/state"
        let clock = ContinuousClock()
        let fillStart = clock.now
        let database = try await QueueBench.fillForStatus(directory: directory)
        print("cli: filled 1,000,000 queued rows in \(Int(QueueBench.seconds(clock.now - fillStart))) s")

        let sql = """
            SELECT p.name, p.ods, p.base_url, p.mode, p.connection_state, p.queue_depth,
                (SELECT MIN(enqueued_at) FROM outbox WHERE peer = p.name),
                (SELECT COUNT(*) FROM dead_letter WHERE peer = p.name),
                (SELECT COUNT(*) FROM conflict WHERE state = 'open' AND peer = p.name),
                p.last_success_at, p.last_error, p.last_error_at
            FROM peer p ORDER BY p.name;
            SELECT peer, resource_type, server_time, seen FROM cursor;
            """
        var text: [Double] = []
        var json: [Double] = []
        var shell: [Double] = []
        var output = ""
        for round in 0..<11 {
            let runs: [() throws -> Void] = [
                { text.append(try time(caresync, ["status", "--state-dir", directory], capture: &output)) },
                {
                    var ignored = ""
                    json.append(try time(caresync, ["status", "--state-dir", directory, "--json"], capture: &ignored))
                },
                {
                    var ignored = ""
                    shell.append(try time("/usr/bin/env", ["sqlite3", "-readonly", database, sql], capture: &ignored))
                },
            ]
            for index in 0..<runs.count { try runs[(index + round) % runs.count]() }
        }
        guard output.contains("333,334") else {
            throw BenchError("cli: status did not show the queued rows:\n\(output)")
        }
        print("cli: `caresync status` at 1,000,000 queued:\n" + output.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        let value = QueueBench.median(text)
        let baseline = QueueBench.median(shell)
        print("cli: `caresync status --json` median \(String(format: "%.1f", QueueBench.median(json))) ms")
        BenchResult(
            area: "cli",
            scenario: "`caresync status` process, start to exit, at 1000000 queued (median of 11)",
            unit: "ms",
            value: (value * 10).rounded() / 10,
            baselineName: "sqlite3 -readonly running the same reads on the same file",
            baseline: (baseline * 10).rounded() / 10,
            ratio: value / baseline,
            target: "<= 250 ms",
            met: value <= 250
        ).emit()
    }

    /// Runs a command to completion and returns its wall time in milliseconds; its stdout goes to `capture`.
    static func time(_ executable: String, _ arguments: [String], capture: inout String) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let elapsed = QueueBench.seconds(clock.now - start) * 1000
        // status exits 1 when something needs attention (the filled database has dead letters).
        guard process.terminationStatus <= 1 else {
            throw BenchError("cli: \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        capture = String(decoding: data, as: UTF8.self)
        return elapsed
    }
}
