import Synchronization

/// The token provider of every configured peer, kept in step with the configuration: ``apply(_:)`` on a
/// reload rebuilds the providers whose auth or TLS settings changed (so a replaced token file is read
/// again) and keeps the others with their cached tokens.
public final class PeerAccessTokens: Sendable {
    private struct Entry: Sendable {
        var auth: AuthConfiguration
        var tls: TLSSettings
        var provider: any AccessTokenProvider
    }

    private let transport: (any TokenEndpointTransport)?
    private let clock: any WallClock
    private let entries = Mutex<[String: Entry]>([:])

    /// Providers for every peer of `configuration`. `transport` carries OAuth2 token requests; it may be
    /// `nil` only when no peer uses `oauth2-client-credentials`.
    public init(
        configuration: CaresyncConfiguration,
        transport: (any TokenEndpointTransport)?,
        clock: any WallClock = SystemWallClock()
    ) throws(AuthError) {
        self.transport = transport
        self.clock = clock
        try apply(configuration)
    }

    /// The provider for the peer called `name`.
    public func provider(for name: String) -> (any AccessTokenProvider)? {
        entries.withLock { $0[name]?.provider }
    }

    /// Brings the providers in line with `configuration`. On error nothing changes.
    public func apply(_ configuration: CaresyncConfiguration) throws(AuthError) {
        let current = entries.withLock { $0 }
        var next: [String: Entry] = [:]
        for peer in configuration.peers {
            if let existing = current[peer.name], existing.auth == peer.auth, existing.tls == peer.tls {
                next[peer.name] = existing
            } else {
                next[peer.name] = Entry(auth: peer.auth, tls: peer.tls, provider: try makeProvider(for: peer))
            }
        }
        entries.withLock { $0 = next }
    }

    private func makeProvider(for peer: PeerConfiguration) throws(AuthError) -> any AccessTokenProvider {
        switch peer.auth {
        case .none, .mutualTLS:
            return NoAccessToken()
        case .bearer(let token):
            return try StaticBearerToken(token)
        case .oauth2ClientCredentials(let settings):
            guard let transport else {
                throw AuthError(.tokenEndpointUnavailable, "peer \(peer.name) uses OAuth2 but no HTTP transport was given for token requests")
            }
            return try OAuth2ClientCredentialsTokenProvider(settings: settings, tls: peer.tls, transport: transport, clock: clock)
        }
    }
}
