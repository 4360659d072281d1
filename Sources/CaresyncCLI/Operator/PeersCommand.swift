import ArgumentParser
import CaresyncDaemon
import CaresyncHTTP
import FHIRJSON
import FHIRModel
import Foundation
import StateStore

/// `caresync peers [--json]` and `caresync peers probe NAME`.
struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract: "List the configured peers with what the daemon last knew of them, or probe one.",
        subcommands: [PeersListCommand.self, PeersProbeCommand.self],
        defaultSubcommand: PeersListCommand.self
    )
}

/// `caresync peers [list] [--json]`: the configuration's peers joined with the state database's.
struct PeersListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the peers: configuration (role, ODS, mode, URL, auth, TLS) and state (last contact).",
        discussion: """
            Needs the configuration (secrets are read but never printed; outside systemd set \
            CREDENTIALS_DIRECTORY as for check-config). When it cannot be loaded, the peers the state \
            database knows are listed with a warning. A peer the state knows but the configuration no longer \
            names is marked 'not configured'.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/peers.schema.json).")
    var json = false

    struct Row {
        var name: String
        var role: String
        var ods: String
        var mode: String
        var baseURL: String
        var auth: String?
        var tls: String?
        var scope: String?
        var configured: Bool
        var status: PeerStatus?
    }

    func run() async throws {
        try await runOperatorCommand("peers") { () throws(OperatorError) in
            let context = OperatorContext(global)
            var configuration: CaresyncConfiguration?
            do throws(OperatorError) {
                configuration = try await context.configuration()
            } catch {
                FileHandle.standardError.write(Data("caresync peers: warning: \(error.message); showing the state database only\n".utf8))
            }
            let store = try await context.openStore(.reader)
            defer { store.close() }
            let statuses = try await storeCall { () async throws(StateStoreError) in try await store.status() }
            let rows = Self.rows(configuration: configuration, statuses: statuses)
            if json {
                writeOut(Self.json(rows).text(.pretty) + "\n")
            } else {
                writeOut(Self.text(rows, now: nowMilliseconds(), style: .standardOutput()))
            }
        }
    }

    static func rows(configuration: CaresyncConfiguration?, statuses: [PeerStatus]) -> [Row] {
        var rows: [Row] = []
        let byName = Dictionary(statuses.map { ($0.peer.name, $0) }) { first, _ in first }
        if let configuration {
            func add(_ peer: PeerConfiguration, role: String, mode: String, scope: String?) {
                rows.append(
                    Row(
                        name: peer.name, role: role, ods: peer.ods, mode: mode, baseURL: peer.baseURL.text,
                        auth: peer.auth.typeName, tls: tlsSummary(peer), scope: scope, configured: true, status: byName[peer.name]))
            }
            add(configuration.hub, role: "hub", mode: PeerMode.hub.rawValue, scope: nil)
            for provider in configuration.providers {
                add(provider.peer, role: "provider", mode: provider.mode.rawValue, scope: provider.scope.rawValue)
            }
        }
        for status in statuses where !rows.contains(where: { $0.name == status.peer.name }) {
            rows.append(
                Row(
                    name: status.peer.name, role: status.peer.mode == .hub ? "hub" : "provider", ods: status.peer.ods,
                    mode: status.peer.mode.rawValue, baseURL: status.peer.baseURL, auth: nil, tls: nil, scope: nil,
                    configured: configuration == nil, status: status))
        }
        return rows
    }

    static func tlsSummary(_ peer: PeerConfiguration) -> String {
        guard peer.baseURL.scheme == "https" else { return "plain http (loopback)" }
        var parts = ["TLS >= \(peer.tls.minimumVersion.configurationValue)"]
        if peer.tls.caFile != nil { parts.append("own CA") }
        if peer.tls.clientCertificate != nil { parts.append("client certificate") }
        if peer.tls.pinnedPublicKey != nil { parts.append("pinned key") }
        return parts.joined(separator: ", ")
    }

    static func text(_ rows: [Row], now: Int64, style: TextStyle) -> String {
        guard !rows.isEmpty else { return "no peers\n" }
        var table = TextTable(["NAME", "ROLE", "ODS", "MODE", "BASE URL", "AUTH", "STATE", "LAST SUCCESS", "LAST ERROR"])
        for row in rows {
            var state = "not registered yet"
            if let status = row.status {
                let health = PeerHealth(status, now: now)
                state = health.state.label
            }
            if !row.configured { state += style.paint(" (not configured)", .yellow) }
            table.add([
                row.name, row.role, row.ods, row.mode, row.baseURL, row.auth ?? "-", state,
                row.status?.lastSuccessAt.map { Format.duration(milliseconds: now - $0) + " ago" } ?? "never",
                row.status?.lastError.map { style.paint(Format.shortened($0, 60), .yellow) } ?? "",
            ])
        }
        return table.render(style: style)
    }

    static func json(_ rows: [Row]) -> JSON {
        [
            "peers": .array(
                rows.map { row in
                    [
                        "name": .string(row.name),
                        "role": .string(row.role),
                        "ods": .string(row.ods),
                        "mode": .string(row.mode),
                        "baseURL": .string(row.baseURL),
                        "auth": .optional(row.auth),
                        "tls": .optional(row.tls),
                        "scope": .optional(row.scope),
                        "configured": .bool(row.configured),
                        "registered": .bool(row.status != nil),
                        "state": .optional(row.status.map { PeerHealth($0, now: 0).state.rawValue }),
                        "lastSuccessAt": .instant(row.status?.lastSuccessAt),
                        "lastError": .optional(row.status?.lastError),
                        "lastErrorAt": .instant(row.status?.lastErrorAt),
                    ]
                })
        ]
    }
}

/// `caresync peers probe NAME [--json]`: reach one configured peer now. Exit 1 when a check fails.
struct PeersProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Reach a configured peer: TLS version, HTTP version, FHIR version from /metadata, latency, auth.",
        discussion: """
            Uses the peer's configured TLS settings and credentials (outside systemd, set CREDENTIALS_DIRECTORY \
            as for check-config). Checks, in order: token, connect, metadata, fhir-version, authorised-read \
            (GET [type]?_count=1 with the credentials). Exit status 0 when every check passes, 1 when one \
            fails, 2 for an unknown peer or an unusable configuration.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The peer's name (caresync peers lists them).")
    var name: String

    @Option(name: .long, help: "Give up on a request after this long (e.g. 10s).")
    var timeout: DurationArgument = DurationArgument(milliseconds: 15_000)

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/probe.schema.json).")
    var json = false

    func run() async throws {
        try await runOperatorCommand("peers probe") { () throws(OperatorError) in
            let configuration = try await OperatorContext(global).configuration()
            guard let peer = configuration.peer(named: name) else {
                throw .invalidInput("no peer named '\(name)' in the configuration (peers: \(configuration.peers.map(\.name).joined(separator: ", ")))")
            }
            let client = HTTPClient(configuration: HTTPClient.Configuration(userAgent: "caresync-probe"))
            defer { client.shutdown() }
            let limit = Duration.milliseconds(timeout.milliseconds)
            let probe = await PeerProbe.run(
                peer, readType: configuration.sync.resourceTypes.first ?? .carePlan, client: client,
                timeouts: HTTPTimeouts(connect: limit, total: limit))
            if json {
                writeOut(probe.json.text(.pretty) + "\n")
            } else {
                writeOut(probe.text(style: .standardOutput()))
            }
            if !probe.ok { throw .quietExit(.failure) }
        }
    }
}
