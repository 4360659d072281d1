/// An HTTP request method (a token such as `GET` or `PUT`).
public struct HTTPMethod: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The method as sent on the wire.
    public let rawValue: String

    /// A method spelled `rawValue`; it is checked to be an HTTP token when the request is sent.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    /// A method written as a string literal.
    public init(stringLiteral value: String) {
        self.init(value)
    }

    /// `GET`
    public static let get = HTTPMethod("GET")
    /// `HEAD`
    public static let head = HTTPMethod("HEAD")
    /// `POST`
    public static let post = HTTPMethod("POST")
    /// `PUT`
    public static let put = HTTPMethod("PUT")
    /// `PATCH`
    public static let patch = HTTPMethod("PATCH")
    /// `DELETE`
    public static let delete = HTTPMethod("DELETE")

    /// The method as sent.
    public var description: String { rawValue }
}

/// A TLS protocol version.
public enum TLSVersion: String, Sendable, Hashable, CaseIterable {
    /// TLS 1.2
    case v1_2 = "TLSv1.2"
    /// TLS 1.3
    case v1_3 = "TLSv1.3"
}

/// How to authenticate the server and, for mutual TLS, ourselves. Verification of the server's
/// certificate chain and host name is always on: there is deliberately no way to switch it off.
///
/// libcurl reuses a connection only for requests with the same TLS settings, so one client can talk
/// to peers that each need their own CA, client certificate or pin.
public struct TLSConfiguration: Sendable, Hashable {
    /// A PEM file of CA certificates to trust instead of the system store.
    public var caFile: String?
    /// A PEM client certificate (chain) for mutual TLS.
    public var clientCertificateFile: String?
    /// The PEM private key of ``clientCertificateFile`` (unencrypted; keep it readable only by us).
    public var clientKeyFile: String?
    /// The server's public key pin: `sha256//<base64>` (several separated by `;`) or a PEM/DER file.
    public var pinnedPublicKey: String?
    /// The oldest TLS version accepted; never below TLS 1.2.
    public var minimumVersion: TLSVersion

    /// Settings for a peer; the defaults trust the system CA store and accept TLS 1.2 and later.
    public init(
        caFile: String? = nil,
        clientCertificateFile: String? = nil,
        clientKeyFile: String? = nil,
        pinnedPublicKey: String? = nil,
        minimumVersion: TLSVersion = .v1_2
    ) {
        self.caFile = caFile
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
        self.pinnedPublicKey = pinnedPublicKey
        self.minimumVersion = minimumVersion
    }

    /// The system CA store, TLS 1.2 or later, no client certificate, no pin.
    public static let `default` = TLSConfiguration()
}

/// How long a request may take.
public struct HTTPTimeouts: Sendable, Hashable {
    /// Time allowed to resolve, connect and finish the TLS handshake.
    public var connect: Duration
    /// A transfer slower than this many bytes per second for ``stallTime`` is aborted as stalled.
    public var minimumSpeed: Int
    /// How long a transfer may stay below ``minimumSpeed`` before it is aborted.
    public var stallTime: Duration
    /// The cap on the whole request, from queueing to the last byte.
    public var total: Duration

    /// Limits for one request; the defaults suit a FHIR peer on a WAN.
    public init(
        connect: Duration = .seconds(10),
        minimumSpeed: Int = 1,
        stallTime: Duration = .seconds(30),
        total: Duration = .seconds(300)
    ) {
        self.connect = connect
        self.minimumSpeed = minimumSpeed
        self.stallTime = stallTime
        self.total = total
    }
}

/// One HTTP request. The URL must be `https://`, or `http://` to a loopback host (127.0.0.0/8, ::1,
/// `localhost`); anything else is refused before a connection is made.
///
/// The transport adds `Accept-Encoding: gzip` (and decodes the response), suppresses libcurl's
/// `Expect: 100-continue`, and never follows redirects: a 3xx is returned to the caller as is.
public struct HTTPRequest: Sendable {
    /// The request method.
    public var method: HTTPMethod
    /// The absolute URL, with the query already percent-encoded.
    public var url: String
    /// Header fields to send; the transport owns `Accept-Encoding` and `Expect`.
    public var headers: HTTPHeaders
    /// The request body. `POST`, `PUT` and `PATCH` without a body send `Content-Length: 0`.
    public var body: [UInt8]?
    /// How to authenticate the server (and ourselves).
    public var tls: TLSConfiguration
    /// Connect, stall and total limits.
    public var timeouts: HTTPTimeouts
    /// A response body (after decoding) longer than this fails with ``HTTPError/Code/responseTooLarge``.
    public var maximumResponseBytes: Int

    /// A request; by default TLS uses the system CA store and responses are capped at 32 MiB.
    public init(
        method: HTTPMethod = .get,
        url: String,
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8]? = nil,
        tls: TLSConfiguration = .default,
        timeouts: HTTPTimeouts = HTTPTimeouts(),
        maximumResponseBytes: Int = 32 << 20
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.tls = tls
        self.timeouts = timeouts
        self.maximumResponseBytes = maximumResponseBytes
    }
}
