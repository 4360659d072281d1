/// Why a request produced no HTTP response. HTTP status codes are not transport errors: a 404 or a
/// 503 is an ``HTTPResponse``.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable kind of failure (its `description` is a kebab-case string).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Kind: String {
            case insecureURLRefused = "insecure-url-refused"
            case invalidURL = "invalid-url"
            case invalidRequest = "invalid-request"
            case dnsFailure = "dns-failure"
            case cannotConnect = "cannot-connect"
            case tlsHandshakeFailed = "tls-handshake-failed"
            case certificateUntrusted = "certificate-untrusted"
            case pinnedKeyMismatch = "pinned-key-mismatch"
            case clientCertificateRejected = "client-certificate-rejected"
            case localCredentialsInvalid = "local-credentials-invalid"
            case connectTimeout = "connect-timeout"
            case transferStalled = "transfer-stalled"
            case totalTimeout = "total-timeout"
            case sendFailed = "send-failed"
            case receiveFailed = "receive-failed"
            case protocolError = "protocol-error"
            case responseTooLarge = "response-too-large"
            case cancelled = "cancelled"
            case shutDown = "shut-down"
            case internalError = "internal-error"
        }

        fileprivate let kind: Kind

        fileprivate init(_ kind: Kind) {
            self.kind = kind
        }

        /// `http://` to a host that is not a loopback address; refused before any connection.
        public static let insecureURLRefused = Code(.insecureURLRefused)
        /// The URL could not be parsed, or its scheme is not `http`/`https`.
        public static let invalidURL = Code(.invalidURL)
        /// A method, header name or header value that cannot be sent (e.g. a line break in a value).
        public static let invalidRequest = Code(.invalidRequest)
        /// The host name did not resolve.
        public static let dnsFailure = Code(.dnsFailure)
        /// No TCP connection could be made (refused, unreachable).
        public static let cannotConnect = Code(.cannotConnect)
        /// The TLS handshake failed (no common version or cipher, alert from the server, reset).
        public static let tlsHandshakeFailed = Code(.tlsHandshakeFailed)
        /// The server's certificate did not verify against the trusted CAs or the host name.
        public static let certificateUntrusted = Code(.certificateUntrusted)
        /// The server's public key does not match ``TLSConfiguration/pinnedPublicKey``.
        public static let pinnedKeyMismatch = Code(.pinnedKeyMismatch)
        /// The server requires a client certificate and refused ours (or our lack of one).
        public static let clientCertificateRejected = Code(.clientCertificateRejected)
        /// Our CA file, client certificate or key could not be read or used.
        public static let localCredentialsInvalid = Code(.localCredentialsInvalid)
        /// Connecting (TCP + TLS) took longer than ``HTTPTimeouts/connect``.
        public static let connectTimeout = Code(.connectTimeout)
        /// The transfer stayed below ``HTTPTimeouts/minimumSpeed`` for ``HTTPTimeouts/stallTime``.
        public static let transferStalled = Code(.transferStalled)
        /// The request took longer than ``HTTPTimeouts/total``.
        public static let totalTimeout = Code(.totalTimeout)
        /// Sending the request failed (connection reset or closed).
        public static let sendFailed = Code(.sendFailed)
        /// Receiving the response failed (connection reset or closed).
        public static let receiveFailed = Code(.receiveFailed)
        /// The server broke HTTP: an empty or malformed reply, a truncated body, an HTTP/2 error.
        public static let protocolError = Code(.protocolError)
        /// The response body exceeded ``HTTPRequest/maximumResponseBytes``.
        public static let responseTooLarge = Code(.responseTooLarge)
        /// The calling task was cancelled; the transfer was abandoned and its connection closed.
        public static let cancelled = Code(.cancelled)
        /// The client was shut down before the request completed.
        public static let shutDown = Code(.shutDown)
        /// libcurl failed in a way none of the above describes (out of memory, a bug).
        public static let internalError = Code(.internalError)

        /// The stable kebab-case name, e.g. `transfer-stalled`.
        public var description: String { kind.rawValue }

        /// Whether sending the same request again later may succeed.
        public var isRetriable: Bool {
            switch kind {
            case .dnsFailure, .cannotConnect, .tlsHandshakeFailed, .connectTimeout, .transferStalled,
                .totalTimeout, .sendFailed, .receiveFailed, .protocolError:
                true
            case .insecureURLRefused, .invalidURL, .invalidRequest, .certificateUntrusted, .pinnedKeyMismatch,
                .clientCertificateRejected, .localCredentialsInvalid, .responseTooLarge, .cancelled, .shutDown,
                .internalError:
                false
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, for a person.
    public var message: String
    /// The request URL without user info, query or fragment (they may carry secrets).
    public var url: String
    /// libcurl's `CURLcode`, when libcurl reported the failure.
    public var curlCode: Int32?
    /// libcurl's own text for the failure (`CURLOPT_ERRORBUFFER`, else `curl_easy_strerror`).
    public var curlMessage: String?

    /// Whether sending the same request again later may succeed (network trouble, timeouts, a
    /// server that broke the protocol), as opposed to a problem retrying cannot fix.
    public var isRetriable: Bool { code.isRetriable }

    /// An error of kind `code`.
    public init(code: Code, message: String, url: String, curlCode: Int32? = nil, curlMessage: String? = nil) {
        self.code = code
        self.message = message
        self.url = url
        self.curlCode = curlCode
        self.curlMessage = curlMessage
    }

    /// `code: message (url) [curl N: text]`.
    public var description: String {
        var text = "\(code): \(message) (\(url))"
        if let curlCode {
            text += " [curl \(curlCode)"
            if let curlMessage, !curlMessage.isEmpty { text += ": \(curlMessage)" }
            text += "]"
        }
        return text
    }
}
