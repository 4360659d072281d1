import CaresyncHTTP
import CaresyncTestSupport
import Foundation
import Testing

@Suite("HTTP client over TLS on loopback (certificates made by the openssl CLI)")
struct TLSTests {
    @Test("a server certified by the CA in caFile is trusted; TLS 1.3 is negotiated")
    func caFileTrusted() async throws {
        let pki = try TestPKI.shared()
        let server = try await TestServer.python(["--cert", pki.serverCertificate, "--key", pki.serverKey])
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let response = try await client.send(
            HTTPRequest(method: .post, url: server.https("/echo"), body: Array("{}".utf8), tls: TLSConfiguration(caFile: pki.caFile)))
        #expect(response.status == 200)
        #expect(response.tlsVersion == .v1_3)
        #expect(response.httpVersion == .http1_1)
        #expect(try Echo(response).bodyBytes == Array("{}".utf8))
        #expect(response.timings.tlsHandshake > .zero)
    }

    @Test("without the CA, or with another CA, the certificate is refused with a clear error")
    func untrustedCertificate() async throws {
        let pki = try TestPKI.shared()
        let server = try await TestServer.python(["--cert", pki.serverCertificate, "--key", pki.serverKey])
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        for tls in [TLSConfiguration(), TLSConfiguration(caFile: pki.otherCAFile)] {
            let request = HTTPRequest(url: server.https("/echo"), tls: tls)
            let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(request) })
            #expect(error.code == .certificateUntrusted)
            #expect(!error.isRetriable)
            #expect(error.curlCode == 60)
            #expect(error.curlMessage?.contains("certificate") == true)
            #expect(error.description.contains("certificate-untrusted"))
        }
        #expect(server.events("REQUEST").isEmpty)
    }

    @Test("a connection made with one TLS configuration is not reused for a request with another")
    func perRequestTLSSettings() async throws {
        let pki = try TestPKI.shared()
        let server = try await TestServer.python(["--cert", pki.serverCertificate, "--key", pki.serverKey])
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let trusted = HTTPRequest(url: server.https("/echo"), tls: TLSConfiguration(caFile: pki.caFile))
        #expect(try await client.send(trusted).status == 200)
        let untrusted = HTTPRequest(url: server.https("/echo"), tls: TLSConfiguration(caFile: pki.otherCAFile))
        let error = await expectHTTPError { () async throws(HTTPError) in try await client.send(untrusted) }
        #expect(error?.code == .certificateUntrusted)
        let again = try await client.send(trusted)
        #expect(again.connectionReused)
    }

    @Test("mTLS: a server that requires a client certificate accepts ours and refuses a client without one")
    func mutualTLS() async throws {
        let pki = try TestPKI.shared()
        let server = try await TestServer.python([
            "--cert", pki.serverCertificate, "--key", pki.serverKey, "--client-ca", pki.caFile,
        ])
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let withCertificate = TLSConfiguration(
            caFile: pki.caFile, clientCertificateFile: pki.clientCertificate, clientKeyFile: pki.clientKey)
        let accepted = try await client.send(HTTPRequest(url: server.https("/echo"), tls: withCertificate))
        #expect(accepted.status == 200)

        let request = HTTPRequest(url: server.https("/echo"), tls: TLSConfiguration(caFile: pki.caFile))
        let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(request) })
        // TLS 1.3 sends the refusal after the client's side of the handshake is done: usually the client
        // reads the "certificate required" alert, but when the server's close races the client's first
        // write, libcurl sees only a broken connection. Either way the request never reaches the server.
        #expect([.clientCertificateRejected, .sendFailed, .receiveFailed].contains(error.code), "\(error)")
        #expect(error.code != .clientCertificateRejected || !error.isRetriable)
        try await server.waitForEvent { $0.hasPrefix("TLSFAIL ") }
        #expect(server.events("REQUEST").count == 1)
    }

    @Test("an unreadable client key is a local credentials error")
    func missingClientKey() async throws {
        let pki = try TestPKI.shared()
        let server = try await TestServer.python(["--cert", pki.serverCertificate, "--key", pki.serverKey])
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let tls = TLSConfiguration(
            caFile: pki.caFile, clientCertificateFile: pki.clientCertificate, clientKeyFile: pki.directory.path + "/absent.key")
        let error = await expectHTTPError { () async throws(HTTPError) in try await client.send(HTTPRequest(url: server.https("/echo"), tls: tls)) }
        #expect(error?.code == .localCredentialsInvalid)
    }

    @Test("the pinned public key must match the server's")
    func pinnedPublicKey() async throws {
        let pki = try TestPKI.shared()
        let server = try await TestServer.python(["--cert", pki.serverCertificate, "--key", pki.serverKey])
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let matching = TLSConfiguration(caFile: pki.caFile, pinnedPublicKey: pki.serverPin)
        #expect(try await client.send(HTTPRequest(url: server.https("/echo"), tls: matching)).status == 200)

        let wrongPin = "sha256//" + Data(repeating: 0xAB, count: 32).base64EncodedString()
        let mismatched = TLSConfiguration(caFile: pki.caFile, pinnedPublicKey: wrongPin)
        let error = try #require(
            await expectHTTPError { () async throws(HTTPError) in try await client.send(HTTPRequest(url: server.https("/echo"), tls: mismatched)) })
        #expect(error.code == .pinnedKeyMismatch)
        #expect(error.curlCode == 90)
        #expect(!error.isRetriable)
    }

    @Test("TLS 1.2 is accepted by default; a client that requires TLS 1.3 refuses a TLS 1.2 server")
    func minimumVersion() async throws {
        let pki = try TestPKI.shared()
        let server = try await TestServer.python([
            "--cert", pki.serverCertificate, "--key", pki.serverKey, "--max-tls", "1.2",
        ])
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let response = try await client.send(HTTPRequest(url: server.https("/echo"), tls: TLSConfiguration(caFile: pki.caFile)))
        #expect(response.tlsVersion == .v1_2)

        let strict = TLSConfiguration(caFile: pki.caFile, minimumVersion: .v1_3)
        let error = await expectHTTPError { () async throws(HTTPError) in try await client.send(HTTPRequest(url: server.https("/echo"), tls: strict)) }
        #expect(error?.code == .tlsHandshakeFailed)
        #expect(error?.isRetriable == true)
    }

    @Test("HTTP/2 is negotiated when the server offers it, and concurrent requests share one connection")
    func http2() async throws {
        let pki = try TestPKI.shared()
        let root = try TemporaryDirectory(prefix: "caresync-h2")
        defer { root.remove() }
        let document = Array(repeating: Array("{\"resourceType\":\"Bundle\"}\n".utf8), count: 200).flatMap { $0 }
        try Data(document).write(to: root.path("bundle.json"))
        let server = try await TestServer.nghttpd(
            documentRoot: root.url, certificate: URL(fileURLWithPath: pki.serverCertificate), key: URL(fileURLWithPath: pki.serverKey))
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let tls = TLSConfiguration(caFile: pki.caFile)

        let first = try await client.send(HTTPRequest(url: server.https("/bundle.json"), tls: tls))
        #expect(first.httpVersion == .http2)
        #expect(first.status == 200)
        #expect(first.body == document)
        #expect(first.tlsVersion == .v1_3)

        let connects = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    let response = try await client.send(HTTPRequest(url: server.https("/bundle.json"), tls: tls))
                    #expect(response.httpVersion == .http2)
                    #expect(response.body == document)
                    return response.newConnections
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(connects == 0)
    }
}
