public import Foundation

/// Gives the `Authorization` header value for requests to one peer.
public protocol AccessTokenProvider: Sendable {
    /// The token for the next request, fetched or refreshed as needed; `nil` when the peer takes no
    /// `Authorization` header (auth `none`, or `mtls` where the client certificate is the credential).
    func accessToken() async throws(AuthError) -> AccessToken?

    /// Forgets a cached token (call it when the peer answers 401) so the next call obtains a new one.
    func invalidate() async
}

/// A bearer access token. Its `description` never shows the token.
public struct AccessToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The token itself.
    public let value: String
    /// When the token stops being valid, if known.
    public let expiresAt: Date?

    /// A token and, when known, its expiry.
    public init(value: String, expiresAt: Date?) {
        self.value = value
        self.expiresAt = expiresAt
    }

    /// `Bearer <token>`, the value of the `Authorization` header.
    public var authorizationHeaderValue: String { "Bearer \(value)" }

    public var description: String {
        "<access token\(expiresAt.map { ", expires \(ISO8601DateFormatter().string(from: $0))" } ?? "")>"
    }

    public var debugDescription: String { description }

    /// Whether `text` is a bearer token as RFC 6750 writes one (`b64token`): nothing a header could be
    /// split or smuggled with.
    public static func isBearerToken(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 16 * 1024 else { return false }
        var seenPadding = false
        for byte in text.utf8 {
            let isTokenCharacter =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "~") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
            if byte == UInt8(ascii: "=") {
                seenPadding = true
            } else if !isTokenCharacter || seenPadding {
                return false
            }
        }
        return true
    }
}

/// Why a token could not be obtained.
public struct AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code.
    public let code: Code
    /// What happened, without the secret.
    public let message: String
    /// The token endpoint's HTTP status, when it answered.
    public let httpStatus: Int?

    /// An error with its code, message and the endpoint's HTTP status.
    public init(_ code: Code, _ message: String, httpStatus: Int? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
    }

    /// Whether trying again later may succeed (the endpoint was unreachable or overloaded).
    public var isRetriable: Bool { code == .tokenEndpointUnavailable }

    public var description: String { "\(code): \(message)" }

    /// A stable error code.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The private key is unusable (not PEM, encrypted, not RSA, too short).
        public static let invalidKey = Code(rawValue: "invalid-key")
        /// OpenSSL failed to sign.
        public static let signingFailed = Code(rawValue: "signing-failed")
        /// The token endpoint could not be reached, or answered 429 / 5xx.
        public static let tokenEndpointUnavailable = Code(rawValue: "token-endpoint-unavailable")
        /// The token endpoint cannot be reached in a way waiting will not fix (TLS verification, pinning).
        public static let tokenEndpointFailed = Code(rawValue: "token-endpoint-failed")
        /// The token endpoint refused the request (4xx).
        public static let tokenRejected = Code(rawValue: "token-rejected")
        /// The token endpoint's answer is not a usable token response.
        public static let invalidTokenResponse = Code(rawValue: "invalid-token-response")
        /// A configured bearer token is not a token.
        public static let invalidToken = Code(rawValue: "invalid-token")
    }
}

/// Auth `none` and `mtls`: requests carry no `Authorization` header.
public struct NoAccessToken: AccessTokenProvider {
    /// A new instance.
    public init() {}
    public func accessToken() async throws(AuthError) -> AccessToken? { nil }
    public func invalidate() async {}
}

/// Auth `bearer`: a fixed token read from its file when the configuration was loaded (and read again
/// on every reload, which builds a new provider).
public struct StaticBearerToken: AccessTokenProvider {
    private let token: AccessToken

    /// A provider for `secret`, which must hold a bearer token (surrounding white space is ignored).
    public init(_ secret: SecretValue) throws(AuthError) {
        let text = secret.trimmedText
        guard AccessToken.isBearerToken(text) else {
            throw AuthError(.invalidToken, "\(secret.origin) does not hold a bearer token (RFC 6750 token characters only)")
        }
        token = AccessToken(value: text, expiresAt: nil)
    }

    public func accessToken() async throws(AuthError) -> AccessToken? { token }

    /// A fixed token cannot be refreshed; the operator replaces the file and reloads.
    public func invalidate() async {}
}

/// The wall clock, behind a protocol so token expiry can be tested without waiting.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Date
}

/// The system's wall clock.
public struct SystemWallClock: WallClock {
    /// A new instance.
    public init() {}
    public func now() -> Date { Date() }
}
