import CaresyncHTTP
import Foundation
import Testing

/// What `/echo` saw of a request.
struct Echo: Decodable {
    var method: String
    var path: String
    var headers: [[String]]
    var body: String
    var connection: Int

    init(_ response: HTTPResponse) throws {
        self = try JSONDecoder().decode(Echo.self, from: Data(response.body))
    }

    var bodyBytes: [UInt8] {
        var bytes: [UInt8] = []
        var index = body.startIndex
        while index < body.endIndex {
            let next = body.index(index, offsetBy: 2)
            bytes.append(UInt8(body[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    func header(_ name: String) -> [String] {
        headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }
}

/// Runs `body` and returns the ``HTTPError`` it threw; records an issue if it did not throw one.
func expectHTTPError(_ body: () async throws(HTTPError) -> HTTPResponse) async -> HTTPError? {
    do {
        let response = try await body()
        Issue.record("expected an HTTPError, got status \(response.status)")
        return nil
    } catch {
        return error
    }
}

/// The ``HTTPError`` a task failed with; records an issue if it succeeded or failed otherwise.
func httpError(_ result: Result<HTTPResponse, any Error>) -> HTTPError? {
    switch result {
    case .success(let response):
        Issue.record("expected an HTTPError, got status \(response.status)")
        return nil
    case .failure(let error as HTTPError):
        return error
    case .failure(let error):
        Issue.record("expected an HTTPError, got \(error)")
        return nil
    }
}

@Suite("HTTP client over plain HTTP on loopback")
struct HTTPClientTests {
    @Test("GET, PUT, POST, PATCH and DELETE carry their bodies and headers, and no Expect: 100-continue")
    func methodsAndBodies() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }

        let get = try await client.send(HTTPRequest(url: server.http("/echo?_count=5"), headers: ["Accept": "application/fhir+json"]))
        #expect(get.status == 200)
        #expect(get.httpVersion == .http1_1)
        #expect(get.tlsVersion == nil)
        let getEcho = try Echo(get)
        #expect(getEcho.method == "GET")
        #expect(getEcho.path == "/echo?_count=5")
        #expect(getEcho.header("Accept") == ["application/fhir+json"])
        #expect(getEcho.header("Content-Length").isEmpty)

        let binary: [UInt8] = [0x00, 0xFF, 0x7B, 0x0D, 0x0A, 0x22] + Array("{\"resourceType\":\"CarePlan\"}".utf8)
        for method in [HTTPMethod.put, .post, .patch] {
            let response = try await client.send(
                HTTPRequest(
                    method: method, url: server.http("/echo"),
                    headers: ["Content-Type": "application/fhir+json; charset=utf-8", "If-Match": "W/\"3\""],
                    body: binary))
            #expect(response.status == 200)
            let echo = try Echo(response)
            #expect(echo.method == method.rawValue)
            #expect(echo.bodyBytes == binary)
            #expect(echo.header("Content-Length") == ["\(binary.count)"])
            #expect(echo.header("Content-Type") == ["application/fhir+json; charset=utf-8"])
            #expect(echo.header("If-Match") == ["W/\"3\""])
            #expect(echo.header("Expect").isEmpty)
        }

        let delete = try Echo(try await client.send(HTTPRequest(method: .delete, url: server.http("/echo"))))
        #expect(delete.method == "DELETE")
        #expect(delete.bodyBytes.isEmpty)

        let emptyPut = try Echo(try await client.send(HTTPRequest(method: .put, url: server.http("/echo"))))
        #expect(emptyPut.header("Content-Length") == ["0"])
        #expect(emptyPut.header("Content-Type").isEmpty)
    }

    @Test("a 2 MB upload is sent at once, without Expect: 100-continue")
    func largeUpload() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let body = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let response = try await client.send(
            HTTPRequest(method: .put, url: server.http("/echo"), headers: ["Content-Type": "application/octet-stream"], body: body))
        let echo = try Echo(response)
        #expect(echo.header("Expect").isEmpty)
        #expect(echo.bodyBytes == body)
    }

    @Test("120 concurrent requests share at most the configured 4 connections, counted at the server")
    func concurrentRequestsReuseConnections() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient(configuration: .init(maximumConnectionsPerHost: 4))
        defer { client.shutdown() }

        let results = try await withThrowingTaskGroup(of: (Int, Int, Int).self) { group in
            for index in 0..<120 {
                group.addTask {
                    let response = try await client.send(HTTPRequest(url: server.http("/echo?n=\(index)")))
                    return (response.status, try Echo(response).connection, response.newConnections)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 120)
        #expect(results.allSatisfy { $0.0 == 200 })
        let connections = Set(results.map(\.1))
        try await server.waitForEvents("ACCEPT", count: connections.count)
        let accepted = server.events("ACCEPT").count
        #expect((1...4).contains(accepted))
        #expect(connections.count == accepted)
        #expect(results.map(\.2).reduce(0, +) == accepted)

        for _ in 0..<10 {
            let response = try await client.send(HTTPRequest(url: server.http("/echo")))
            #expect(response.connectionReused)
            #expect(connections.contains(try Echo(response).connection))
        }
    }

    @Test("a gzip-encoded response is decoded, and gzip is asked for")
    func gzipDecoding() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let response = try await client.send(HTTPRequest(url: server.http("/gzip?size=100000")))
        #expect(response.status == 200)
        #expect(response.headers["content-encoding"] == "gzip")
        let line = Array("caresync gzip test line\n".utf8)
        let expected = Array((0..<(100000 / line.count + 1)).flatMap { _ in line }.prefix(100000))
        #expect(response.body == expected)
        let echo = try Echo(try await client.send(HTTPRequest(url: server.http("/echo"))))
        #expect(echo.header("Accept-Encoding") == ["gzip"])
    }

    @Test("response headers keep repeats and folded lines, with case-insensitive lookup")
    func responseHeaders() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let response = try await client.send(HTTPRequest(url: server.http("/headers")))
        #expect(response.headers.values(for: "SET-COOKIE") == ["a=1", "b=2"])
        #expect(response.headers["x-folded"] == "first second")
        #expect(response.headers["Content-Length"] == "0")
    }

    @Test("redirects are returned as they are, never followed")
    func redirectsNotFollowed() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let get = try await client.send(HTTPRequest(url: server.http("/status?code=302")))
        #expect(get.status == 302)
        #expect(get.headers["Location"] == "/echo")
        let post = try await client.send(HTTPRequest(method: .post, url: server.http("/status?code=307"), body: [1]))
        #expect(post.status == 307)
        try await server.waitForEvents("REQUEST", count: 2)
        #expect(server.events("REQUEST").map { $0.split(separator: " ")[3] } == ["/status", "/status"])
    }

    @Test("a stalled server trips the low-speed limit with a retriable stall error")
    func stalledTransfer() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let request = HTTPRequest(
            url: server.http("/stall?token=secret"), timeouts: HTTPTimeouts(minimumSpeed: 100, stallTime: .seconds(1)))
        let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(request) })
        #expect(error.code == .transferStalled)
        #expect(error.isRetriable)
        #expect(error.curlCode == 28)
        #expect(error.curlMessage?.contains("too slow") == true)
        #expect(error.url == server.http("/stall"))
        try await server.waitForEvent { $0.hasPrefix("CLOSED ") }
    }

    @Test("the overall cap ends a request that is making progress too slowly")
    func totalTimeout() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let request = HTTPRequest(url: server.http("/hang"), timeouts: HTTPTimeouts(stallTime: .seconds(60), total: .milliseconds(500)))
        let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(request) })
        #expect(error.code == .totalTimeout)
        #expect(error.isRetriable)
    }

    @Test("cancelling the task abandons the transfer, closes its connection, and the client keeps working")
    func cancellation() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }

        let hanging = Task { () async throws -> HTTPResponse in
            try await client.send(HTTPRequest(url: server.http("/hang")))
        }
        let request = try await server.waitForEvent { $0.hasPrefix("REQUEST ") && $0.hasSuffix(" /hang") }
        let connection = request.split(separator: " ")[1]
        hanging.cancel()
        let error = try #require(httpError(await hanging.result))
        #expect(error.code == .cancelled)
        #expect(!error.isRetriable)
        try await server.waitForEvent { $0 == "CLOSED \(connection)" }

        let after = try await client.send(HTTPRequest(url: server.http("/echo")))
        #expect(after.status == 200)
    }

    @Test("a task cancelled before it sends never reaches the server")
    func cancelledBeforeSending() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let task = Task { () async throws -> HTTPResponse in
            while !Task.isCancelled { await Task.yield() }
            return try await client.send(HTTPRequest(url: server.http("/status?code=204")))
        }
        task.cancel()
        #expect(httpError(await task.result)?.code == .cancelled)
        _ = try await client.send(HTTPRequest(url: server.http("/echo")))
        try await server.waitForEvent { $0.hasPrefix("REQUEST ") && $0.hasSuffix(" /echo") }
        #expect(server.events("REQUEST").allSatisfy { !$0.hasSuffix(" /status") })
    }

    @Test("a response over the maximum size fails with response-too-large, with or without Content-Length")
    func maximumResponseSize() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        defer { client.shutdown() }
        let fits = try await client.send(HTTPRequest(url: server.http("/bytes?size=4096"), maximumResponseBytes: 4096))
        #expect(fits.body.count == 4096)
        for path in ["/bytes?size=4097", "/bytes?size=100000&chunked=1"] {
            let request = HTTPRequest(url: server.http(path), maximumResponseBytes: 4096)
            let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(request) })
            #expect(error.code == .responseTooLarge)
            #expect(!error.isRetriable)
        }
        let compressed = HTTPRequest(url: server.http("/gzip?size=100000"), maximumResponseBytes: 50000)
        let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(compressed) })
        #expect(error.code == .responseTooLarge)
    }

    @Test(
        "plain http:// to a host that is not loopback is refused before any connection",
        arguments: ["http://192.0.2.1/fhir/Patient?identifier=secret", "http://hub.example.invalid/fhir", "http://127.0.0.1.example.invalid/"]
    )
    func insecureURLRefused(url: String) async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(HTTPRequest(url: url)) })
        #expect(error.code == .insecureURLRefused)
        #expect(error.curlCode == nil)
        #expect(!error.isRetriable)
        #expect(!error.url.contains("secret"))
        #expect(!error.url.contains("?"))
    }

    @Test("loopback spellings pass the http:// rule", arguments: ["127.0.0.2", "0x7f000001", "[::1]", "LOCALHOST"])
    func loopbackAllowed(host: String) async throws {
        let port = try freeLoopbackPort()  // nothing listens: the request gets past the rule, then fails to connect
        let client = HTTPClient()
        defer { client.shutdown() }
        let error = try #require(
            await expectHTTPError { () async throws(HTTPError) in try await client.send(HTTPRequest(url: "http://\(host):\(port)/")) })
        #expect(error.code == .cannotConnect)
        #expect(error.isRetriable)
        #expect(error.curlCode == 7)
    }

    @Test("malformed URLs, other schemes and header injection are refused as invalid")
    func invalidRequests() async throws {
        let client = HTTPClient()
        defer { client.shutdown() }
        for url in ["not a url", "ftp://127.0.0.1/file", "file:///etc/passwd", "https://"] {
            let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(HTTPRequest(url: url)) })
            #expect(error.code == .invalidURL, "\(url)")
        }
        let injected = HTTPRequest(url: "http://127.0.0.1:1/", headers: ["X-Request-ID": "abc\r\nHost: evil"])
        let error = try #require(await expectHTTPError { () async throws(HTTPError) in try await client.send(injected) })
        #expect(error.code == .invalidRequest)
        let badMethod = HTTPRequest(method: "GET /x", url: "http://127.0.0.1:1/")
        #expect(await expectHTTPError { () async throws(HTTPError) in try await client.send(badMethod) }?.code == .invalidRequest)
    }

    @Test("shutdown fails running and later requests with shut-down")
    func shutdown() async throws {
        let server = try await TestServer.python()
        defer { server.stop() }
        let client = HTTPClient()
        let hanging = Task { () async throws -> HTTPResponse in
            try await client.send(HTTPRequest(url: server.http("/hang")))
        }
        try await server.waitForEvent { $0.hasPrefix("REQUEST ") }
        client.shutdown()
        #expect(httpError(await hanging.result)?.code == .shutDown)
        let later = await expectHTTPError { () async throws(HTTPError) in try await client.send(HTTPRequest(url: server.http("/echo"))) }
        #expect(later?.code == .shutDown)
        try await server.waitForEvent { $0.hasPrefix("CLOSED ") }
    }
}
