public import Foundation

/// Runs a tool to completion (Python checkers, openssl, nm, systemd-analyze): the independent checkers
/// and fixtures of the tests. The blocking reads and the wait happen on threads of their own, never on
/// Swift concurrency's few cooperative threads: a slow tool must not stall every other test in the run.
public enum Tool {
    /// How a tool run ended.
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var errors: String
    }

    /// The tool is not on `$PATH`.
    public struct Missing: Error, CustomStringConvertible {
        public let name: String
        public var description: String { "\(name) is not installed (make deps installs it)" }
    }

    /// The absolute path of `name` on `$PATH`, or `nil`.
    public static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `name` (a path, or a name looked up on `$PATH`) with `arguments`, feeding `input` on stdin;
    /// `environment` entries are added to the current environment.
    public static func run(
        _ name: String, _ arguments: [String], input: Data? = nil, environment: [String: String] = [:],
        currentDirectory: URL? = nil
    ) async throws -> Result {
        guard let executable = name.hasPrefix("/") ? name : find(name) else { throw Missing(name: name) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let outPipe = Pipe()
        let errPipe = Pipe()
        let inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        try process.run()
        let box = ProcessBox(process)
        return await withCheckedContinuation { continuation in
            Thread {
                if let input { inPipe.fileHandleForWriting.write(input) }
                try? inPipe.fileHandleForWriting.close()
                // Both pipes are read to the end at once, so a full pipe never blocks the child.
                let errors = ErrorsReader(errPipe.fileHandleForReading)
                let output = outPipe.fileHandleForReading.readDataToEndOfFile()
                let errorData = errors.finish()
                box.process.waitUntilExit()
                continuation.resume(
                    returning: Result(
                        status: box.process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                        errors: String(decoding: errorData, as: UTF8.self)))
            }.start()
        }
    }

    /// Runs `name` and returns its stdout, throwing with its stderr when it does not exit 0.
    public static func output(
        _ name: String, _ arguments: [String], input: Data? = nil, currentDirectory: URL? = nil
    ) async throws -> String {
        let result = try await run(name, arguments, input: input, currentDirectory: currentDirectory)
        guard result.status == 0 else { throw Failed(command: ([name] + arguments).joined(separator: " "), result: result) }
        return result.output
    }

    /// A tool that exited with a non-zero status.
    public struct Failed: Error, CustomStringConvertible {
        public let command: String
        public let result: Result
        public var description: String { "\(command) exited \(result.status): \(result.errors)" }
    }
}

/// A `Process` handed to the thread that waits for it.
private final class ProcessBox: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}

/// Reads a pipe to its end on a thread of its own.
private final class ErrorsReader: @unchecked Sendable {
    private let done = NSCondition()
    private var data: Data?

    init(_ handle: FileHandle) {
        Thread { [self] in
            let read = handle.readDataToEndOfFile()
            done.lock()
            data = read
            done.broadcast()
            done.unlock()
        }.start()
    }

    /// Waits until the pipe is read to its end; its bytes.
    func finish() -> Data {
        done.lock()
        defer { done.unlock() }
        while data == nil { done.wait() }
        return data ?? Data()
    }
}
