import FHIRJSON
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 answer as read off the socket.
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    /// Interim (1xx) statuses received before the final answer.
    var interim: [Int]

    /// The first header named `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The body parsed as JSON (throws when it is not JSON).
    func json() throws -> JSON { try JSON.parse(body) }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Why an HTTP exchange did not produce an answer.
enum HTTPTestError: Error, CustomStringConvertible {
    case connectFailed(Int32)
    /// The server closed (or reset) the connection before a complete answer.
    case closedWithoutAnswer(bytesReceived: Int)
    case malformed(String)

    var description: String {
        switch self {
        case .connectFailed(let code): "connect failed: errno \(code)"
        case .closedWithoutAnswer(let count): "connection closed without a complete answer (\(count) bytes received)"
        case .malformed(let what): "malformed HTTP answer: \(what)"
        }
    }
}

/// A deliberately small HTTP/1.1 client over POSIX sockets, so the store's tests do not depend on the
/// caresync HTTP client: one connection per request (`Connection: close`), `Content-Length` and chunked
/// answers, interim 1xx answers skipped (and recorded). Blocking I/O runs on its own thread.
struct HTTPTestClient: Sendable {
    let port: Int
    var host = "127.0.0.1"

    /// Sends one request and reads the answer. `path` includes the query (`/fhir/CarePlan?_count=5`).
    func send(
        _ method: String,
        _ path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) async throws -> HTTPAnswer {
        let port = port
        let host = host
        let request = Self.encode(method: method, path: path, host: "\(host):\(port)", headers: headers, body: body)
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try Self.exchange(host: host, port: port, request: request) })
            }
            thread.start()
        }
    }

    /// `send` with a JSON body and `Content-Type: application/fhir+json`.
    func send(_ method: String, _ path: String, headers: [(String, String)] = [], json: String) async throws -> HTTPAnswer {
        try await send(method, path, headers: headers + [("Content-Type", "application/fhir+json")], body: Array(json.utf8))
    }

    private static func encode(method: String, path: String, host: String, headers: [(String, String)], body: [UInt8]?) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + (body ?? [])
    }

    private static func exchange(host: String, port: Int, request: [UInt8]) throws -> HTTPAnswer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPTestError.connectFailed(errno) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 120, tv_usec: 0)  // a hung server fails the test instead of hanging it
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw HTTPTestError.connectFailed(errno) }
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }  // the server may close early (an injected reset); read what it said
            sent += count
        }
        var reader = AnswerReader(fd: fd)
        return try reader.read()
    }
}

/// Reads one answer (after any 1xx) from a socket.
private struct AnswerReader {
    let fd: Int32
    var buffer: [UInt8] = []
    var position = 0
    var received = 0

    init(fd: Int32) { self.fd = fd }

    mutating func read() throws -> HTTPAnswer {
        var interim: [Int] = []
        while true {
            let head = try readHead()
            let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
            let statusParts = lines[0].split(separator: " ", maxSplits: 2)
            guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
                throw HTTPTestError.malformed("status line \(lines[0])")
            }
            var headers: [(name: String, value: String)] = []
            for line in lines.dropFirst() where !line.isEmpty {
                guard let colon = line.firstIndex(of: ":") else { throw HTTPTestError.malformed("header line \(line)") }
                headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            if (100..<200).contains(status) {
                interim.append(status)
                continue
            }
            var answer = HTTPAnswer(status: status, headers: headers, body: [], interim: interim)
            if status == 204 || status == 304 { return answer }
            if let length = answer.header("Content-Length").flatMap(Int.init) {
                answer.body = try readExactly(length)
            } else if answer.header("Transfer-Encoding")?.lowercased().contains("chunked") == true {
                answer.body = try readChunked()
            } else {
                answer.body = readToEnd()
            }
            return answer
        }
    }

    private mutating func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 && errno == EAGAIN { throw HTTPTestError.malformed("no answer within the socket timeout") }
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<count])
        received += count
        return true
    }

    private mutating func readHead() throws -> String {
        let terminator: [UInt8] = [13, 10, 13, 10]
        while true {
            if buffer.count - position >= 4 {
                for index in position...(buffer.count - 4) where buffer[index..<index + 4].elementsEqual(terminator) {
                    let head = String(decoding: buffer[position..<index], as: UTF8.self)
                    position = index + 4
                    return head
                }
            }
            guard try fill() else { throw HTTPTestError.closedWithoutAnswer(bytesReceived: received) }
        }
    }

    private mutating func readExactly(_ count: Int) throws -> [UInt8] {
        while buffer.count - position < count {
            guard try fill() else { throw HTTPTestError.closedWithoutAnswer(bytesReceived: received) }
        }
        defer { position += count }
        return Array(buffer[position..<position + count])
    }

    private mutating func readLine() throws -> String {
        while true {
            if let index = buffer[position...].firstIndex(of: 10), index > position, buffer[index - 1] == 13 {
                let line = String(decoding: buffer[position..<index - 1], as: UTF8.self)
                position = index + 1
                return line
            }
            guard try fill() else { throw HTTPTestError.closedWithoutAnswer(bytesReceived: received) }
        }
    }

    private mutating func readChunked() throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let sizeLine = try readLine()
            guard let size = Int(sizeLine.split(separator: ";")[0], radix: 16) else { throw HTTPTestError.malformed("chunk size \(sizeLine)") }
            if size == 0 {
                while try !readLine().isEmpty {}
                return body
            }
            body += try readExactly(size)
            _ = try readLine()
        }
    }

    private mutating func readToEnd() -> [UInt8] {
        while (try? fill()) == true {}
        defer { position = buffer.count }
        return Array(buffer[position...])
    }
}
