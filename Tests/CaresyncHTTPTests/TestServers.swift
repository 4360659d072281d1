import CaresyncTestSupport
import Foundation
import Glibc

/// A test server child process that reports its events (ACCEPT, REQUEST, CLOSED, …) on stdout.
/// Killed with SIGKILL by ``stop()`` (and when the object goes away).
final class TestServer: Sendable {
    let process: ChildProcess
    let port: Int

    private init(process: ChildProcess, port: Int) {
        self.process = process
        self.port = port
    }

    /// `Servers/http_test_server.py` with `arguments` (`--cert`, `--client-ca`, …).
    static func python(_ arguments: [String] = []) async throws -> TestServer {
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/CaresyncHTTPTests/Servers/http_test_server.py")
        let process = try ChildProcess(
            executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["python3", "-u", script.path, "--lifetime", "600"] + arguments)
        let line = try await process.waitForLine { $0.hasPrefix("LISTENING ") }
        guard let port = Int(line.dropFirst("LISTENING ".count)) else { throw TestSetupError("bad LISTENING line: \(line)") }
        return TestServer(process: process, port: port)
    }

    /// `nghttpd` (HTTP/2 over TLS with ALPN h2) serving `documentRoot` on a free loopback port.
    static func nghttpd(documentRoot: URL, certificate: URL, key: URL) async throws -> TestServer {
        let port = try freeLoopbackPort()
        let process = try ChildProcess(
            executable: URL(fileURLWithPath: "/usr/bin/env"),
            arguments: ["nghttpd", "--address=127.0.0.1", "--htdocs=\(documentRoot.path)", "\(port)", key.path, certificate.path])
        try await waitUntilAccepting(port: port, process: process)
        return TestServer(process: process, port: port)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    func http(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// `https://localhost:PORT` + `path` (the test certificate names localhost and 127.0.0.1).
    func https(_ path: String) -> String { "https://localhost:\(port)\(path)" }

    /// Every event line of `kind` so far (`"ACCEPT"`, `"CLOSED"`, …).
    func events(_ kind: String) -> [String] {
        process.output.filter { $0.hasPrefix(kind + " ") }
    }

    /// Waits for an event line that satisfies `predicate`.
    @discardableResult
    func waitForEvent(where predicate: @escaping (String) -> Bool) async throws -> String {
        try await process.waitForLine(timeout: 60, where: predicate)
    }

    /// Waits until at least `count` event lines of `kind` were read from the server.
    func waitForEvents(_ kind: String, count: Int) async throws {
        for _ in 0..<1200 where events(kind).count < count {
            try await Task.sleep(for: .milliseconds(25))
        }
        if events(kind).count < count { throw TestSetupError("the server reported fewer than \(count) \(kind) events") }
    }

    func stop() {
        process.send(SIGKILL)
    }

    deinit {
        process.send(SIGKILL)
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSetupError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestSetupError("bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls until something accepts TCP connections on 127.0.0.1:`port`.
func waitUntilAccepting(port: Int, process: ChildProcess) async throws {
    for _ in 0..<600 {
        guard process.process.isRunning else {
            throw TestSetupError("server exited early: \(process.errors.suffix(10).joined(separator: "\n"))")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        close(fd)
        if connected { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestSetupError("nothing accepted connections on port \(port)")
}

/// A throwaway PKI made with the `openssl` CLI: a CA, a server certificate for localhost and
/// 127.0.0.1, a client certificate, and an unrelated CA. Made once per test process.
struct TestPKI: Sendable {
    let directory: URL
    var caFile: String { directory.appendingPathComponent("ca.pem").path }
    var otherCAFile: String { directory.appendingPathComponent("other-ca.pem").path }
    var serverCertificate: String { directory.appendingPathComponent("server.pem").path }
    var serverKey: String { directory.appendingPathComponent("server.key").path }
    var clientCertificate: String { directory.appendingPathComponent("client.pem").path }
    var clientKey: String { directory.appendingPathComponent("client.key").path }
    /// `sha256//…` of the server's public key.
    let serverPin: String

    static func shared() throws -> TestPKI { try cached.get() }

    private static let cached = Result<TestPKI, any Error> { try TestPKI.generate() }

    private static func generate() throws -> TestPKI {
        let directory = try TemporaryDirectory(prefix: "caresync-http-pki").url
        func openssl(_ arguments: [String]) throws {
            try run(["openssl"] + arguments, in: directory)
        }
        func newKey(_ name: String) -> [String] {
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", name]
        }
        for (name, subject) in [("ca", "/CN=caresync test CA"), ("other-ca", "/CN=unrelated test CA")] {
            try openssl(
                ["req", "-x509"] + newKey("\(name).key") + [
                    "-out", "\(name).pem", "-days", "2", "-subj", subject,
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                ])
        }
        let leaves = [
            ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
            ("client", "/CN=caresync test client", "extendedKeyUsage=clientAuth\n"),
        ]
        for (name, subject, extensions) in leaves {
            try Data(("basicConstraints=CA:FALSE\n" + extensions).utf8)
                .write(to: directory.appendingPathComponent("\(name).ext"))
            try openssl(["req"] + newKey("\(name).key") + ["-out", "\(name).csr", "-subj", subject])
            try openssl([
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext",
            ])
        }
        let pinOutput = try run(
            ["sh", "-c", "openssl pkey -in server.key -pubout -outform DER | openssl dgst -sha256 -binary | base64"],
            in: directory)
        return TestPKI(directory: directory, serverPin: "sha256//" + pinOutput.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @discardableResult
    private static func run(_ arguments: [String], in directory: URL) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestSetupError("\(arguments.joined(separator: " ")) failed: \(errorText)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
