public import Foundation
import Synchronization

/// A real child process for end-to-end tests: started from a built product, its stdout and stderr
/// collected line by line, stopped with a real signal (SIGKILL included).
public final class ChildProcess: @unchecked Sendable {
    public let process: Process
    private let stdoutLines = LineBuffer()
    private let stderrLines = LineBuffer()
    private var readers: [Thread] = []

    /// Starts `executable` with `arguments`; `environment` entries are added to the current environment.
    public init(
        executable: URL,
        arguments: [String],
        environment: [String: String] = [:],
        currentDirectory: URL? = nil
    ) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        readers = [
            Self.startReader(outPipe.fileHandleForReading, into: stdoutLines),
            Self.startReader(errPipe.fileHandleForReading, into: stderrLines),
        ]
    }

    /// Kills a process still running; Foundation's own monitor reaps it. No wait here: a deinit can run on
    /// a Dispatch thread, where `waitUntilExit` spins its run loop and can keep that monitor from running.
    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// Lines written to stdout so far.
    public var output: [String] { stdoutLines.snapshot }

    /// Lines written to stderr so far.
    public var errors: [String] { stderrLines.snapshot }

    /// Waits until a stdout line satisfies `predicate` and returns it; throws after `timeout` seconds.
    public func waitForLine(timeout: Double = 30, where predicate: (String) -> Bool) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = output.first(where: predicate) { return line }
            if !process.isRunning, let line = output.first(where: predicate) { return line }
            if !process.isRunning {
                throw ChildProcessError.exitedEarly(status: process.terminationStatus, stderr: errors.suffix(20).joined(separator: "\n"))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // The line may have come while this task waited for a thread past the deadline.
        if let line = output.first(where: predicate) { return line }
        throw ChildProcessError.timedOut(stdout: output.suffix(20).joined(separator: "\n"), stderr: errors.suffix(20).joined(separator: "\n"))
    }

    /// Sends `signal` (e.g. `SIGTERM`, `SIGKILL`).
    public func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit and returns its status; SIGKILLs it after `timeout` seconds.
    @discardableResult
    public func waitForExit(timeout: Double = 30) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                send(SIGKILL)
                while process.isRunning { try await Task.sleep(for: .milliseconds(10)) }
                throw ChildProcessError.timedOut(stdout: output.suffix(20).joined(separator: "\n"), stderr: errors.suffix(20).joined(separator: "\n"))
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        for reader in readers { while reader.isExecuting { try await Task.sleep(for: .milliseconds(5)) } }
        return process.terminationStatus
    }

    private static func startReader(_ handle: FileHandle, into lines: LineBuffer) -> Thread {
        let thread = Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    lines.append(line)
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            if !pending.isEmpty {
                let line = String(decoding: pending, as: UTF8.self)
                lines.append(line)
            }
        }
        thread.start()
        return thread
    }
}

/// Why a child process did not do what a test waited for.
public enum ChildProcessError: Error, CustomStringConvertible {
    case timedOut(stdout: String, stderr: String)
    case exitedEarly(status: Int32, stderr: String)

    public var description: String {
        switch self {
        case .timedOut(let stdout, let stderr): "timed out; stdout tail:\n\(stdout)\nstderr tail:\n\(stderr)"
        case .exitedEarly(let status, let stderr): "exited early with status \(status); stderr tail:\n\(stderr)"
        }
    }
}

/// Lines collected by a reader thread, read by the test.
private final class LineBuffer: Sendable {
    private let lines = Mutex<[String]>([])

    var snapshot: [String] { lines.withLock { $0 } }

    func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }
}
