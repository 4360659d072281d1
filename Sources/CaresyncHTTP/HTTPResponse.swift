/// The HTTP version a response came over.
public enum HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    /// HTTP/1.0
    case http1_0
    /// HTTP/1.1
    case http1_1
    /// HTTP/2
    case http2
    /// HTTP/3
    case http3

    /// `HTTP/1.1`, `HTTP/2`, …
    public var description: String {
        switch self {
        case .http1_0: "HTTP/1.0"
        case .http1_1: "HTTP/1.1"
        case .http2: "HTTP/2"
        case .http3: "HTTP/3"
        }
    }
}

/// Where the time of one request went, each measured from its start.
public struct HTTPTimings: Sendable, Hashable {
    /// Until the host name was resolved.
    public var nameLookup: Duration
    /// Until the TCP connection was up (zero when a connection was reused).
    public var connect: Duration
    /// Until the TLS handshake was done (zero for plain HTTP or a reused connection).
    public var tlsHandshake: Duration
    /// Until the first response byte arrived.
    public var firstByte: Duration
    /// The whole request.
    public var total: Duration

    /// Timings as measured.
    public init(nameLookup: Duration, connect: Duration, tlsHandshake: Duration, firstByte: Duration, total: Duration) {
        self.nameLookup = nameLookup
        self.connect = connect
        self.tlsHandshake = tlsHandshake
        self.firstByte = firstByte
        self.total = total
    }
}

/// A complete HTTP response, whatever its status: interpreting the status is the caller's job.
public struct HTTPResponse: Sendable {
    /// The status code (200, 404, …).
    public var status: Int
    /// The header fields of the final response, in order.
    public var headers: HTTPHeaders
    /// The body, already decoded when the server sent it gzip-encoded.
    public var body: [UInt8]
    /// The HTTP version negotiated.
    public var httpVersion: HTTPVersion
    /// The TLS version of the connection, or `nil` for plain HTTP.
    public var tlsVersion: TLSVersion?
    /// Where the time went.
    public var timings: HTTPTimings
    /// How many new connections this request opened (0 when it reused one).
    public var newConnections: Int

    /// Whether the request went over an already open connection.
    public var connectionReused: Bool { newConnections == 0 }

    /// A response as received.
    public init(
        status: Int,
        headers: HTTPHeaders,
        body: [UInt8],
        httpVersion: HTTPVersion,
        tlsVersion: TLSVersion?,
        timings: HTTPTimings,
        newConnections: Int
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.httpVersion = httpVersion
        self.tlsVersion = tlsVersion
        self.timings = timings
        self.newConnections = newConnections
    }
}
