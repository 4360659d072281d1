import Foundation
public import Logging
public import Prometheus
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 server on POSIX sockets for scrapes: `GET /metrics` (Prometheus text format) and
/// `GET /healthz` (200 while healthy, 503 with the problems otherwise). One request per connection,
/// served one at a time on a dedicated thread; the `caresync` binary links no NIO.
///
/// The socket is bound by the initialiser (so the port is known before ``run()``), and only to a
/// loopback address unless `allowNonLoopback` is set.
public final class MetricsHTTPServer: Service, Sendable {
    /// The address actually bound (the real port when 0 was asked for).
    public let boundAddress: ListenAddress

    private let listenDescriptor: Int32
    private let wakeDescriptors: (read: Int32, write: Int32)
    private let registry: PrometheusCollectorRegistry
    private let health: @Sendable () -> HealthStatus
    private let logger: Logger

    /// The longest request head accepted.
    static let maximumRequestBytes = 8 * 1024
    /// How long a connection may take to send its request or read the answer.
    static let ioTimeoutSeconds = 5

    /// Binds `listen` now.
    public init(
        listen: ListenAddress,
        allowNonLoopback: Bool = false,
        registry: PrometheusCollectorRegistry,
        health: @escaping @Sendable () -> HealthStatus,
        logger: Logger
    ) throws(MetricsServerError) {
        guard allowNonLoopback || listen.isLoopback else {
            throw MetricsServerError(.nonLoopback, "\(listen) is not a loopback address; set metrics.allowNonLoopback to expose metrics")
        }
        let socket = try Self.bind(listen)
        var pipeDescriptors: [Int32] = [0, 0]
        guard pipe(&pipeDescriptors) == 0 else {
            close(socket.descriptor)
            throw MetricsServerError(.socket, "pipe: \(String(cString: strerror(errno)))")
        }
        for descriptor in pipeDescriptors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        self.listenDescriptor = socket.descriptor
        self.boundAddress = socket.address
        self.wakeDescriptors = (pipeDescriptors[0], pipeDescriptors[1])
        self.registry = registry
        self.health = health
        self.logger = logger
    }

    deinit {
        close(listenDescriptor)
        close(wakeDescriptors.read)
        close(wakeDescriptors.write)
    }

    /// Serves until graceful shutdown or cancellation.
    public func run() async throws {
        logger.info("metrics endpoint listening", metadata: ["address": .string(boundAddress.description)])
        await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let thread = Thread { [self] in
                    self.serve()
                    continuation.resume()
                }
                thread.name = "caresync-metrics"
                thread.start()
            }
        } onCancelOrGracefulShutdown: { [wakeDescriptors] in
            var byte: UInt8 = 1
            _ = write(wakeDescriptors.write, &byte, 1)
        }
    }

    // MARK: Serving (on the server thread)

    private func serve() {
        var descriptors = [
            pollfd(fd: listenDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeDescriptors.read, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            let ready = poll(&descriptors, nfds_t(descriptors.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("metrics endpoint stopped", metadata: ["error": .string(String(cString: strerror(errno)))])
                return
            }
            if descriptors[1].revents != 0 { return }
            guard descriptors[0].revents & Int16(POLLIN) != 0 else { continue }
            let connection = accept(listenDescriptor, nil, nil)
            guard connection >= 0 else { continue }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var timeout = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let response: HTTPResponse
        switch readRequestHead(connection) {
        case .head(let head): response = respond(to: head)
        case .tooLarge: response = HTTPResponse(status: 431, reason: "Request Header Fields Too Large", body: "request head too large\n")
        case .closed: return
        }
        send(response, on: connection)
    }

    private enum ReadResult {
        case head(String)
        case tooLarge
        case closed
    }

    private func readRequestHead(_ connection: Int32) -> ReadResult {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return .closed }
            received += buffer[0..<count]
            if let end = Self.firstRange(of: terminator, in: received) {
                guard end <= Self.maximumRequestBytes else { return .tooLarge }
                return .head(String(decoding: received[..<end], as: UTF8.self))
            }
            if received.count > Self.maximumRequestBytes { return .tooLarge }
        }
    }

    static func firstRange(of pattern: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        for start in 0...(bytes.count - pattern.count) where bytes[start..<(start + pattern.count)].elementsEqual(pattern) {
            return start
        }
        return nil
    }

    func respond(to head: String) -> HTTPResponse {
        let requestLine = head.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") else {
            return HTTPResponse(status: 400, reason: "Bad Request", body: "bad request\n")
        }
        let method = parts[0]
        guard method == "GET" || method == "HEAD" else {
            return HTTPResponse(status: 405, reason: "Method Not Allowed", body: "only GET and HEAD\n", extraHeaders: ["Allow: GET, HEAD"])
        }
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        var response: HTTPResponse
        switch path {
        case "/metrics":
            response = HTTPResponse(
                status: 200, reason: "OK", body: registry.emitToBuffer(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/healthz":
            let status = health()
            if !status.isHealthy {
                response = HTTPResponse(
                    status: 503, reason: "Service Unavailable",
                    body: (["unhealthy"] + status.problems + status.degraded).joined(separator: "\n") + "\n")
            } else if !status.degraded.isEmpty {
                response = HTTPResponse(
                    status: 503, reason: "Service Unavailable", body: (["degraded"] + status.degraded).joined(separator: "\n") + "\n")
            } else {
                response = HTTPResponse(status: 200, reason: "OK", body: "ok\n")
            }
        default:
            response = HTTPResponse(status: 404, reason: "Not Found", body: "not found; try /metrics or /healthz\n")
        }
        if method == "HEAD" { response.omitBody = true }
        return response
    }

    private func send(_ response: HTTPResponse, on connection: Int32) {
        let bytes = response.serialized()
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return }
            offset += sent
        }
        shutdown(connection, Int32(SHUT_WR))
        // Read what the client still sends (up to a limit) before closing, so unread input does not turn the
        // close into a reset that destroys the response in flight.
        var drained = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        while drained < 64 * 1024 {
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            drained += count
        }
    }

    // MARK: Binding

    private static func bind(_ listen: ListenAddress) throws(MetricsServerError) -> (descriptor: Int32, address: ListenAddress) {
        let host = listen.host == "localhost" ? "127.0.0.1" : listen.host
        let isIPv6 = host.contains(":")
        let descriptor = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw MetricsServerError(.socket, "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var bound: Int32
        if isIPv6 {
            setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(listen.port).bigEndian)
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else {
                close(descriptor)
                throw MetricsServerError(.socket, "\(host) is not an IPv6 address")
            }
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(listen.port).bigEndian)
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
                close(descriptor)
                throw MetricsServerError(.socket, "\(host) is not an IPv4 address")
            }
            bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard bound == 0, Glibc.listen(descriptor, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw MetricsServerError(.bind, "cannot listen on \(listen): \(reason)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        let port: UInt16 =
            isIPv6
            ? withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) } }
            : withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } }
        return (descriptor, ListenAddress(host: host, port: Int(port)))
    }
}

/// A response of the metrics server.
struct HTTPResponse {
    var status: Int
    var reason: String
    var body: [UInt8]
    var contentType = "text/plain; charset=utf-8"
    var extraHeaders: [String] = []
    var omitBody = false

    init(status: Int, reason: String, body: [UInt8], contentType: String = "text/plain; charset=utf-8", extraHeaders: [String] = []) {
        self.status = status
        self.reason = reason
        self.body = body
        self.contentType = contentType
        self.extraHeaders = extraHeaders
    }

    init(status: Int, reason: String, body: String, extraHeaders: [String] = []) {
        self.init(status: status, reason: reason, body: Array(body.utf8), extraHeaders: extraHeaders)
    }

    func serialized() -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        head += "Cache-Control: no-store\r\n"
        head += "Connection: close\r\n"
        for header in extraHeaders { head += header + "\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (omitBody ? [] : body)
    }
}

/// The metrics endpoint could not start.
public struct MetricsServerError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public enum Code: String, Sendable {
        /// The address is not loopback and exposure was not allowed.
        case nonLoopback = "non-loopback"
        /// A socket call failed.
        case socket
        /// The address is in use or not available.
        case bind
    }

    /// What failed.
    public let code: Code
    /// What happened, in a sentence.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
