import ArgumentParser
import FHIRJSON
import FHIRModel
import StateStore

/// `caresync status [--json]`: one line per peer and a health summary, read from the state database
/// while the daemon runs. Exit 1 when something needs attention (see ``Attention``), 0 otherwise.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each peer's state, lag, cursor, queue, dead letters and open conflicts.",
        discussion: """
            Reads the state database directly (safe while the daemon runs). Exit status 1 when something \
            needs attention: dead letters, open conflicts, an unreachable or refused peer, a queued push \
            older than --max-queue-age, or no peers at all; 0 when healthy; 2 for bad input.
            """
    )

    /// The default limit on how long a queued push may wait before `status` calls for attention.
    static let defaultMaximumQueueAge = DurationArgument(milliseconds: 15 * 60_000)

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/status.schema.json).")
    var json = false

    @Option(name: .long, help: "Call for attention when a queued push has waited longer than this (e.g. 15m, 2h).")
    var maxQueueAge: DurationArgument = StatusCommand.defaultMaximumQueueAge

    func run() async throws {
        try await runOperatorCommand("status") { () throws(OperatorError) in
            let store = try await OperatorContext(global).openStore(.reader)
            defer { store.close() }
            let statuses = try await storeCall { () async throws(StateStoreError) in try await store.status() }
            let now = nowMilliseconds()
            let peers = statuses.map { PeerHealth($0, now: now) }
            let attention = Attention.find(in: peers, maximumQueueAge: maxQueueAge.milliseconds)
            if json {
                writeOut(Self.json(peers, attention: attention, now: now, maximumQueueAge: maxQueueAge.milliseconds).text(.pretty) + "\n")
            } else {
                writeOut(Self.text(peers, attention: attention, style: .standardOutput()))
            }
            if !attention.isEmpty { throw .quietExit(.failure) }
        }
    }

    static func text(_ peers: [PeerHealth], attention: [Attention], style: TextStyle) -> String {
        var table = TextTable(
            ["PEER", "ROLE", "STATE", "LAG", "CURSOR", "QUEUE", "OLDEST", "DEAD", "CONFLICTS"], rightAligned: [5, 6, 7, 8])
        for peer in peers {
            let stateColour: TextStyle.Colour =
                switch peer.state {
                case .idle: .green
                case .syncing: .cyan
                case .backingOff: .yellow
                case .unreachable, .refused: .red
                }
            let stale = attention.contains { $0.peer == peer.status.peer.name && $0.code == "queue-stale" }
            let oldest = peer.oldestAgeMilliseconds.map { Format.duration(milliseconds: $0) } ?? "-"
            table.add([
                peer.status.peer.name,
                peer.role,
                style.paint(peer.state.label, stateColour),
                peer.lagMilliseconds.map { Format.duration(milliseconds: $0) } ?? "-",
                peer.earliestCursor ?? "-",
                Format.count(peer.status.queueDepth),
                stale ? style.paint(oldest, .red) : oldest,
                peer.status.deadLetters > 0 ? style.paint(Format.count(peer.status.deadLetters), .red) : "0",
                peer.status.openConflicts > 0 ? style.paint(Format.count(peer.status.openConflicts), .yellow) : "0",
            ])
        }
        var out = peers.isEmpty ? "" : table.render(style: style)
        for peer in peers where peer.state != .idle || peer.detail != nil {
            if let detail = peer.detail {
                out += "  \(peer.status.peer.name): \(peer.state.label): \(Format.shortened(detail, 160))\n"
            }
        }
        let queued = peers.map(\.status.queueDepth).reduce(0, +)
        if attention.isEmpty {
            out += style.paint("health: ok", .green)
                + " — \(Format.plural(peers.count, "peer")), \(Format.count(queued)) queued, no dead letters, no open conflicts\n"
        } else {
            out += style.paint("health: attention needed", .red) + " — \(Format.plural(attention.count, "problem")):\n"
            for item in attention {
                out += "  " + (item.peer.map { "\($0): " } ?? "") + item.message + "\n"
            }
        }
        return out
    }

    static func json(_ peers: [PeerHealth], attention: [Attention], now: Int64, maximumQueueAge: Int64) -> JSON {
        let peerObjects: [JSON] = peers.map { peer in
            let status = peer.status
            let cursors: [JSON] = status.cursors.keys.sorted { $0.rawValue < $1.rawValue }.map { type in
                ["resourceType": .string(type.rawValue), "serverTime": .string(status.cursors[type]!.serverTime)]
            }
            return [
                "name": .string(status.peer.name),
                "ods": .string(status.peer.ods),
                "role": .string(peer.role),
                "mode": .string(status.peer.mode.rawValue),
                "baseURL": .string(status.peer.baseURL),
                "state": .string(peer.state.rawValue),
                "stateDetail": .optional(peer.detail),
                "connection": .string(status.connectionState.rawValue),
                "lagSeconds": peer.lagMilliseconds.map { JSON.seconds(milliseconds: $0) } ?? .null,
                "cursors": .array(cursors),
                "queueDepth": .integer(status.queueDepth),
                "oldestQueuedAt": .instant(status.oldestEnqueuedAt),
                "oldestQueuedAgeSeconds": peer.oldestAgeMilliseconds.map { JSON.seconds(milliseconds: $0) } ?? .null,
                "deadLetters": .integer(status.deadLetters),
                "openConflicts": .integer(status.openConflicts),
                "lastSuccessAt": .instant(status.lastSuccessAt),
                "lastError": .optional(status.lastError),
                "lastErrorAt": .instant(status.lastErrorAt),
            ]
        }
        return [
            "generatedAt": .string(Format.instant(now)),
            "healthy": .bool(attention.isEmpty),
            "maxQueueAgeSeconds": .seconds(milliseconds: maximumQueueAge),
            "peers": .array(peerObjects),
            "attention": .array(attention.map(\.json)),
        ]
    }
}
