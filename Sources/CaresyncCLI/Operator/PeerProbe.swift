import CaresyncDaemon
import CaresyncHTTP
import FHIRJSON
import FHIRModel
import Foundation

/// Reaches one configured peer the way the daemon does (its TLS settings, its credentials) and reports
/// what it found: TLS and HTTP versions, the FHIR version from `GET [base]/metadata`, the latency, and
/// whether authentication works, each check with a reason when it fails. Uses ``HTTPClient`` directly.
struct PeerProbe {
    enum Outcome: String {
        case ok
        case failed
        case skipped
    }

    struct Check {
        /// `token`, `connect`, `metadata`, `fhir-version`, `authorised-read`.
        let name: String
        let outcome: Outcome
        let detail: String
    }

    let peer: PeerConfiguration
    private(set) var checks: [Check] = []
    private(set) var tlsVersion: String?
    private(set) var httpVersion: String?
    private(set) var fhirVersion: String?
    private(set) var software: String?
    private(set) var latencyMilliseconds: Int64?
    /// Whether the credentials were accepted: `nil` when not established (the peer could not be reached).
    private(set) var authWorking: Bool?

    var ok: Bool { !checks.contains { $0.outcome == .failed } }

    /// The FHIR version caresync speaks.
    static let requiredFHIRVersion = "4.0.1"

    /// Runs the checks in order; a check that cannot run because an earlier one failed is skipped.
    static func run(
        _ peer: PeerConfiguration, readType: ResourceType, client: HTTPClient, timeouts: HTTPTimeouts
    ) async -> PeerProbe {
        var probe = PeerProbe(peer: peer)
        let tls = peer.tls.httpConfiguration

        // 1. Credentials, obtained as the daemon obtains them.
        var token: AccessToken?
        var tokenFailed = false
        do {
            let provider = try makeProvider(peer, client: client, timeouts: timeouts)
            token = try await provider.accessToken()
            switch peer.auth {
            case .none:
                probe.add("token", .skipped, "auth none: requests carry no credentials")
            case .mutualTLS:
                probe.add("token", .skipped, "auth mtls: the client certificate is the credential")
            case .bearer(let secret):
                probe.add("token", .ok, "bearer token read from \(secret.origin)")
            case .oauth2ClientCredentials(let settings):
                let expiry = token?.expiresAt.map { ", expires \(Format.time(Int64($0.timeIntervalSince1970 * 1000)))" } ?? ""
                probe.add("token", .ok, "access token obtained from \(settings.tokenURL) as \(settings.clientID)\(expiry)")
            }
        } catch {
            tokenFailed = true
            probe.authWorking = false
            probe.add("token", .failed, "no token: \(error.message) (\(error.code))")
        }
        var headers: HTTPHeaders = ["Accept": "application/fhir+json", "X-Request-ID": UUID().uuidString.lowercased()]
        if let token { headers.add(name: "Authorization", value: token.authorizationHeaderValue) }

        // 2. Connection and metadata.
        let metadataURL = peer.baseURL.text + "/metadata"
        let response: HTTPResponse
        do {
            response = try await client.send(HTTPRequest(method: .get, url: metadataURL, headers: headers, tls: tls, timeouts: timeouts))
        } catch {
            probe.add("connect", .failed, describe(error) + (error.isRetriable ? "; may pass: retry later" : ""))
            probe.add("metadata", .skipped, "not reached")
            probe.add("fhir-version", .skipped, "not reached")
            probe.add("authorised-read", .skipped, "not reached")
            return probe
        }
        probe.tlsVersion = response.tlsVersion?.rawValue
        probe.httpVersion = response.httpVersion.description
        probe.latencyMilliseconds = milliseconds(response.timings.total)
        var connection = [response.tlsVersion?.rawValue ?? "plain HTTP (loopback)", response.httpVersion.description]
        if response.connectionReused {
            connection.append("connection reused")
        } else {
            connection.append("connect \(milliseconds(response.timings.connect)) ms")
            if response.tlsVersion != nil { connection.append("TLS handshake done at \(milliseconds(response.timings.tlsHandshake)) ms") }
        }
        probe.add("connect", .ok, connection.joined(separator: ", "))

        if response.status != 200 {
            if response.status == 401 || response.status == 403 { probe.authWorking = false }
            probe.add("metadata", .failed, "GET metadata answered HTTP \(response.status)" + operationOutcomeText(response.body).map { ": \($0)" }.orEmpty)
            probe.add("fhir-version", .skipped, "no CapabilityStatement")
        } else if let statement = try? JSON.parse(response.body), statement["resourceType"]?.stringValue == "CapabilityStatement" {
            let version = statement["fhirVersion"]?.stringValue
            probe.fhirVersion = version
            let name = statement["software"]?["name"]?.stringValue
            let release = statement["software"]?["version"]?.stringValue
            probe.software = [name, release].compactMap { $0 }.joined(separator: " ").nilIfEmpty
            probe.add("metadata", .ok, "CapabilityStatement" + (probe.software.map { " from \($0)" } ?? "") + " in \(probe.latencyMilliseconds ?? 0) ms")
            if version == requiredFHIRVersion {
                probe.add("fhir-version", .ok, "\(requiredFHIRVersion) (R4)")
            } else {
                probe.add(
                    "fhir-version", .failed,
                    "the peer speaks FHIR \(version ?? "(no fhirVersion)"); caresync needs \(requiredFHIRVersion) (R4) and refuses this peer")
            }
        } else {
            probe.add("metadata", .failed, "GET metadata did not return a CapabilityStatement (\(response.headers["Content-Type"] ?? "no content type"))")
            probe.add("fhir-version", .skipped, "no CapabilityStatement")
        }

        // 3. A read that needs the credentials.
        guard !tokenFailed else {
            probe.add("authorised-read", .skipped, "no token to send")
            return probe
        }
        let readURL = peer.baseURL.text + "/\(readType.rawValue)?_count=1"
        do {
            headers.replaceOrAdd(name: "X-Request-ID", value: UUID().uuidString.lowercased())
            let read = try await client.send(HTTPRequest(method: .get, url: readURL, headers: headers, tls: tls, timeouts: timeouts))
            let outcome = operationOutcomeText(read.body).map { ": \($0)" }.orEmpty
            switch read.status {
            case 200:
                probe.authWorking = true
                let how = if case .none = peer.auth { "without credentials" } else { "with the credentials" }
                probe.add("authorised-read", .ok, "GET \(readType.rawValue)?_count=1 answered 200 \(how)")
            case 401, 403:
                probe.authWorking = false
                let why: String =
                    switch peer.auth {
                    case .none: "the peer wants credentials but auth is none"
                    case .mutualTLS: "the peer did not accept the client certificate"
                    case .bearer, .oauth2ClientCredentials: "the peer refused the token"
                    }
                probe.add("authorised-read", .failed, "\(why): HTTP \(read.status)\(outcome)")
            default:
                probe.add("authorised-read", .failed, "GET \(readType.rawValue)?_count=1 answered HTTP \(read.status)\(outcome)")
            }
        } catch {
            probe.add("authorised-read", .failed, describe(error))
        }
        return probe
    }

    private mutating func add(_ name: String, _ outcome: Outcome, _ detail: String) {
        checks.append(Check(name: name, outcome: outcome, detail: detail))
    }

    private static func makeProvider(_ peer: PeerConfiguration, client: HTTPClient, timeouts: HTTPTimeouts) throws(AuthError)
        -> any AccessTokenProvider
    {
        switch peer.auth {
        case .none, .mutualTLS:
            return NoAccessToken()
        case .bearer(let secret):
            return try StaticBearerToken(secret)
        case .oauth2ClientCredentials(let settings):
            return try OAuth2ClientCredentialsTokenProvider(
                settings: settings, tls: peer.tls, transport: HTTPTokenEndpointTransport(client: client, timeouts: timeouts))
        }
    }

    /// The text of an OperationOutcome body (its issues' `details.text` or `diagnostics`), if it is one.
    static func operationOutcomeText(_ body: [UInt8]) -> String? {
        guard let outcome = try? JSON.parse(body), outcome["resourceType"]?.stringValue == "OperationOutcome" else { return nil }
        let texts = (outcome["issue"]?.arrayValue ?? []).compactMap { issue in
            issue["details"]?["text"]?.stringValue ?? issue["diagnostics"]?.stringValue
        }
        return texts.isEmpty ? nil : Format.shortened(texts.joined(separator: "; "), 200)
    }

    /// `could not connect (cannot-connect): Failed to connect to 127.0.0.1 port 9 …`: ours, then libcurl's.
    private static func describe(_ error: HTTPError) -> String {
        var text = "\(error.message) (\(error.code))"
        if let detail = error.curlMessage, !detail.isEmpty { text += ": \(detail)" }
        return text
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    // MARK: Output

    func text(style: TextStyle) -> String {
        var out = "probe \(peer.name) (\(peer.baseURL.text))\n"
        let width = checks.map(\.name.count).max() ?? 0
        for check in checks {
            let label: String =
                switch check.outcome {
                case .ok: style.paint("ok     ", .green)
                case .failed: style.paint("FAILED ", .red)
                case .skipped: style.paint("skipped", .dim)
                }
            out += "  " + check.name + String(repeating: " ", count: width - check.name.count) + "  " + label + "  " + check.detail + "\n"
        }
        var summary: [String] = []
        if let tlsVersion { summary.append("TLS \(tlsVersion)") }
        if let httpVersion { summary.append(httpVersion) }
        if let fhirVersion { summary.append("FHIR \(fhirVersion)") }
        if let latencyMilliseconds { summary.append("latency \(latencyMilliseconds) ms") }
        switch authWorking {
        case true?: summary.append("auth working")
        case false?: summary.append("auth NOT working")
        case nil: summary.append("auth not established")
        }
        out += (ok ? style.paint("result: ok", .green) : style.paint("result: problems", .red)) + " — " + summary.joined(separator: ", ") + "\n"
        return out
    }

    var json: JSON {
        [
            "peer": .string(peer.name),
            "baseURL": .string(peer.baseURL.text),
            "ok": .bool(ok),
            "tlsVersion": .optional(tlsVersion),
            "httpVersion": .optional(httpVersion),
            "fhirVersion": .optional(fhirVersion),
            "software": .optional(software),
            "latencyMilliseconds": latencyMilliseconds.map { .integer($0) } ?? .null,
            "auth": ["type": .string(peer.auth.typeName), "working": authWorking.map(JSON.bool) ?? .null],
            "checks": .array(
                checks.map { ["name": .string($0.name), "outcome": .string($0.outcome.rawValue), "detail": .string($0.detail)] }),
        ]
    }
}

extension Optional where Wrapped == String {
    fileprivate var orEmpty: String { self ?? "" }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
