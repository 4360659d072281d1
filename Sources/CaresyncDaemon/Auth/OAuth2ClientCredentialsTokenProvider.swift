public import Foundation
import FHIRJSON

/// The one HTTP exchange an OAuth2 token request needs: a form POST to the token endpoint. The
/// `CaresyncHTTP` client provides it in the daemon; the token logic stays independent of the transport.
public protocol TokenEndpointTransport: Sendable {
    /// POSTs `body` (`application/x-www-form-urlencoded`) to `url` under `tls` and returns the status and
    /// body. Throws when no HTTP answer arrived (connection, TLS, timeout).
    func postForm(to url: PeerURL, body: [UInt8], tls: TLSSettings) async throws -> TokenEndpointResponse
}

/// What the token endpoint answered.
public struct TokenEndpointResponse: Sendable {
    /// The HTTP status.
    public var status: Int
    /// The body (JSON for a well-behaved endpoint).
    public var body: [UInt8]

    /// An answer with `status` and `body`.
    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// Auth `oauth2-client-credentials`: obtains tokens with a signed JWT client assertion
/// (`grant_type=client_credentials`, `client_assertion_type=…jwt-bearer`) and caches each until shortly
/// before it expires. Concurrent callers share one request.
public actor OAuth2ClientCredentialsTokenProvider: AccessTokenProvider {
    /// The longest a token is refreshed ahead of its expiry.
    public static let maximumRefreshMargin: Duration = .seconds(60)
    /// How long a token without `expires_in` is kept.
    public static let lifetimeWhenUnstated: TimeInterval = 60

    private let settings: OAuth2ClientCredentialsSettings
    private let tls: TLSSettings
    private let signer: RS512Signer
    private let transport: any TokenEndpointTransport
    private let clock: any WallClock
    private var cached: (token: AccessToken, refreshAt: Date)?
    private var inFlight: Task<AccessToken, any Error>?

    /// A provider for `settings`; loads the private key now, so a bad key fails at start, not at the first sync.
    public init(
        settings: OAuth2ClientCredentialsSettings,
        tls: TLSSettings,
        transport: any TokenEndpointTransport,
        clock: any WallClock = SystemWallClock()
    ) throws(AuthError) {
        self.settings = settings
        self.tls = tls
        self.signer = try RS512Signer(pem: settings.privateKey.bytes)
        self.transport = transport
        self.clock = clock
    }

    public func accessToken() async throws(AuthError) -> AccessToken? {
        if let cached, clock.now() < cached.refreshAt { return cached.token }
        let task: Task<AccessToken, any Error>
        if let inFlight {
            task = inFlight
        } else {
            task = Task { try await self.requestToken() }
            inFlight = task
        }
        do {
            let token = try await task.value
            finish(task, with: token)
            return token
        } catch let error as AuthError {
            finish(task, with: nil)
            throw error
        } catch {
            finish(task, with: nil)
            throw AuthError(.tokenEndpointUnavailable, "the token request failed: \(error)")
        }
    }

    public func invalidate() async {
        cached = nil
    }

    private func finish(_ task: Task<AccessToken, any Error>, with token: AccessToken?) {
        guard inFlight == task else { return }
        inFlight = nil
        guard let token else { return }
        let now = clock.now()
        let lifetime = token.expiresAt.map { $0.timeIntervalSince(now) } ?? Self.lifetimeWhenUnstated
        let margin = min(Double(Self.maximumRefreshMargin.components.seconds), max(lifetime, 0) / 5)
        cached = (token, now.addingTimeInterval(lifetime - margin))
    }

    /// The form body of a token request, with a fresh assertion.
    func tokenRequestBody() throws(AuthError) -> [UInt8] {
        let assertion = try ClientAssertion(clientID: settings.clientID, audience: settings.tokenURL.text, keyID: settings.keyID)
            .signed(with: signer, now: clock.now())
        var fields: [(String, String)] = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ]
        if let scope = settings.scope { fields.append(("scope", scope)) }
        return Array(FormEncoding.encode(fields).utf8)
    }

    private func requestToken() async throws -> AccessToken {
        let body = try tokenRequestBody()
        let response: TokenEndpointResponse
        do {
            response = try await transport.postForm(to: settings.tokenURL, body: body, tls: tls)
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.tokenEndpointUnavailable, "the token endpoint \(settings.tokenURL) could not be reached: \(error)")
        }
        return try Self.token(from: response, endpoint: settings.tokenURL, now: clock.now())
    }

    /// Reads a token response (RFC 6749 §5.1 / §5.2).
    static func token(from response: TokenEndpointResponse, endpoint: PeerURL, now: Date) throws(AuthError) -> AccessToken {
        let json = try? JSON.parse(response.body)
        switch response.status {
        case 200:
            break
        case 429, 500...599:
            throw AuthError(.tokenEndpointUnavailable, "the token endpoint \(endpoint) answered \(response.status)", httpStatus: response.status)
        default:
            var message = "the token endpoint \(endpoint) refused the request (\(response.status))"
            if let error = json?["error"]?.stringValue {
                message += ": \(error.prefix(100))"
                if let detail = json?["error_description"]?.stringValue { message += " (\(detail.prefix(200)))" }
            }
            throw AuthError(.tokenRejected, message, httpStatus: response.status)
        }
        guard let json, json.objectValue != nil else {
            throw AuthError(.invalidTokenResponse, "the token endpoint's answer is not a JSON object", httpStatus: 200)
        }
        guard let value = json["access_token"]?.stringValue, AccessToken.isBearerToken(value) else {
            throw AuthError(.invalidTokenResponse, "the token endpoint's answer has no usable access_token", httpStatus: 200)
        }
        if let type = json["token_type"]?.stringValue, type.lowercased() != "bearer" {
            throw AuthError(.invalidTokenResponse, "the token endpoint issued a \(type.prefix(40)) token; only Bearer is supported", httpStatus: 200)
        }
        var expiresAt: Date?
        if let expiresIn = json["expires_in"] {
            guard let seconds = expiresIn.numberValue?.doubleValue ?? expiresIn.stringValue.flatMap(Double.init), seconds > 0, seconds.isFinite
            else {
                throw AuthError(.invalidTokenResponse, "expires_in is not a positive number of seconds", httpStatus: 200)
            }
            expiresAt = now.addingTimeInterval(seconds)
        }
        return AccessToken(value: value, expiresAt: expiresAt ?? now.addingTimeInterval(lifetimeWhenUnstated))
    }
}

/// `application/x-www-form-urlencoded`: everything but RFC 3986 unreserved characters percent-encoded.
enum FormEncoding {
    static func encode(_ fields: [(String, String)]) -> String {
        fields.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let unreserved =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            if unreserved {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
