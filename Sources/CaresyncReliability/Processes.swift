import Foundation
import Synchronization

/// A child process of the harness: a built product started with its stdout read line by line and its
/// stderr appended to a log file, stopped with a real signal (SIGKILL included).
final class Child: @unchecked Sendable {
    let process: Process
    let logPath: String
    private let lines = LineBuffer()
    private let reader: Thread

    /// Starts `executable` with `arguments`. `environment` replaces the inherited one when given.
    init(executable: URL, arguments: [String], environment: [String: String]? = nil, logPath: String) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        self.logPath = logPath
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        guard let log = FileHandle(forWritingAtPath: logPath) else { throw ReliabilityError("cannot write \(logPath)") }
        log.seekToEndOfFile()
        let output = Pipe()
        process.standardOutput = output
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()
        let handle = output.fileHandleForReading
        let lines = self.lines
        reader = Thread {
            var pending: [UInt8] = []
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(contentsOf: chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    lines.append(line)
                    pending.removeSubrange(...newline)
                }
            }
        }
        reader.start()
    }

    /// Kills a process still running; Foundation's own monitor reaps it. No wait here: a deinit can run on
    /// a Dispatch thread, where `waitUntilExit` spins its run loop and can keep that monitor from running.
    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Lines written to stdout so far.
    var output: [String] { lines.snapshot }

    /// Waits for a stdout line that satisfies `predicate`.
    func waitForLine(timeout: Duration = .seconds(60), where predicate: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if let line = output.first(where: predicate) { return line }
            if !process.isRunning {
                try await Task.sleep(for: .milliseconds(50))
                if let line = output.first(where: predicate) { return line }
                throw ReliabilityError("\(process.executableURL?.lastPathComponent ?? "child") exited with \(process.terminationStatus); see \(logPath)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ReliabilityError("\(process.executableURL?.lastPathComponent ?? "child") printed no expected line; see \(logPath)")
    }

    func send(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Waits for the exit and returns the status (a signal's number for a killed process); SIGKILLs the
    /// process if it is still running after `timeout`.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(120)) async -> Int32 {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return process.terminationStatus
    }

    /// The last `count` lines of the log file.
    func logTail(_ count: Int = 20) -> String {
        Self.tail(of: logPath, count)
    }

    static func tail(of path: String, _ count: Int) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(count).joined(separator: "\n")
    }
}

/// Lines a reader thread collects and the harness reads.
private final class LineBuffer: Sendable {
    private let lines = Mutex<[String]>([])

    var snapshot: [String] { lines.withLock { $0 } }

    func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }
}

/// A `caresync-store` child on loopback, restartable on the same port with the same database file.
final class StoreNode: @unchecked Sendable {
    let name: String
    let databasePath: String
    let arguments: [String]
    private let binary: URL
    private let logPath: String
    private(set) var child: Child?
    private(set) var port: Int = 0

    init(name: String, binary: URL, directory: String, arguments: [String] = []) {
        self.name = name
        self.binary = binary
        self.databasePath = directory + "/\(name).sqlite"
        self.logPath = directory + "/\(name).log"
        self.arguments = arguments
    }

    var baseURL: String { "http://127.0.0.1:\(port)/fhir" }
    var adminURL: String { "http://127.0.0.1:\(port)/_admin/faults" }

    /// Starts the store: on a free port the first time, on its port again afterwards.
    func start() async throws {
        let listen = port == 0 ? "127.0.0.1:0" : "127.0.0.1:\(port)"
        var lastError: (any Error)?
        for _ in 0..<50 {
            do {
                let child = try Child(
                    executable: binary, arguments: ["--listen", listen, "--db", databasePath, "--log-level", "error"] + arguments,
                    logPath: logPath)
                let line = try await child.waitForLine { $0.hasPrefix("listening on") }
                let prefix = "listening on 127.0.0.1:"
                guard line.hasPrefix(prefix), let port = Int(line.dropFirst(prefix.count)) else {
                    throw ReliabilityError("\(name): caresync-store announced \(line)")
                }
                self.child = child
                self.port = port
                return
            } catch {
                lastError = error  // the port may still be held by the previous process for a moment
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError ?? ReliabilityError("\(name) did not start")
    }

    /// SIGTERM (a graceful stop) and wait.
    func stop() async {
        guard let child else { return }
        child.send(SIGTERM)
        await child.waitForExit()
        self.child = nil
    }
}

/// `caresync daemon --config FILE` as a child process, its log appended to one file across restarts.
final class DaemonNode: @unchecked Sendable {
    let binary: URL
    let configuration: String
    let logPath: String
    private(set) var child: Child?
    private(set) var starts = 0

    init(binary: URL, configuration: String, logPath: String) {
        self.binary = binary
        self.configuration = configuration
        self.logPath = logPath
    }

    /// Starts the daemon. `CARESYNC_*` variables are left out of its environment: the daemon reads every
    /// one as a configuration override.
    func start() throws {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CARESYNC_") }
        environment["NOTIFY_SOCKET"] = nil
        environment["WATCHDOG_USEC"] = nil
        environment["JOURNAL_STREAM"] = nil
        starts += 1
        child = try Child(executable: binary, arguments: ["daemon", "--config", configuration], environment: environment, logPath: logPath)
    }

    var isRunning: Bool { child?.isRunning ?? false }

    /// SIGKILL and reap.
    func kill() async {
        guard let child else { return }
        child.send(SIGKILL)
        await child.waitForExit()
        self.child = nil
    }

    /// SIGTERM; returns the exit status.
    @discardableResult
    func stop() async -> Int32? {
        guard let child else { return nil }
        child.send(SIGTERM)
        let status = await child.waitForExit()
        self.child = nil
        return status
    }

    func logTail(_ count: Int = 20) -> String { Child.tail(of: logPath, count) }
}

/// A failure of the harness itself (a process that would not start, a peer that would not answer).
public struct ReliabilityError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
