/// Why a FHIR interaction failed: no response, an error status, or a response caresync cannot trust.
///
/// `code` is stable (tests and the engine match on it); `message` names what was wrong and never holds
/// patient data (bodies are not quoted, only OperationOutcome diagnostics, which servers write for people).
public struct FHIRClientError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// No HTTP response (connection refused, reset, timeout, TLS): see ``FHIRClientError/isRetriable``.
        public static let transport = Code("transport")
        /// The server answered with an error status (4xx, 5xx); ``FHIRClientError/status`` holds it.
        public static let httpStatus = Code("http-status")
        /// The answer is not what FHIR promises: not JSON, wrong content type, malformed ETag or Location,
        /// a Bundle of the wrong shape.
        public static let malformedResponse = Code("malformed-response")
        /// A `Bundle.link[next]` points at another scheme, host or port, or outside the peer's FHIR base.
        public static let foreignLink = Code("foreign-next-link")
        /// The peer's CapabilityStatement is not FHIR 4.0.1.
        public static let unsupportedVersion = Code("unsupported-fhir-version")
        /// No `Authorization` header could be obtained for the peer.
        public static let authorization = Code("authorization-failed")
        /// The request could not be formed (a bad id or URL).
        public static let invalidRequest = Code("invalid-request")

        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String
    /// The HTTP status, when the server answered.
    public var status: Int?
    /// The server's `Retry-After`, in milliseconds, when it sent one.
    public var retryAfterMilliseconds: Int64?
    /// The diagnostics of the OperationOutcome the server sent, when it sent one.
    public var outcome: String?
    /// The request URL without its query (queries may carry identifiers).
    public var url: String
    /// Whether sending the same request again later may succeed.
    public var isRetriable: Bool

    public init(
        _ code: Code,
        _ message: String,
        url: String,
        status: Int? = nil,
        retryAfterMilliseconds: Int64? = nil,
        outcome: String? = nil,
        isRetriable: Bool = false
    ) {
        self.code = code
        self.message = message
        self.url = url
        self.status = status
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.outcome = outcome
        self.isRetriable = isRetriable
    }

    /// Whether an error status is one retrying may fix: 408, 429 and 5xx.
    public static func isRetriable(status: Int) -> Bool {
        status == 408 || status == 429 || (500...599).contains(status)
    }

    public var description: String {
        var text = "\(code): \(message) (\(url))"
        if let outcome, !outcome.isEmpty { text += ": \(outcome)" }
        return text
    }
}
