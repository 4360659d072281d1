import ArgumentParser
import FHIRJSON
import FHIRModel
import MergeCore
import StateStore
import SyncEngine

/// `caresync conflicts list|show|resolve`.
struct ConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List, show and resolve clinical conflicts held for review.",
        subcommands: [ConflictsListCommand.self, ConflictsShowCommand.self, ConflictsResolveCommand.self],
        defaultSubcommand: ConflictsListCommand.self
    )
}

/// `caresync conflicts list [--all] [--patient NHSNO] [--json]`.
struct ConflictsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List open conflicts (with --all, resolved ones too), oldest first.",
        discussion: "Patients are shown by the last three digits of their NHS number. Exit status 0, or 2 for a malformed NHS number."
    )

    @OptionGroup var global: GlobalOptions

    @Flag(name: .long, help: "Include resolved conflicts.")
    var all = false

    @Option(name: .long, help: "Only this patient's conflicts (NHS number, 10 digits).")
    var patient: String?

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/conflicts-list.schema.json).")
    var json = false

    func run() async throws {
        try await runOperatorCommand("conflicts list") { () throws(OperatorError) in
            let nhsNumber = try patient.map { (text) throws(OperatorError) in try NHSNumber.operatorInput(text) }
            let store = try await OperatorContext(global).openStore(.reader)
            defer { store.close() }
            let conflicts = try await storeCall { () async throws(StateStoreError) in
                try await store.conflicts(includeResolved: all, nhsNumber: nhsNumber)
            }
            if json {
                writeOut(JSON.object(JSONObject([JSONMember("conflicts", .array(conflicts.map(ConflictJSON.summary)))])).text(.pretty) + "\n")
            } else {
                writeOut(Self.text(conflicts, includeResolved: all, now: nowMilliseconds(), style: .standardOutput()))
            }
        }
    }

    static func text(_ conflicts: [ConflictRecord], includeResolved: Bool, now: Int64, style: TextStyle) -> String {
        guard !conflicts.isEmpty else { return includeResolved ? "no conflicts\n" : "no open conflicts\n" }
        var table = TextTable(["ID", "STATE", "AGE", "PEER", "RECORD", "PATIENT", "PATHS"], rightAligned: [0])
        for record in conflicts {
            let paths = record.conflict.paths
            var pathText = paths.first.map(\.path) ?? "-"
            if paths.count > 1 { pathText += " (+\(paths.count - 1) more)" }
            table.add([
                String(record.id),
                record.state == .open ? style.paint("open", .yellow) : "resolved",
                Format.duration(milliseconds: now - record.createdAt),
                record.conflict.peer,
                RecordLabel.text(record.conflict.recordKey, localID: nil),
                record.conflict.nhsNumber?.masked ?? "-",
                pathText,
            ])
        }
        let open = conflicts.filter { $0.state == .open }.count
        return table.render(style: style) + "\(Format.plural(open, "open conflict")); see one with: caresync conflicts show ID\n"
    }
}

/// `caresync conflicts show ID [--json]`: the three-way view by path.
struct ConflictsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one conflict: per path the base, ours (hub), theirs (provider), the rule and its hazard.",
        discussion: """
            Colour on a terminal, plain when piped or with NO_COLOR set. --json also carries the three whole \
            records, e.g. to edit one into a --value-file for conflicts resolve. Exit status 0, or 2 for an \
            unknown id.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The conflict id (from caresync conflicts list).")
    var id: Int64

    @Flag(name: .long, help: "Print one JSON object (Schemas/cli/conflicts-show.schema.json).")
    var json = false

    func run() async throws {
        try await runOperatorCommand("conflicts show") { () throws(OperatorError) in
            let context = OperatorContext(global)
            let store = try await context.openStore(.reader)
            defer { store.close() }
            guard let record = try await storeCall({ () async throws(StateStoreError) in try await store.conflict(id: id) }) else {
                throw .invalidInput("no conflict with id \(id) (caresync conflicts list --all shows them)")
            }
            let peers = try await storeCall { () async throws(StateStoreError) in try await store.status() }.map(\.peer)
            let mergeContext = peers.first { $0.name == record.conflict.peer }.map { peer in
                InboundPlanner.mergeContext(
                    for: record.conflict.recordKey, from: SyncPeer(name: peer.name, ods: peer.ods, mode: peer.mode, baseURL: peer.baseURL))
            } ?? MergeContext()
            let view = ConflictView(record, policy: try await context.mergePolicy(), context: mergeContext)
            if json {
                writeOut(ConflictJSON.detail(view).text(.pretty) + "\n")
            } else {
                let atHub = peers.first { $0.name == record.conflict.peer }?.mode == .hub
                writeOut(Self.text(view, theirsAtHub: atHub, now: nowMilliseconds(), style: .standardOutput()))
            }
        }
    }

    /// `theirsAtHub`: the engine recorded the conflict on a lost race at the hub (theirs is a merged change
    /// on its way to the hub, not a provider's version).
    static func text(_ view: ConflictView, theirsAtHub: Bool = false, now: Int64, style: TextStyle) -> String {
        let record = view.record
        let conflict = record.conflict
        var out = style.paint("conflict \(record.id)", .bold) + " (" + (record.state == .open ? style.paint("open", .yellow) : "resolved") + ")"
        out += ": \(conflict.recordKey.resourceType.rawValue) \(conflict.recordKey.identifier.token)\n"
        out += theirsAtHub ? "  between the hub (ours) and a merged change that lost a race to it (theirs)" : "  between the hub (ours) and \(conflict.peer) (theirs)"
        if let patient = conflict.nhsNumber { out += ", patient \(patient.masked)" }
        out += "\n  held since \(Format.time(record.createdAt)) (\(Format.duration(milliseconds: now - record.createdAt)) ago)"
        out += "; policy \(view.policyVersion)\n"
        for path in view.paths {
            out += "\n" + style.paint(path.path, .bold) + "  [" + path.rule + "]\n"
            if let message = path.message { out += "  \(message)\n" }
            out += "  " + style.paint("hazard:", .yellow) + " \(path.hazard)\n"
            if path.reproduced {
                out += "  " + style.paint("base:  ", .dim) + " " + Self.value(path.base, indent: 10) + "\n"
                out += "  " + style.paint("ours:  ", .blue) + " " + Self.value(path.ours, indent: 10) + "  (hub)\n"
                out += "  " + style.paint("theirs:", .magenta) + " " + Self.value(path.theirs, indent: 10)
                    + (theirsAtHub ? "  (merged change)\n" : "  (\(conflict.peer))\n")
            } else {
                out += "  (the current policy does not hold this path; compare the whole records with --json)\n"
            }
        }
        if record.state == .open {
            out += "\nresolve with: caresync conflicts resolve \(record.id) --take ours|theirs|base [--path P]… --reason TEXT\n"
            out += "          or: caresync conflicts resolve \(record.id) --value-file FILE --reason TEXT\n"
        } else if let resolution = record.resolution {
            out += "\nresolved with \(resolution.choice) by \(resolution.resolvedBy)"
            if let at = record.resolvedAt { out += " at \(Format.time(at))" }
            out += ": \(resolution.reason)\n"
        }
        return out
    }

    /// A value on one line when short, else pretty-printed and indented under its label.
    static func value(_ value: JSON?, indent: Int) -> String {
        guard let value else { return "(absent)" }
        let compact = value.text()
        if compact.count <= 100 { return compact }
        let padding = String(repeating: " ", count: indent)
        return value.text(.pretty).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .map { $0.offset == 0 ? String($0.element) : padding + $0.element }.joined(separator: "\n")
    }
}

/// The JSON shapes of conflicts (Schemas/cli/conflicts-list.schema.json, conflicts-show.schema.json).
enum ConflictJSON {
    static func summary(_ record: ConflictRecord) -> JSON {
        [
            "id": .integer(record.id),
            "state": .string(record.state.rawValue),
            "peer": .string(record.conflict.peer),
            "resourceType": .string(record.conflict.recordKey.resourceType.rawValue),
            "recordKey": .string(record.conflict.recordKey.description),
            "patient": .optional(record.conflict.nhsNumber?.masked),
            "createdAt": .instant(record.createdAt),
            "paths": .array(record.conflict.paths.map { ["path": .string($0.path), "rule": .string($0.rule)] }),
            "resolution": resolution(record),
        ]
    }

    static func detail(_ view: ConflictView) -> JSON {
        let record = view.record
        return [
            "id": .integer(record.id),
            "state": .string(record.state.rawValue),
            "peer": .string(record.conflict.peer),
            "resourceType": .string(record.conflict.recordKey.resourceType.rawValue),
            "recordKey": .string(record.conflict.recordKey.description),
            "patient": .optional(record.conflict.nhsNumber?.masked),
            "createdAt": .instant(record.createdAt),
            "policyVersion": .string(view.policyVersion),
            "paths": .array(
                view.paths.map { path in
                    [
                        "path": .string(path.path), "rule": .string(path.rule), "hazard": .string(path.hazard),
                        "message": .optional(path.message), "reproduced": .bool(path.reproduced),
                        "base": path.base ?? .null, "ours": path.ours ?? .null, "theirs": path.theirs ?? .null,
                    ]
                }),
            "base": view.base ?? .null,
            "ours": view.ours ?? .null,
            "theirs": view.theirs ?? .null,
            "resolution": resolution(record),
        ]
    }

    private static func resolution(_ record: ConflictRecord) -> JSON {
        guard let resolution = record.resolution else { return .null }
        return [
            "choice": .string(resolution.choice),
            "resolvedBy": .string(resolution.resolvedBy),
            "reason": .string(resolution.reason),
            "resolvedAt": .instant(record.resolvedAt),
        ]
    }
}
