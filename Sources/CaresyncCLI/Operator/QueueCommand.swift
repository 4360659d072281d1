import ArgumentParser
import FHIRJSON
import FHIRModel
import Foundation
import StateStore

/// `caresync queue [--peer P] [--dead] [--json]` and `caresync queue retry ID… | --all-dead`.
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "List queued pushes or dead letters, and retry dead letters.",
        subcommands: [QueueListCommand.self, QueueRetryCommand.self],
        defaultSubcommand: QueueListCommand.self
    )
}

/// `caresync queue [list] [--peer P] [--dead] [--json] [--limit N]`.
struct QueueListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List queued pushes (oldest due first) or, with --dead, the dead letters.",
        discussion: "Patients are shown by the last three digits of their NHS number. Exit status 0, or 2 for an unknown peer."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Only this peer's queue.")
    var peer: String?

    @Flag(name: .long, help: "List the dead letters (pushes that failed permanently) instead.")
    var dead = false

    @Option(name: .long, help: "Show at most this many items.")
    var limit: Int = 50

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/queue.schema.json).")
    var json = false

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        try await runOperatorCommand("queue") { () throws(OperatorError) in
            let store = try await OperatorContext(global).openStore(.reader)
            defer { store.close() }
            if let peer { try await requireKnownPeer(peer, in: store) }
            let style = TextStyle.standardOutput()
            let now = nowMilliseconds()
            if dead {
                let letters = try await storeCall { () async throws(StateStoreError) in try await store.deadLetters(peer: peer) }
                if json {
                    writeOut(Self.json(deadLetters: letters, peer: peer, limit: limit).text(.pretty) + "\n")
                } else {
                    writeOut(Self.text(deadLetters: letters, peer: peer, limit: limit, now: now, style: style))
                }
            } else {
                let listing = try await storeCall { () async throws(StateStoreError) in try await store.queue(peer: peer, limit: limit) }
                if json {
                    writeOut(Self.json(listing, peer: peer).text(.pretty) + "\n")
                } else {
                    writeOut(Self.text(listing, peer: peer, now: now, style: style))
                }
            }
        }
    }

    static func text(_ listing: QueueListing, peer: String?, now: Int64, style: TextStyle) -> String {
        let scope = peer ?? "all peers"
        guard listing.depth > 0 || !listing.items.isEmpty else { return "\(scope): nothing queued\n" }
        var out = "\(scope): \(Format.count(listing.depth)) queued"
        if listing.items.count < listing.depth { out += " (showing \(Format.count(listing.items.count)))" }
        if let oldest = listing.oldestEnqueuedAt { out += ", oldest waiting \(Format.duration(milliseconds: now - oldest))" }
        out += "\n"
        var table = TextTable(["ID", "PEER", "RECORD", "PATIENT", "OP", "TRIES", "AGE", "NEXT", "LAST ERROR"], rightAligned: [0, 5, 6])
        for item in listing.items {
            let next: String
            if item.leaseExpiresAt != nil {
                next = style.paint("sending", .cyan)
            } else if item.nextAttemptAt <= now {
                next = "due"
            } else {
                next = "in " + Format.duration(milliseconds: item.nextAttemptAt - now)
            }
            table.add([
                String(item.id), item.push.peer, RecordLabel.text(item.push.recordKey, localID: item.push.localID),
                item.push.nhsNumber?.masked ?? "-", item.push.operation.rawValue, String(item.attempts),
                Format.duration(milliseconds: now - item.enqueuedAt), next,
                item.lastError.map { style.paint(Format.shortened($0, 60), .yellow) } ?? "",
            ])
        }
        return out + table.render(style: style)
    }

    static func text(deadLetters: [DeadLetter], peer: String?, limit: Int, now: Int64, style: TextStyle) -> String {
        let scope = peer ?? "all peers"
        guard !deadLetters.isEmpty else { return "\(scope): no dead letters\n" }
        var out = "\(scope): \(Format.plural(deadLetters.count, "dead letter"))"
        if deadLetters.count > limit { out += " (showing \(limit))" }
        out += "; retry with: caresync queue retry ID… (or --all-dead) after fixing the cause\n"
        var table = TextTable(["ID", "PEER", "RECORD", "PATIENT", "OP", "HTTP", "DEAD FOR", "REASON"], rightAligned: [0])
        for letter in deadLetters.prefix(limit) {
            table.add([
                String(letter.id), letter.push.peer, RecordLabel.text(letter.push.recordKey, localID: letter.push.localID),
                letter.push.nhsNumber?.masked ?? "-", letter.push.operation.rawValue,
                letter.httpStatus.map(String.init) ?? "-", Format.duration(milliseconds: now - letter.deadAt),
                style.paint(Format.shortened(letter.reason, 100), .red),
            ])
        }
        return out + table.render(style: style)
    }

    static func json(_ listing: QueueListing, peer: String?) -> JSON {
        [
            "peer": .optional(peer),
            "dead": false,
            "depth": .integer(listing.depth),
            "oldestQueuedAt": .instant(listing.oldestEnqueuedAt),
            "items": .array(
                listing.items.map { item in
                    [
                        "id": .integer(item.id),
                        "requestId": .string(item.requestID),
                        "peer": .string(item.push.peer),
                        "resourceType": .string(item.push.recordKey.resourceType.rawValue),
                        "recordKey": .string(item.push.recordKey.description),
                        "localId": .optional(item.push.localID),
                        "patient": .optional(item.push.nhsNumber?.masked),
                        "operation": .string(item.push.operation.rawValue),
                        "ifMatch": .optional(item.push.ifMatchVersion),
                        "attempts": .integer(item.attempts),
                        "enqueuedAt": .instant(item.enqueuedAt),
                        "nextAttemptAt": .instant(item.nextAttemptAt),
                        "leased": .bool(item.leaseExpiresAt != nil),
                        "lastError": .optional(item.lastError),
                    ]
                }),
        ]
    }

    static func json(deadLetters: [DeadLetter], peer: String?, limit: Int) -> JSON {
        [
            "peer": .optional(peer),
            "dead": true,
            "depth": .integer(deadLetters.count),
            "items": .array(
                deadLetters.prefix(limit).map { letter in
                    [
                        "id": .integer(letter.id),
                        "requestId": .string(letter.requestID),
                        "peer": .string(letter.push.peer),
                        "resourceType": .string(letter.push.recordKey.resourceType.rawValue),
                        "recordKey": .string(letter.push.recordKey.description),
                        "localId": .optional(letter.push.localID),
                        "patient": .optional(letter.push.nhsNumber?.masked),
                        "operation": .string(letter.push.operation.rawValue),
                        "attempts": .integer(letter.attempts),
                        "enqueuedAt": .instant(letter.enqueuedAt),
                        "httpStatus": letter.httpStatus.map { .integer($0) } ?? .null,
                        "reason": .string(letter.reason),
                        "deadAt": .instant(letter.deadAt),
                    ]
                }),
        ]
    }
}

/// `caresync queue retry ID… | --all-dead [--peer P] [--reason TEXT]`: dead letters back in the queue
/// (same request ids), audited with the operating-system user.
struct QueueRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Put dead letters back in the queue (after fixing what made them fail).",
        discussion: """
            Each goes to the back of its record's queue with its request id; its If-Match / If-None-Exist guard \
            keeps a stale retry from overwriting a newer change. Audited with your user name and the reason. \
            Exit status 0, or 2 for an unknown id or peer (then nothing is retried).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Dead letter ids (from caresync queue --dead).")
    var ids: [Int64] = []

    @Flag(name: .long, help: "Retry every dead letter (of --peer, when given).")
    var allDead = false

    @Option(name: .long, help: "With --all-dead: only this peer's dead letters.")
    var peer: String?

    @Option(name: .long, help: "Why they are retried, for the audit log.")
    var reason: String = "retried by an operator"

    func validate() throws {
        if allDead == !ids.isEmpty {
            throw ValidationError("give dead letter ids or --all-dead (one of the two)")
        }
        if peer != nil && !allDead { throw ValidationError("--peer goes with --all-dead") }
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--reason cannot be empty") }
    }

    func run() async throws {
        try await runOperatorCommand("queue retry") { () throws(OperatorError) in
            let store = try await OperatorContext(global).openStore(.operator)
            defer { store.close() }
            if let peer { try await requireKnownPeer(peer, in: store) }
            let selection: DeadLetterSelection = allDead ? .all(peer: peer) : .ids(ids)
            let actor = OperatorUser.current()
            let receipts = try await storeCall { () async throws(StateStoreError) in
                try await store.retryDeadLetters(selection, actor: actor, reason: reason)
            }
            if receipts.isEmpty {
                writeOut("no dead letters to retry\n")
                return
            }
            for receipt in receipts {
                writeOut("queued again as item \(receipt.itemID) (request \(receipt.requestID))\n")
            }
            writeOut("\(Format.plural(receipts.count, "dead letter")) queued again; audited as \(actor)\n")
        }
    }
}

/// A record as one short cell: `CarePlan/abc` at a peer, else `CarePlan plan-1`.
enum RecordLabel {
    static func text(_ key: GlobalKey, localID: String?) -> String {
        if let localID { return "\(key.resourceType.rawValue)/\(localID)" }
        return "\(key.resourceType.rawValue) \(key.identifier.value)"
    }
}

/// Fails with exit 2 unless the state database knows `peer`.
func requireKnownPeer(_ peer: String, in store: SQLiteStateStore) async throws(OperatorError) {
    let known = try await storeCall { () async throws(StateStoreError) in try await store.status() }.map(\.peer.name)
    guard known.contains(peer) else {
        let list = known.isEmpty ? "none yet" : known.joined(separator: ", ")
        throw .invalidInput("no peer named '\(peer)' (known peers: \(list))")
    }
}
