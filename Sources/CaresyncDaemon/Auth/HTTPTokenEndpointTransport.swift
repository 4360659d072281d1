public import CaresyncHTTP

/// Token requests through the daemon's libcurl ``HTTPClient``: a form POST under the peer's TLS settings
/// (verification always on, the peer's CA, client certificate and pin), a small response cap, no redirects.
public struct HTTPTokenEndpointTransport: TokenEndpointTransport {
    private let client: HTTPClient
    private let timeouts: HTTPTimeouts

    /// Token requests sent by `client`.
    public init(client: HTTPClient, timeouts: HTTPTimeouts = HTTPTimeouts()) {
        self.client = client
        self.timeouts = timeouts
    }

    /// The largest token response read (a token response is well under a kilobyte).
    static let maximumResponseBytes = 64 * 1024

    public func postForm(to url: PeerURL, body: [UInt8], tls: TLSSettings) async throws -> TokenEndpointResponse {
        let request = HTTPRequest(
            method: .post, url: url.text,
            headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
            body: body, tls: tls.httpConfiguration, timeouts: timeouts, maximumResponseBytes: Self.maximumResponseBytes)
        do {
            let response = try await client.send(request)
            return TokenEndpointResponse(status: response.status, body: response.body)
        } catch {
            // A retriable failure (connection, timeout) may pass; a TLS or URL failure will not.
            throw AuthError(
                error.isRetriable ? .tokenEndpointUnavailable : .tokenEndpointFailed,
                "the token endpoint \(url) could not be reached: \(error.message) (\(error.code))")
        }
    }
}
