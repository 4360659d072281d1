import ArgumentParser
import FHIRJSON
import FHIRModel
import StateStore

/// `caresync audit [--patient NHSNO] [--since T] [--json]` and `caresync audit verify`.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log, or verify its hash chain.",
        subcommands: [AuditListCommand.self, AuditVerifyCommand.self],
        defaultSubcommand: AuditListCommand.self
    )
}

/// `caresync audit [list]`: the newest entries, oldest first.
struct AuditListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the newest audit entries (who did what, when and why), oldest first.",
        discussion: """
            --since takes an instant (2025-06-15T09:30:00Z), a date (2025-06-15, midnight UTC) or a duration \
            back from now (90m, 12h, 7d). Patients are shown by the last three digits of their NHS number. \
            Exit status 0, or 2 for a malformed NHS number or time.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Only entries about this patient (NHS number, 10 digits).")
    var patient: String?

    @Option(name: .long, help: "Only entries from this time on: an instant, a date, or a duration ago (7d).")
    var since: String?

    @Option(name: .long, help: "Show at most this many (the newest).")
    var limit: Int = 100

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/audit.schema.json).")
    var json = false

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        try await runOperatorCommand("audit") { () throws(OperatorError) in
            let nhsNumber = try patient.map { (text) throws(OperatorError) in try NHSNumber.operatorInput(text) }
            let now = nowMilliseconds()
            let from = try since.map { (text) throws(OperatorError) in try SinceArgument.milliseconds(text, now: now) }
            let store = try await OperatorContext(global).openStore(.reader)
            defer { store.close() }
            let entries = try await storeCall { () async throws(StateStoreError) in
                try await store.latestAudit(nhsNumber: nhsNumber, since: from, limit: limit)
            }
            if json {
                writeOut(Self.json(entries).text(.pretty) + "\n")
            } else {
                writeOut(Self.text(entries, limit: limit, style: .standardOutput()))
            }
        }
    }

    static func text(_ entries: [AuditEntry], limit: Int, style: TextStyle) -> String {
        guard !entries.isEmpty else { return "no audit entries match\n" }
        var table = TextTable(["SEQ", "TIME", "ACTOR", "ACTION", "PEER", "RECORD", "PATIENT", "DETAIL"], rightAligned: [0])
        for entry in entries {
            let event = entry.event
            let actorCell = event.actor == "caresync" ? event.actor : style.paint(event.actor, .cyan)
            table.add([
                String(entry.sequence), Format.time(entry.at), actorCell, event.action, event.peer ?? "-",
                event.recordKey.map { RecordLabel.text($0, localID: nil) } ?? "-", event.nhsNumber?.masked ?? "-",
                Format.shortened(event.detail, 120),
            ])
        }
        var out = table.render(style: style)
        if entries.count == limit {
            out += "(the newest \(limit) shown; --limit or --since for others)\n"
        }
        return out
    }

    static func json(_ entries: [AuditEntry]) -> JSON {
        [
            "entries": .array(
                entries.map { entry in
                    [
                        "sequence": .integer(entry.sequence),
                        "at": .instant(entry.at),
                        "actor": .string(entry.event.actor),
                        "action": .string(entry.event.action),
                        "peer": .optional(entry.event.peer),
                        "recordKey": .optional(entry.event.recordKey?.description),
                        "patient": .optional(entry.event.nhsNumber?.masked),
                        "requestId": .optional(entry.event.requestID),
                        "detail": .string(entry.event.detail),
                        "hash": .string(entry.hash),
                    ]
                })
        ]
    }
}

/// `caresync audit verify [--json]`: walks the hash chain. Exit 1 with the first broken entry.
struct AuditVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify the audit log's hash chain; exit 1 naming the first entry that does not hold.",
        discussion: """
            Each entry's hash covers the previous entry's hash and its own content, so an edited, deleted or \
            reordered entry breaks the chain from there on. Deleting the newest entries cannot be detected \
            from the file alone: keep copies of `caresync audit verify --json` output elsewhere.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/audit-verify.schema.json).")
    var json = false

    func run() async throws {
        try await runOperatorCommand("audit verify") { () throws(OperatorError) in
            let store = try await OperatorContext(global).openStore(.reader)
            defer { store.close() }
            let verification = try await storeCall { () async throws(StateStoreError) in try await store.verifyAuditChain() }
            let style = TextStyle.standardOutput()
            switch verification {
            case .intact(let entries):
                let head = try await storeCall { () async throws(StateStoreError) in
                    try await store.latestAudit(nhsNumber: nil, since: nil, limit: 1).first
                }
                if json {
                    let object: JSON = [
                        "intact": true, "entries": .integer(entries), "headHash": .optional(head?.hash), "brokenAt": .null,
                        "reason": .null,
                    ]
                    writeOut(object.text(.pretty) + "\n")
                } else {
                    writeOut(style.paint("audit chain intact", .green) + ": \(Format.plural(entries, "entry", "entries"))")
                    writeOut((head.map { "; newest \($0.sequence) hash \($0.hash)" } ?? "") + "\n")
                }
            case .broken(let sequence, let reason):
                let entry = try? await storeCall { () async throws(StateStoreError) in try await store.auditEntry(sequence: sequence) }
                if json {
                    let object: JSON = [
                        "intact": false, "entries": .null, "headHash": .null, "brokenAt": .integer(sequence),
                        "reason": .string(reason),
                    ]
                    writeOut(object.text(.pretty) + "\n")
                } else {
                    writeOut(style.paint("audit chain BROKEN", .red) + " at entry \(sequence): \(reason)\n")
                    if let entry {
                        writeOut(
                            "  entry \(entry.sequence): \(Format.time(entry.at)) \(entry.event.actor) \(entry.event.action) "
                                + "\(Format.shortened(entry.event.detail, 120))\n")
                    }
                    writeOut("  entries before \(sequence) verify; from \(sequence) on the log cannot be trusted: compare with a backup\n")
                }
                throw .quietExit(.failure)
            }
        }
    }
}

/// `--since`: an instant, a date (midnight UTC) or a duration back from now.
enum SinceArgument {
    static func milliseconds(_ text: String, now: Int64) throws(OperatorError) -> Int64 {
        if let instant = FHIRInstant(text) { return instant.millisecondsSinceEpoch }
        if text.count == 10, let midnight = FHIRInstant(text + "T00:00:00Z") { return midnight.millisecondsSinceEpoch }
        if let duration = DurationArgument.parse(text), text.last?.isLetter == true { return now - duration }
        throw .invalidInput(
            "--since \(text): not a time; give an instant (2025-06-15T09:30:00Z), a date (2025-06-15) or a duration ago (90m, 12h, 7d)")
    }
}
