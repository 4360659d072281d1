import CaresyncTestSupport
import Foundation
import Testing

/// Key material made by the openssl command line, independent of the code under test.
enum TestKeys {
    /// A new RSA private key (PEM) of `bits` bits in `directory/name`, and its public key beside it
    /// (`name.pub`).
    @discardableResult
    static func rsa(bits: Int = 2048, in directory: TemporaryDirectory, name: String) async throws -> URL {
        let url = directory.path(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let generated = try await Tool.run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)", "-out", url.path])
        #expect(generated.status == 0, "openssl genpkey: \(generated.errors)")
        let exported = try await Tool.run("openssl", ["pkey", "-in", url.path, "-pubout", "-out", url.path + ".pub"])
        #expect(exported.status == 0, "openssl pkey: \(exported.errors)")
        return url
    }

    /// A self-signed certificate and its key (`name.crt`, `name.key`).
    static func certificate(in directory: TemporaryDirectory, name: String) async throws {
        try FileManager.default.createDirectory(at: directory.path(name).deletingLastPathComponent(), withIntermediateDirectories: true)
        let result = try await Tool.run(
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
