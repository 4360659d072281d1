import CaresyncHTTP
import FHIRJSON
import Foundation

/// `caresync-bench http`: requests/s of ``HTTPClient`` next to `wrk` against the same endpoint with the
/// same concurrency in the same run. Target (DESIGN §10): at least 0.8× wrk's rate.
///
/// Two endpoints:
/// - **nginx, a 1 KiB static file** (Debian `nginx-light`, one worker, keep-alive without a request
///   limit) at 1, 16 and 64 concurrent requests: the server costs almost nothing, so the figure is the
///   client's own per-request cost against wrk's, the hardest comparison for any client.
/// - **caresync-store, a FHIR read** (`GET /fhir/CarePlan/{id}` of a 2 KB care plan, the release store
///   from `CARESYNC_BIN_DIR`) at 1 and 16 concurrent requests: the endpoint caresync actually talks to,
///   where the server's work per request is part of every figure.
///
/// wrk runs one thread, as the transport runs its transfers on one thread. The machine is shared, so
/// each figure is the best of several short rounds that alternate wrk and the transport. A progress
/// line also gives each side's CPU time per request (user + system, from getrusage), which the shared
/// machine's load disturbs less.
enum HTTPBench {
    static let rounds = 5
    static let seconds = 2

    /// One endpoint and the concurrencies measured against it.
    struct Endpoint {
        var name: String
        var url: String
        var concurrencies: [Int]
        /// The body every answer must have (checked on each request), from a first GET.
        var expectedSize: Int
    }

    static func run() async throws {
        let client = HTTPClient(configuration: .init(maximumConnectionsPerHost: 64))
        defer { client.shutdown() }

        let nginx = try Nginx.start()
        defer { nginx.stop() }
        try await measure(
            Endpoint(
                name: "GET 1 KiB static file from nginx", url: "http://127.0.0.1:\(nginx.port)/resource.json",
                concurrencies: [1, 16, 64], expectedSize: Nginx.documentSize),
            client: client)

        let store = try BenchStore.start()
        defer { store.stop() }
        let url = try await store.seedCarePlan(client: client)
        let first = try await client.send(HTTPRequest(url: url))
        guard first.status == 200 else { throw BenchError("caresync-store answered \(first.status) to \(url)") }
        try await measure(
            Endpoint(
                name: "GET /fhir/CarePlan/{id} (\(first.body.count) B) from caresync-store", url: url, concurrencies: [1, 16],
                expectedSize: first.body.count),
            client: client)
    }

    static func measure(_ endpoint: Endpoint, client: HTTPClient) async throws {
        print("http: warming up against \(endpoint.url)")
        let warmUp = endpoint.concurrencies.max() ?? 1
        _ = try await transportRate(client: client, endpoint: endpoint, concurrency: warmUp, seconds: 1)
        _ = try wrkRate(url: endpoint.url, concurrency: warmUp, seconds: 1)

        for concurrency in endpoint.concurrencies {
            var baseline = 0.0
            var value = 0.0
            var wrkCPU = CPUCounter(who: RUSAGE_CHILDREN)
            var ourCPU = CPUCounter(who: RUSAGE_SELF)
            for _ in 0..<rounds {
                let wrk = try wrkCPU.measure { try wrkRate(url: endpoint.url, concurrency: concurrency, seconds: seconds) }
                baseline = max(baseline, wrk)
                let ours = try await ourCPU.measure {
                    try await transportRate(client: client, endpoint: endpoint, concurrency: concurrency, seconds: seconds)
                }
                value = max(value, ours)
            }
            print(
                "http: \(endpoint.name), \(concurrency) concurrent: CPU per request "
                    + "\(wrkCPU.microsecondsPerRequest(seconds: seconds)) µs wrk, "
                    + "\(ourCPU.microsecondsPerRequest(seconds: seconds)) µs transport (this process)")
            let ratio = value / baseline
            BenchResult(
                area: "http", scenario: "\(endpoint.name), HTTP/1.1 keep-alive, \(concurrency) concurrent", unit: "req/s",
                value: value, baselineName: "wrk -t1 -c\(concurrency), same URL", baseline: baseline, ratio: ratio,
                target: "ratio >= 0.8 (best of \(rounds) alternating \(seconds) s rounds)", met: ratio >= 0.8
            ).emit()
        }
    }

    /// `concurrency` tasks each sending GETs back to back for `seconds`; completed requests per second.
    static func transportRate(client: HTTPClient, endpoint: Endpoint, concurrency: Int, seconds: Int) async throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .seconds(seconds)
        let request = HTTPRequest(url: endpoint.url)
        let expectedSize = endpoint.expectedSize
        let completed = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var count = 0
                    while clock.now < deadline {
                        let response = try await client.send(request)
                        guard response.status == 200, response.body.count == expectedSize else {
                            throw BenchError("unexpected response: status \(response.status), \(response.body.count) bytes")
                        }
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = clock.now - start
        return Double(completed) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// wrk's `Requests/sec` for the same URL and concurrency.
    static func wrkRate(url: String, concurrency: Int, seconds: Int) throws -> Double {
        let output = try runTool(["wrk", "-t1", "-c\(concurrency)", "-d\(seconds)s", url])
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
            let rate = Double(line.dropFirst("Requests/sec:".count).trimmingCharacters(in: .whitespaces))
        else { throw BenchError("cannot read wrk's output:\n\(output)") }
        if output.contains("Non-2xx") || output.contains("Socket errors") {
            throw BenchError("wrk saw errors:\n\(output)")
        }
        return rate
    }
}

/// The release `caresync-store` on a free loopback port with a fresh database in a temporary directory.
struct BenchStore {
    let process: Process
    let port: Int
    let directory: URL

    /// Where the release products are: `CARESYNC_BIN_DIR` (set by `Benchmarks/run`), else beside this
    /// executable.
    static var binaryDirectory: URL {
        if let directory = ProcessInfo.processInfo.environment["CARESYNC_BIN_DIR"] {
            return URL(fileURLWithPath: directory)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static func start() throws -> BenchStore {
        let binary = binaryDirectory.appendingPathComponent("caresync-store")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw BenchError("no caresync-store at \(binary.path) (swift build -c release)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("caresync-bench-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("store.sqlite").path, "--log-level", "error"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        var line: [UInt8] = []
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != 0x0A { line.append(byte) }
        let text = String(decoding: line, as: UTF8.self)
        let prefix = "listening on 127.0.0.1:"
        guard text.hasPrefix(prefix), let port = Int(text.dropFirst(prefix.count)) else {
            process.terminate()
            throw BenchError("caresync-store did not announce its port: \(text)")
        }
        return BenchStore(process: process, port: port, directory: directory)
    }

    /// Creates the queue benchmark's care plan and returns its read URL.
    func seedCarePlan(client: HTTPClient) async throws -> String {
        var body = QueueBench.carePlan(id: "bench")
        // The store assigns ids and versions: send the plan without server metadata.
        if let parsed = try? JSON.parse(body), case .object(var object) = parsed {
            object["id"] = nil
            object["meta"] = nil
            body = JSON.object(object).serialized()
        }
        let response = try await client.send(
            HTTPRequest(
                method: .post, url: "http://127.0.0.1:\(port)/fhir/CarePlan", headers: ["Content-Type": "application/fhir+json"],
                body: body))
        guard response.status == 201, let id = (try? JSON.parse(response.body))?["id"]?.stringValue else {
            throw BenchError("caresync-store did not create the benchmark care plan: status \(response.status)")
        }
        return "http://127.0.0.1:\(port)/fhir/CarePlan/\(id)"
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// User + system CPU time of this process (`RUSAGE_SELF`) or of its waited-for children
/// (`RUSAGE_CHILDREN`: wrk) over measured rounds, and the requests those rounds completed.
struct CPUCounter {
    let who: __rusage_who
    private(set) var seconds = 0.0
    private(set) var requests = 0.0

    init(who: __rusage_who) {
        self.who = who
    }

    /// Runs one round that returns requests/s over `roundSeconds`, adding its CPU time and requests.
    mutating func measure(_ round: () throws -> Double) rethrows -> Double {
        let before = now()
        let rate = try round()
        account(rate: rate, cpu: now() - before)
        return rate
    }

    /// The async variant of ``measure(_:)``.
    mutating func measure(_ round: () async throws -> Double) async rethrows -> Double {
        let before = now()
        let rate = try await round()
        account(rate: rate, cpu: now() - before)
        return rate
    }

    /// Mean CPU microseconds per request, rounded to 0.1.
    func microsecondsPerRequest(seconds roundSeconds: Int) -> Double {
        (seconds / (requests * Double(roundSeconds)) * 1e7).rounded() / 10
    }

    private mutating func account(rate: Double, cpu: Double) {
        seconds += cpu
        requests += rate
    }

    private func now() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        return user + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// An nginx serving one static file on a free loopback port from a temporary prefix.
struct Nginx {
    static let documentSize = 1024

    let process: Process
    let port: Int
    let prefix: URL

    static func start() throws -> Nginx {
        let prefix = FileManager.default.temporaryDirectory.appendingPathComponent("caresync-bench-nginx-\(UUID().uuidString)")
        let root = prefix.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: prefix.path)
        let line = Array("{\"resourceType\":\"Encounter\",\"id\":\"bench\",\"status\":\"finished\"}".utf8)
        var document = (0..<(documentSize / line.count + 1)).flatMap { _ in line }.prefix(documentSize - 1)
        document.append(0x0A)
        try Data(document).write(to: root.appendingPathComponent("resource.json"))

        let port = try freePort()
        let config = """
            worker_processes 1;
            pid \(prefix.path)/nginx.pid;
            error_log \(prefix.path)/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                keepalive_requests 100000000;
                keepalive_timeout 120s;
                client_body_temp_path \(prefix.path)/body;
                proxy_temp_path \(prefix.path)/proxy;
                fastcgi_temp_path \(prefix.path)/fastcgi;
                uwsgi_temp_path \(prefix.path)/uwsgi;
                scgi_temp_path \(prefix.path)/scgi;
                default_type application/json;
                server {
                    listen 127.0.0.1:\(port);
                    root \(root.path);
                }
            }
            """
        let configFile = prefix.appendingPathComponent("nginx.conf")
        try Data(config.utf8).write(to: configFile)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["nginx", "-p", prefix.path, "-e", "\(prefix.path)/error.log", "-c", configFile.path, "-g", "daemon off;"]
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let nginx = Nginx(process: process, port: port, prefix: prefix)
        for _ in 0..<200 {
            if canConnect(port: port) { return nginx }
            guard process.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        nginx.stop()
        let log = (try? String(contentsOf: prefix.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
        throw BenchError("nginx did not start (is nginx-light installed? `make bench` installs it):\n\(log)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: prefix)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    private static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound else { throw BenchError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a tool from PATH and returns its stdout; throws when it exits non-zero.
@discardableResult
func runTool(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchError("\(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
    return String(decoding: data, as: UTF8.self)
}
