import CaresyncDaemon
import FHIRModel
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A raw HTTP/1.1 exchange over a real TCP connection (no HTTP library in between).
struct RawHTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: String

    /// Runs the blocking exchange on its own thread, off the concurrency pool the server under test needs.
    static func exchange(port: Int, request: String) async throws -> RawHTTPResponse {
        let result: Result<RawHTTPResponse, any Error> = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: Result { try blockingExchange(port: port, request: request) }) }.start()
        }
        return try result.get()
    }

    static func blockingExchange(port: Int, request: String) throws -> RawHTTPResponse {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "connect: \(String(cString: strerror(errno)))")
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        let headEnd = try #require(text.range(of: "\r\n\r\n"))
        let headLines = text[..<headEnd.lowerBound].components(separatedBy: "\r\n")
        let statusParts = headLines[0].split(separator: " ")
        var headers: [String: String] = [:]
        for line in headLines.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces)
        }
        return RawHTTPResponse(status: Int(statusParts[1]) ?? 0, headers: headers, body: String(text[headEnd.upperBound...]))
    }

    static func get(port: Int, path: String, method: String = "GET") async throws -> RawHTTPResponse {
        try await exchange(port: port, request: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n")
    }
}

@Suite("Metrics endpoint")
struct MetricsEndpointTests {
    @Test("GET /metrics over TCP: Prometheus text format with the recorded values")
    func scrape() async throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = CaresyncMetrics(factory: CaresyncMetrics.prometheusFactory(registry: registry))
        metrics.recordPush(peer: "icb-hub", .succeeded)
        metrics.recordPush(peer: "icb-hub", .succeeded)
        metrics.recordPush(peer: "riverside", .deadLettered)
        metrics.recordPull(peer: "riverside", type: .carePlan, .succeeded, records: 40)
        metrics.setQueueDepth(peer: "riverside", 17)
        metrics.setOldestQueuedAge(peer: "riverside", .seconds(90))
        metrics.setOpenConflicts(peer: "riverside", 2)
        metrics.setLag(peer: "riverside", .milliseconds(1500))
        metrics.setDeadLetters(peer: "riverside", 1)
        metrics.recordMerge(.merged, duration: .microseconds(300))
        metrics.recordHTTPRequest(peer: "icb-hub", method: "put", status: 412, duration: .milliseconds(40))
        metrics.recordReload(.refused)
        let health = HealthMonitor()
        let server = try MetricsHTTPServer(
            listen: ListenAddress(host: "127.0.0.1", port: 0), registry: registry, health: { health.check() }, logger: LogCollector().logger())
        #expect(server.boundAddress.port > 0)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await server.run() }
                let response = try await RawHTTPResponse.get(port: server.boundAddress.port, path: "/metrics")
                #expect(response.status == 200)
                #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
                #expect(response.headers["content-length"] == String(response.body.utf8.count))
                let lines = Set(response.body.split(separator: "\n").map(String.init))
                for expected in [
                    #"caresync_pushes_total{peer="icb-hub",outcome="succeeded"} 2"#,
                    #"caresync_pushes_total{peer="riverside",outcome="dead_lettered"} 1"#,
                    #"caresync_pulls_total{peer="riverside",type="CarePlan",outcome="succeeded"} 1"#,
                    #"caresync_pulled_records_total{peer="riverside",type="CarePlan"} 40"#,
                    #"caresync_outbox_depth{peer="riverside"} 17.0"#,
                    #"caresync_outbox_oldest_age_seconds{peer="riverside"} 90.0"#,
                    #"caresync_conflicts_open{peer="riverside"} 2.0"#,
                    #"caresync_lag_seconds{peer="riverside"} 1.5"#,
                    #"caresync_dead_letters{peer="riverside"} 1.0"#,
                    #"caresync_merge_duration_seconds_count{outcome="merged"} 1"#,
                    #"caresync_http_request_duration_seconds_count{peer="icb-hub",method="PUT",status_class="4xx"} 1"#,
                    #"caresync_config_reloads_total{outcome="refused"} 1"#,
                    "# TYPE caresync_pushes_total counter",
                    "# TYPE caresync_merge_duration_seconds histogram",
                ] {
                    #expect(lines.contains(expected), "missing: \(expected)\n\(response.body)")
                }
                #expect(lines.contains(#"caresync_merge_duration_seconds_bucket{outcome="merged",le="0.0005"} 1"#), "\(response.body)")

                metrics.recordPush(peer: "icb-hub", .succeeded)
                let again = try await RawHTTPResponse.get(port: server.boundAddress.port, path: "/metrics?x=1")
                #expect(again.body.contains(#"caresync_pushes_total{peer="icb-hub",outcome="succeeded"} 3"#))

                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("GET /healthz follows the health probe; other paths and methods are refused")
    func healthAndErrors() async throws {
        let health = HealthMonitor()
        let server = try MetricsHTTPServer(
            listen: ListenAddress(host: "127.0.0.1", port: 0), registry: PrometheusCollectorRegistry(), health: { health.check() },
            logger: LogCollector().logger())
        let port = server.boundAddress.port
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await server.run() }
                let healthy = try await RawHTTPResponse.get(port: port, path: "/healthz")
                #expect(healthy.status == 200)
                #expect(healthy.body == "ok\n")
                health.fail("sync.riverside", reason: "no cycle completed")
                let unhealthy = try await RawHTTPResponse.get(port: port, path: "/healthz")
                #expect(unhealthy.status == 503)
                #expect(unhealthy.body == "unhealthy\nsync.riverside: no cycle completed\n")
                let head = try await RawHTTPResponse.get(port: port, path: "/healthz", method: "HEAD")
                #expect(head.status == 503)
                #expect(head.body.isEmpty)
                health.recover("sync.riverside")
                health.degrade("state-store", reason: "the state directory is full")
                let degraded = try await RawHTTPResponse.get(port: port, path: "/healthz")
                #expect(degraded.status == 503)
                #expect(degraded.body == "degraded\nstate-store: the state directory is full\n")
                health.degrade("state-store", reason: nil)
                #expect(try await RawHTTPResponse.get(port: port, path: "/healthz").status == 200)
                #expect(try await RawHTTPResponse.get(port: port, path: "/").status == 404)
                let post = try await RawHTTPResponse.get(port: port, path: "/metrics", method: "POST")
                #expect(post.status == 405)
                #expect(post.headers["allow"] == "GET, HEAD")
                #expect(try await RawHTTPResponse.exchange(port: port, request: "nonsense\r\n\r\n").status == 400)
                let huge = "GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "a", count: 10_000) + "\r\n\r\n"
                let tooLarge = try await RawHTTPResponse.exchange(port: port, request: huge)
                #expect(tooLarge.status == 431, "\(tooLarge)")
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("a non-loopback address is refused unless explicitly allowed")
    func loopbackOnly() throws {
        let registry = PrometheusCollectorRegistry()
        #expect(
            performing: {
                try MetricsHTTPServer(
                    listen: ListenAddress(host: "0.0.0.0", port: 0), registry: registry, health: { .healthy }, logger: LogCollector().logger())
            },
            throws: { ($0 as? MetricsServerError)?.code == .nonLoopback })
        let exposed = try MetricsHTTPServer(
            listen: ListenAddress(host: "0.0.0.0", port: 0), allowNonLoopback: true, registry: registry, health: { .healthy },
            logger: LogCollector().logger())
        #expect(exposed.boundAddress.port > 0)
        let local = try MetricsHTTPServer(
            listen: ListenAddress(host: "::1", port: 0), registry: registry, health: { .healthy }, logger: LogCollector().logger())
        #expect(local.boundAddress.host == "::1")
    }

    @Test("a port in use is a clear error")
    func portInUse() throws {
        let registry = PrometheusCollectorRegistry()
        let first = try MetricsHTTPServer(listen: ListenAddress(host: "127.0.0.1", port: 0), registry: registry, health: { .healthy }, logger: LogCollector().logger())
        #expect(
            performing: {
                try MetricsHTTPServer(listen: first.boundAddress, registry: registry, health: { .healthy }, logger: LogCollector().logger())
            },
            throws: { ($0 as? MetricsServerError)?.code == .bind && "\($0)".contains("Address already in use") })
    }
}
