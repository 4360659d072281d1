import Foundation

/// A `caresync-store` child process on a free loopback port.
final class StoreProcess: @unchecked Sendable {
    let name: String
    let process: Process
    let port: Int
    private let output: Pipe

    var baseURL: String { "http://127.0.0.1:\(port)/fhir" }

    /// Starts `binary --listen 127.0.0.1:0 --db <database>` and reads the port from its first line.
    init(name: String, binary: String, database: String, log: String, extraArguments: [String] = []) throws {
        self.name = name
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--listen", "127.0.0.1:0", "--db", database, "--log-level", "error"] + extraArguments
        output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var line: [UInt8] = []
        let handle = output.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty || byte.first == 0x0A { break }
            line.append(byte.first!)
        }
        let text = String(decoding: line, as: UTF8.self)
        let prefix = "listening on 127.0.0.1:"
        guard text.hasPrefix(prefix), let port = Int(text.dropFirst(prefix.count)) else {
            process.terminate()
            throw SandboxError("\(name): caresync-store did not start (first line: \"\(text)\"); see \(log)")
        }
        self.port = port
    }

    /// SIGTERM and wait.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

/// Why the sandbox could not run.
struct SandboxError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
