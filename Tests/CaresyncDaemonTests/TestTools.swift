import CaresyncTestSupport
import Foundation
import Testing

/// Runs a tool from `$PATH` to completion (Python, openssl, systemd-analyze): the independent checkers.
enum Tool {
    struct Result {
        var status: Int32
        var output: String
        var errors: String
    }

    /// The absolute path of `name` on `$PATH`, or `nil`.
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `name` with `arguments`, feeding `input` on stdin.
    static func run(
        _ name: String, _ arguments: [String], input: String? = nil, environment: [String: String] = [:],
        currentDirectory: URL? = nil
    ) throws -> Result {
        guard let executable = name.hasPrefix("/") ? name : find(name) else { throw ToolMissing(name: name) }
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
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        // Read both pipes to the end on separate threads so a full pipe never blocks the child.
        let collected = CollectedOutput()
        let group = DispatchGroup()
        for (index, handle) in [outPipe.fileHandleForReading, errPipe.fileHandleForReading].enumerated() {
            group.enter()
            Thread {
                let data = handle.readDataToEndOfFile()
                collected.set(index, data)
                group.leave()
            }.start()
        }
        group.wait()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            output: String(decoding: collected.get(0), as: UTF8.self),
            errors: String(decoding: collected.get(1), as: UTF8.self))
    }

    struct ToolMissing: Error, CustomStringConvertible {
        let name: String
        var description: String { "\(name) is not installed (make deps installs it)" }
    }
}

private final class CollectedOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [Int: Data] = [:]

    func set(_ index: Int, _ value: Data) {
        lock.lock()
        data[index] = value
        lock.unlock()
    }

    func get(_ index: Int) -> Data {
        lock.lock()
        defer { lock.unlock() }
        return data[index] ?? Data()
    }
}

/// Key material made by the openssl command line, independent of the code under test.
enum TestKeys {
    /// A new RSA private key (PEM) of `bits` bits in `directory/name`, and its public key beside it
    /// (`name.pub`).
    @discardableResult
    static func rsa(bits: Int = 2048, in directory: TemporaryDirectory, name: String) throws -> URL {
        let url = directory.path(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let generated = try Tool.run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)", "-out", url.path])
        #expect(generated.status == 0, "openssl genpkey: \(generated.errors)")
        let exported = try Tool.run("openssl", ["pkey", "-in", url.path, "-pubout", "-out", url.path + ".pub"])
        #expect(exported.status == 0, "openssl pkey: \(exported.errors)")
        return url
    }

    /// A self-signed certificate and its key (`name.crt`, `name.key`).
    static func certificate(in directory: TemporaryDirectory, name: String) throws {
        try FileManager.default.createDirectory(at: directory.path(name).deletingLastPathComponent(), withIntermediateDirectories: true)
        let result = try Tool.run(
            "openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory.path("\(name).key").path,
                "-out", directory.path("\(name).crt").path, "-days", "2", "-subj", "/CN=caresync-test",
            ])
        #expect(result.status == 0, "openssl req: \(result.errors)")
    }
}

extension TemporaryDirectory {
    /// Writes `text` to `name` and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let url = path(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }
}
