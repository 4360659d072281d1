import ArgumentParser
import CaresyncDaemon
import FHIRJSON
import FHIRModel
import Foundation
import MergeCore
import StateStore
import SyncEngine

/// `caresync conflicts resolve ID (--take ours|theirs|base [--path P]… | --value-file F) --reason TEXT`.
///
/// Builds the resolved record, validates it (caresync profile), and in one transaction writes the
/// resolution, queues the record to the hub and every read-write provider holding it (each guarded by
/// `If-Match`, built by the sync engine's planner), brings the conflict's provider in step with the
/// version reviewed, and audits it with the OS user and the reason. Then wakes the daemon.
struct ConflictsResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Resolve a conflict: take ours, theirs or base at its paths, or a record from a file; audited.",
        discussion: """
            --take applies at every conflicting path, or only at each --path given (the other paths keep ours, \
            the hub's value, as while the conflict was open); the rest of the record merges as the daemon merged \
            it. --value-file gives the whole resolved record instead (e.g. edited from conflicts show --json). \
            The result must be valid (caresync profile) and of the same record and patient. It is queued to the \
            hub and to each read-write provider holding the record, guarded by If-Match: a change made at a peer \
            since is never overwritten, it is merged again by the daemon. Exit status 0 resolved; 1 refused (the \
            hub changed at a chosen path since, or the record changed while resolving: run it again); 2 for an \
            unknown or resolved conflict, an unknown path, a bad file, or a result that is not valid or is \
            another record or patient.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The conflict id (from caresync conflicts list).")
    var id: Int64

    @Option(name: .long, help: "Take ours (the hub's), theirs (the provider's) or base at the conflicting paths.")
    var take: TakeArgument?

    @Option(name: .long, help: "Only at this conflicting path (repeat for several); with --take.")
    var path: [String] = []

    @Option(name: .long, help: "The whole resolved record, as a FHIR JSON file.")
    var valueFile: String?

    @Option(name: .long, help: "Why, for the audit log (required).")
    var reason: String

    func validate() throws {
        if (take == nil) == (valueFile == nil) {
            throw ValidationError("give --take ours|theirs|base or --value-file FILE (one of the two)")
        }
        if !path.isEmpty && take == nil { throw ValidationError("--path goes with --take") }
        if reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("--reason cannot be empty") }
    }

    func run() async throws {
        try await runOperatorCommand("conflicts resolve") { () throws(OperatorError) in
            let context = OperatorContext(global)
            let directory = try await context.stateDirectory()
            let store = try await context.openStore(.operator)
            defer { store.close() }
            guard let record = try await storeCall({ () async throws(StateStoreError) in try await store.conflict(id: id) }) else {
                throw .invalidInput("no conflict with id \(id) (caresync conflicts list --all shows them)")
            }
            guard record.state == .open else {
                let by = record.resolution.map { " by \($0.resolvedBy)" } ?? ""
                throw .invalidInput("conflict \(id) is already resolved\(by)")
            }
            let conflict = record.conflict
            let storedPaths = conflict.paths.map(\.path)
            for chosen in path where !storedPaths.contains(chosen) {
                throw .invalidInput("--path \(chosen) is not a conflicting path of conflict \(id) (paths: \(storedPaths.joined(separator: ", ")))")
            }

            let policy = try await context.mergePolicy()
            let topology = try await Self.topology(context: context, store: store)
            guard let provider = topology.peer(named: conflict.peer) else {
                throw .failure("the conflict's peer \(conflict.peer) is no longer configured; it cannot be resolved through it")
            }
            let planner = InboundPlanner(topology: topology, policy: policy)
            let mergeContext = InboundPlanner.mergeContext(for: conflict.recordKey, from: provider)
            let lookup = RecordLookup(peer: planner.topology.hub.name, resourceType: conflict.recordKey.resourceType, localID: nil, keys: [conflict.recordKey])
            let recordContext = try await storeCall { () async throws(StateStoreError) in try await store.recordContexts([lookup]) }.first
                ?? RecordContext(identity: nil)

            let base = Self.parse(conflict.base)
            let ours = Self.parse(conflict.ours)
            let theirs = Self.parse(conflict.theirs)
            let hubNow = planner.hubContent(recordContext) ?? ours
            if conflict.paths.contains(where: { $0.rule == SafetyRules.wrongPatient.id }) {
                try await closeWrongPatient(conflict, store: store, hub: hubNow ?? ours)
                return
            }
            let resolved: JSON
            let choice: String
            if let take {
                let chosenPaths = path.isEmpty ? storedPaths : path
                (resolved, choice) = try Self.resolveByPath(
                    id: id, take: take.choice, paths: chosenPaths, allPaths: storedPaths, base: base, ours: ours, hubNow: hubNow,
                    theirs: theirs, policy: policy, context: mergeContext)
            } else {
                resolved = try Self.resolveFromFile(valueFile ?? "", ours: ours, hubNow: hubNow, policy: policy, conflict: conflict)
                choice = "value from \(((valueFile ?? "") as NSString).lastPathComponent)"
            }
            try Self.check(resolved, conflict: conflict)

            let plan = planner.resolutionPlan(resolved: resolved, conflict: conflict, context: recordContext)
            let user = OperatorUser.current()
            let resolution = ConflictResolution(
                choice: choice, content: ResourceContent.withoutServerFields(resolved).serialized(), resolvedBy: user,
                reason: reason.trimmingCharacters(in: .whitespacesAndNewlines))
            do throws(StateStoreError) {
                _ = try await store.resolveConflict(
                    id: id, resolution: resolution, pushes: plan.pushes, baseUpdates: plan.baseUpdates, identityLinks: plan.identityLinks,
                    queueTails: plan.queueTails)
            } catch {
                if error.code == .changedMeanwhile {
                    throw .failure("the record changed while the resolution was prepared (the daemon queued a push): nothing was written; run the command again")
                }
                throw .store(error)
            }
            writeOut("conflict \(id) resolved: \(choice); audited as \(user)\n")
            if plan.pushes.isEmpty {
                writeOut("every peer already holds the resolved record: nothing to push\n")
            }
            for push in plan.pushes {
                let target = push.localID.map { "\(push.recordKey.resourceType.rawValue)/\($0)" } ?? push.recordKey.resourceType.rawValue
                let guardText = push.ifMatchVersion.map { " If-Match W/\"\($0)\"" } ?? (push.operation == .create ? " If-None-Exist" : "")
                writeOut("  queued for \(push.peer): \(push.operation.rawValue) \(target)\(guardText)\n")
            }
            if let daemon = DaemonLock.holder(stateDirectory: directory) {
                if kill(daemon, SIGUSR1) == 0 {
                    writeOut("daemon (pid \(daemon)) woken to send them\n")
                } else {
                    writeOut("the daemon (pid \(daemon)) sends them on its next cycle\n")
                }
            } else if !plan.pushes.isEmpty {
                writeOut("no daemon is running: they are sent when it starts (or run caresync resync)\n")
            }
        }
    }

    /// A merge refused because the sides name different patients is never settled by writing one side
    /// over the other: the source record must be corrected where it was made. The operator closes it
    /// keeping the hub's record, with nothing pushed anywhere.
    func closeWrongPatient(_ conflict: NewConflict, store: SQLiteStateStore, hub: JSON?) async throws(OperatorError) {
        guard take == .ours, path.isEmpty else {
            throw .invalidInput(
                "conflict \(id) is a refused merge of two different patients' records (\(SafetyRules.wrongPatient.id)): caresync never writes "
                    + "one over the other. Correct the record at \(conflict.peer) (its next version is merged as usual), then close "
                    + "this conflict keeping the hub's record: --take ours")
        }
        let user = OperatorUser.current()
        let resolution = ConflictResolution(
            choice: "ours (wrong-patient refusal closed; nothing pushed)",
            content: hub.map { ResourceContent.withoutServerFields($0).serialized() } ?? [],
            resolvedBy: user, reason: reason.trimmingCharacters(in: .whitespacesAndNewlines))
        _ = try await storeCall { () async throws(StateStoreError) in
            try await store.resolveConflict(id: id, resolution: resolution, pushes: [])
        }
        writeOut("conflict \(id) closed keeping the hub's record; nothing pushed; audited as \(user)\n")
    }

    // MARK: Building the resolved record

    /// The merge with the operator's choice at each chosen path, made against what the hub holds now (so
    /// changes the hub took since the conflict are kept). Refused when the hub's value at a chosen path is
    /// no longer the one the operator saw.
    static func resolveByPath(
        id: Int64, take: ConflictChoice, paths: [String], allPaths: [String], base: JSON?, ours: JSON?, hubNow: JSON?, theirs: JSON?,
        policy: MergePolicy, context: MergeContext
    ) throws(OperatorError) -> (JSON, String) {
        let seen = merge(base: base, ours: ours, theirs: theirs, policy: policy, context: context)
        let choices = Dictionary(paths.map { ($0, take) }) { first, _ in first }
        let outcome = resolve(base: base, ours: hubNow, theirs: theirs, policy: policy, context: context, choices: choices)
        if outcome.status == .refused {
            throw .failure("the merge is refused: " + outcome.errors.map(\.description).joined(separator: "; "))
        }
        let now = Dictionary(outcome.conflicts.map { ($0.path, $0) }) { first, _ in first }
        let then = Dictionary(seen.conflicts.map { ($0.path, $0) }) { first, _ in first }
        for path in paths {
            guard let current = now[path], let reviewed = then[path] else {
                throw .failure(
                    "the hub's record changed at \(path) since the conflict was recorded, so the choice no longer applies; "
                        + "look at it again (caresync conflicts show \(id)) and resolve with --value-file")
            }
            guard current.ours == reviewed.ours else {
                throw .failure(
                    "the hub's value at \(path) changed since the conflict was recorded (now \(current.ours.map { $0.text() } ?? "absent")); "
                        + "review it again and resolve with --value-file")
            }
        }
        guard let result = outcome.result else {
            throw .failure("taking \(take.rawValue) deletes the record; caresync does not delete records: give the record with --value-file")
        }
        let description: String
        if Set(paths) == Set(allPaths) {
            description = "\(take.rawValue) at \(Format.plural(paths.count, "conflicting path"))"
        } else {
            description = "\(take.rawValue) at \(paths.joined(separator: ", ")); ours elsewhere"
        }
        return (result, description)
    }

    /// The record in `file`; when the hub changed since the conflict, the file's changes (relative to what
    /// the operator saw, ours) are merged onto the hub's current record, and any clash is refused.
    static func resolveFromFile(_ file: String, ours: JSON?, hubNow: JSON?, policy: MergePolicy, conflict: NewConflict) throws(OperatorError)
        -> JSON
    {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .invalidInput("--value-file \(file): cannot be read (no such file, or permission denied)")
        }
        let value: JSON
        do {
            value = try JSON.parse([UInt8](data))
        } catch {
            throw .invalidInput("--value-file \(file): not valid JSON: \(error.description)")
        }
        guard value["resourceType"]?.stringValue == conflict.recordKey.resourceType.rawValue else {
            throw .invalidInput(
                "--value-file \(file): a \(conflict.recordKey.resourceType.rawValue) is needed, found \(value["resourceType"]?.stringValue ?? "no resourceType")")
        }
        guard let ours, let hubNow, !ResourceContent.sameMeaning(ours, hubNow) else { return value }
        let outcome = merge(base: ours, ours: hubNow, theirs: value, policy: policy, context: MergeContext())
        guard outcome.status == .merged, let result = outcome.result else {
            let why = outcome.status == .refused
                ? outcome.errors.map(\.description).joined(separator: "; ")
                : outcome.conflicts.map(\.path).joined(separator: ", ")
            throw .failure("the hub's record changed since the conflict was recorded and the file clashes with it (\(why)); look at it again")
        }
        return result
    }

    /// The resolved record is valid, the same record and the same patient.
    static func check(_ resolved: JSON, conflict: NewConflict) throws(OperatorError) {
        let report = ResourceValidator(profile: .caresync).validate(ResourceContent.withoutServerFields(resolved))
        if !report.isValid {
            let issues = report.issues.prefix(5).map { "\($0.path) [\($0.code.rawValue)] \($0.message)" }
            throw .invalidInput("the resolved record is not valid: " + issues.joined(separator: "; "))
        }
        guard let identity = ResourceIdentity(resolved) else {
            throw .invalidInput("the resolved record has no identity")
        }
        if let patient = conflict.nhsNumber, identity.nhsNumber != patient {
            throw .invalidInput("the resolved record is about another patient than the conflict (\(SafetyRules.wrongPatient.id)): refused")
        }
        guard identity.globalKeys.contains(conflict.recordKey) else {
            throw .invalidInput(
                "the resolved record does not carry the record's identifier \(conflict.recordKey.identifier.system)|…: it would be another record")
        }
    }

    static func parse(_ bytes: [UInt8]?) -> JSON? {
        bytes.flatMap { try? JSON.parse($0) }
    }

    /// The peers as the daemon runs them: the configuration when it loads, else the state database's.
    static func topology(context: OperatorContext, store: SQLiteStateStore) async throws(OperatorError) -> SyncTopology {
        if let configuration = try? await context.configuration() {
            return configuration.syncTopology
        }
        let peers = try await storeCall { () async throws(StateStoreError) in try await store.status() }.map(\.peer)
        guard let hub = peers.first(where: { $0.mode == .hub }) else {
            throw .failure("the state database names no hub peer")
        }
        return SyncTopology(
            hub: SyncPeer(name: hub.name, ods: hub.ods, mode: .hub, baseURL: hub.baseURL),
            providers: peers.filter { $0.mode != .hub }.map { SyncPeer(name: $0.name, ods: $0.ods, mode: $0.mode, baseURL: $0.baseURL) })
    }
}

/// `--take`: the version taken at the conflicting paths.
enum TakeArgument: String, ExpressibleByArgument, CaseIterable {
    case ours, theirs, base

    var choice: ConflictChoice {
        switch self {
        case .ours: .ours
        case .theirs: .theirs
        case .base: .base
        }
    }
}
