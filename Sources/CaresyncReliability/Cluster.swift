import CaresyncHTTP
import FHIRJSON
import FHIRModel
import Foundation
import StateStore

/// A peer in the daemon's configuration.
struct PeerSpec: Sendable {
    var name: String
    var ods: String
    var baseURL: String
    var mode: String = "read-write"
}

/// A hub and providers (`caresync-store` children) on loopback, a state directory, and `caresync daemon`
/// over them: what each scenario runs against.
final class Cluster: @unchecked Sendable {
    let environment: ReliabilityEnvironment
    let directory: String
    let stateDirectory: String
    let http = HTTPClient(configuration: .init(maximumConnectionsPerHost: 4))
    let hub: StoreNode
    let providers: [StoreNode]
    private(set) var daemon: DaemonNode

    /// Stores named `hub` and each of `providers`, every one started with `storeArguments` plus its own
    /// entry of `arguments`.
    init(
        environment: ReliabilityEnvironment, label: String, providers names: [String] = ["trust-a", "trust-b"],
        storeArguments: [String] = [], arguments: [String: [String]] = [:], stateDirectory: String? = nil
    ) throws {
        self.environment = environment
        let directory = try environment.makeDirectory(label)
        self.directory = directory
        self.stateDirectory = stateDirectory ?? directory + "/state"
        hub = StoreNode(name: "hub", binary: environment.store, directory: directory, arguments: storeArguments + (arguments["hub"] ?? []))
        providers = names.map {
            StoreNode(name: $0, binary: environment.store, directory: directory, arguments: storeArguments + (arguments[$0] ?? []))
        }
        daemon = DaemonNode(binary: environment.caresync, configuration: directory + "/caresync.yaml", logPath: directory + "/daemon.log")
    }

    deinit {
        http.shutdown()
    }

    var stores: [StoreNode] { [hub] + providers }

    func store(_ name: String) -> StoreNode? { stores.first { $0.name == name } }

    func access(_ node: StoreNode) -> PeerAccess { PeerAccess(http: http, baseURL: node.baseURL) }

    func access(_ name: String) -> PeerAccess { access(store(name)!) }

    func startStores() async throws {
        for store in stores { try await store.start() }
    }

    /// Writes the daemon's configuration: the hub, the cluster's providers (read-write, ODS `RP1`…) and
    /// `extra` peers.
    func writeConfiguration(interval: String = "500ms", pageSize: Int = 200, extra: [PeerSpec] = []) throws {
        var peers = providers.enumerated().map { index, node in
            PeerSpec(name: node.name, ods: "RP\(index + 1)", baseURL: node.baseURL)
        }
        peers += extra
        var yaml = """
            state:
              path: \(stateDirectory)
            sync:
              interval: \(interval)
              pageSize: \(pageSize)
              clockSkewMargin: 2s
            metrics:
              enabled: false
            log:
              level: info
            hub:
              name: hub
              ods: QWE
              baseURL: \(hub.baseURL)
              auth:
                type: none
            providers:

            """
        for peer in peers {
            yaml += """
                  - name: \(peer.name)
                    ods: \(peer.ods)
                    baseURL: "\(peer.baseURL)"
                    mode: \(peer.mode)
                    auth:
                      type: none

                """
        }
        try yaml.write(toFile: daemon.configuration, atomically: true, encoding: .utf8)
    }

    /// Seeds every provider's planned records.
    func seed(_ plan: SeedPlan) async throws {
        for provider in providers {
            try await access(provider).seed((plan.byProvider[provider.name] ?? []).map(\.resource))
        }
    }

    /// Stops the daemon (SIGTERM) and every store.
    func shutdown() async {
        if daemon.isRunning { await daemon.stop() }
        for store in stores { await store.stop() }
    }

    /// Removes the cluster's directory (kept when a scenario failed, for the report).
    func removeFiles() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: State

    /// A read-only connection beside the daemon, as the CLI opens one. A daemon that has just started may
    /// still be migrating the schema (a reader then sees it incomplete): that is waited out, not a finding.
    private func openReader() async throws -> SQLiteStateStore {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let opened: Result<SQLiteStateStore, StateStoreError>
            do {
                opened = .success(try SQLiteStateStore.open(directory: stateDirectory, access: .reader))
            } catch {
                opened = .failure(error)
            }
            switch opened {
            case .success(let store):
                return store
            case .failure(let error) where error.code == .schemaOutdated && ContinuousClock.now < deadline:
                try await Task.sleep(for: .milliseconds(100))
            case .failure(let error):
                throw error
            }
        }
    }

    /// What the state store says, read as the CLI reads it (a read-only connection beside the daemon).
    func state() async throws -> StateSnapshot {
        let store = try await openReader()
        defer { store.close() }
        let statuses = try await store.status()
        var inbox: [String: InboxCounts] = [:]
        for status in statuses { inbox[status.peer.name] = try await store.inboxCounts(peer: status.peer.name) }
        return StateSnapshot(
            statuses: statuses, inbox: inbox, openConflicts: try await store.conflicts(includeResolved: false, nhsNumber: nil),
            deadLetters: try await store.deadLetters(peer: nil), queue: try await store.queue(peer: nil, limit: 50).items)
    }

    /// The queued pushes of `peer`, oldest first.
    func queue(peer: String) async throws -> [OutboxItem] {
        let store = try await openReader()
        defer { store.close() }
        return try await store.queue(peer: peer, limit: 100).items
    }

    /// The audit log, oldest first, and whether its hash chain holds.
    func audit(limit: Int = 1_000_000) async throws -> (entries: [AuditEntry], chainIntact: Bool, problem: String?) {
        let store = try await openReader()
        defer { store.close() }
        let entries = try await store.audit(nhsNumber: nil, since: nil, limit: limit)
        let sorted = entries.sorted { $0.sequence < $1.sequence }
        switch try await store.verifyAuditChain() {
        case .intact: return (sorted, true, nil)
        case .broken(let sequence, let reason): return (sorted, false, "entry \(sequence): \(reason)")
        }
    }

    /// Whether every planned record is in place and nothing is left to do: the hub and each provider hold
    /// their expected totals, no push is queued and no pulled version waits to be merged.
    func isSettled(_ plan: SeedPlan) async throws -> Bool {
        guard try await access(hub).totalAll() == plan.hubKeys.count else { return false }
        for provider in providers where try await access(provider).totalAll() != plan.keys(at: provider.name).count {
            return false
        }
        guard FileManager.default.fileExists(atPath: stateDirectory + "/" + SQLiteStateStore.databaseFileName) else { return false }
        let state = try await state()
        return state.queueDepth == 0 && state.pendingInbox == 0
    }

    /// Polls ``isSettled(_:)`` until it holds twice in a row (half a second apart) or `timeout` passes.
    func waitUntilSettled(_ plan: SeedPlan, timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var inARow = 0
        while ContinuousClock.now < deadline {
            if (try? await isSettled(plan)) == true {
                inARow += 1
                if inARow == 2 { return true }
            } else {
                inARow = 0
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    /// Counts what is lost and duplicated against `plan` at every peer, and checks the conflicts.
    func ledger(_ plan: SeedPlan) async throws -> Ledger {
        var ledger = Ledger()
        let expectations: [(StoreNode, Set<String>)] = [(hub, plan.hubKeys)] + providers.map { ($0, plan.keys(at: $0.name)) }
        for (node, expected) in expectations {
            let copies = try await access(node).copiesByKey()
            for key in expected where copies[key] == nil {
                ledger.lost += 1
                ledger.note("\(node.name) lacks \(key)")
            }
            for (key, count) in copies {
                if count > 1 {
                    ledger.duplicated += count - 1
                    ledger.note("\(node.name) holds \(count) copies of \(key)")
                }
                if !expected.contains(key) {
                    ledger.unexpected += 1
                    ledger.note("\(node.name) holds \(key), which it should not")
                }
            }
        }
        let state = try await state()
        var conflictsByKey: [String: Int] = [:]
        for conflict in state.openConflicts { conflictsByKey[conflict.conflict.recordKey.description, default: 0] += 1 }
        for key in plan.conflictKeys where conflictsByKey[key] != 1 {
            ledger.conflictProblems += 1
            ledger.note("\(key) has \(conflictsByKey[key] ?? 0) open conflicts, expected 1")
        }
        for (key, count) in conflictsByKey where !plan.conflictKeys.contains(key) {
            ledger.conflictProblems += 1
            ledger.note("\(key) has \(count) open conflict(s) that no planted edit explains")
        }
        ledger.conflicts = state.openConflicts.count
        if state.queueDepth != 0 { ledger.note("\(state.queueDepth) pushes still queued") }
        if !state.deadLetters.isEmpty {
            ledger.unexplained += state.deadLetters.count
            ledger.note("\(state.deadLetters.count) dead letters: \(state.deadLetters.prefix(3).map(\.reason))")
        }
        if state.quarantined != 0 {
            ledger.unexplained += state.quarantined
            ledger.note("\(state.quarantined) pulled versions quarantined")
        }
        let audit = try await audit(limit: 1)
        if !audit.chainIntact {
            ledger.unexplained += 1
            ledger.note("the audit chain is broken: \(audit.problem ?? "?")")
        }
        return ledger
    }
}

/// The state store as the CLI sees it.
struct StateSnapshot: Sendable {
    var statuses: [PeerStatus]
    var inbox: [String: InboxCounts]
    var openConflicts: [ConflictRecord]
    var deadLetters: [DeadLetter]
    var queue: [OutboxItem]

    var queueDepth: Int { statuses.map(\.queueDepth).reduce(0, +) }
    var pendingInbox: Int { inbox.values.map(\.pending).reduce(0, +) }
    var quarantined: Int { inbox.values.map(\.quarantined).reduce(0, +) }

    func status(_ peer: String) -> PeerStatus? { statuses.first { $0.peer.name == peer } }
}

/// What a converged cluster holds against what it should: records lost, duplicated or unexpected,
/// conflicts not accounted for, dead letters or quarantines nothing explains.
struct Ledger: Sendable {
    var lost = 0
    var duplicated = 0
    var unexpected = 0
    var conflicts = 0
    var conflictProblems = 0
    var unexplained = 0
    private(set) var notes: [String] = []

    var isClean: Bool { lost == 0 && duplicated == 0 && unexpected == 0 && conflictProblems == 0 && unexplained == 0 }

    mutating func note(_ text: String) {
        if notes.count < 12 { notes.append(text) }
    }
}
