import CaresyncTestSupport
import FHIRModel
import Foundation
import StateStore
import Testing

/// A real writer process is SIGKILLed at random moments, again and again; after every kill the store is
/// reopened and checked. `CARESYNC_STATESTORE_CRASH_ITERATIONS` sets the number of kills (default 30);
/// `CARESYNC_STATESTORE_CRASH_SEED` repeats a run.
@Suite("Crash safety with SIGKILL")
struct CrashSafetyTests {
    struct Acknowledged {
        var key: String
        var sequence: Int
    }

    struct CrashBody: Decodable {
        var key: String
        var seq: Int
    }

    @Test("after each kill: no acknowledged enqueue lost, no duplicate, no stuck lease, per-record order, audit intact")
    func killAtRandomMoments() async throws {
        let environment = ProcessInfo.processInfo.environment
        let iterations = environment["CARESYNC_STATESTORE_CRASH_ITERATIONS"].flatMap(Int.init) ?? 30
        let seed = environment["CARESYNC_STATESTORE_CRASH_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...1_000_000)
        print("crash safety: \(iterations) kills, seed \(seed)")
        var generator = SeededTestGenerator(state: seed)
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let childPath = try TestPaths.product("statestore-crash-child")

        var acknowledged: [String: Acknowledged] = [:]
        var acknowledgedDone: Set<String> = []
        var leasesReleased = 0
        for incarnation in 1...iterations {
            let child = try ChildProcess(
                executable: childPath,
                arguments: [
                    "--dir", fixture.path, "--mode", "crash",
                    "--incarnation", String(incarnation), "--seed", String(seed &+ UInt64(incarnation)),
                ]
            )
            _ = try await child.waitForLine { $0.hasPrefix("READY") }
            try await Task.sleep(for: .milliseconds(Int.random(in: 2...150, using: &generator)))
            child.send(SIGKILL)
            try await child.waitForExit()
            #expect(child.process.terminationReason == .uncaughtSignal, "the child stopped by itself: \(child.errors)")

            for line in child.output {
                let fields = line.split(separator: " ").map(String.init)
                if fields.count == 5, fields[0] == "ENQ", let sequence = Int(fields[3]) {
                    acknowledged[fields[1]] = Acknowledged(key: fields[2], sequence: sequence)
                } else if fields.count == 2, fields[0] == "DONE" {
                    acknowledgedDone.insert(fields[1])
                }
            }

            let store = try SQLiteStateStore.open(directory: fixture.path, access: .writer)
            leasesReleased += store.recovery.leasesReleased
            try await verify(store, acknowledged: acknowledged, acknowledgedDone: acknowledgedDone, incarnation: incarnation)
            store.close()
        }
        #expect(acknowledged.count > iterations, "the child acknowledged too little work to test anything")
        #expect(leasesReleased > 0, "no kill ever left a lease behind for recovery to release")
    }

    private func verify(
        _ store: SQLiteStateStore,
        acknowledged: [String: Acknowledged],
        acknowledgedDone: Set<String>,
        incarnation: Int
    ) async throws {
        let listing = try await store.queue(peer: nil, limit: 10_000_000)
        let dead = try await store.deadLetters(peer: nil).map(\.requestID)
        let audit = try await store.audit(nhsNumber: nil, since: nil, limit: 10_000_000)
        func requestIDs(_ action: String) -> [String] {
            audit.filter { $0.event.action == action }.compactMap(\.event.requestID)
        }
        let completed = requestIDs("push-completed")
        let superseded = Set(requestIDs("push-superseded"))
        let deadLettered = Set(requestIDs("push-dead-lettered"))
        let queued = listing.items.map(\.requestID)
        let context = "after kill \(incarnation)"

        #expect(listing.depth == listing.items.count, "\(context): depth counter disagrees with the rows")
        #expect(Set(queued).count == queued.count, "\(context): a request id is queued twice")
        #expect(Set(completed).count == completed.count, "\(context): a push completed twice")
        #expect(Set(queued).isDisjoint(with: completed), "\(context): a completed push is still queued")
        #expect(Set(queued).isDisjoint(with: dead), "\(context): a dead letter is still queued")
        #expect(superseded.isDisjoint(with: Set(queued).union(completed).union(dead)), "\(context): a superseded push survived")
        #expect(Set(dead) == deadLettered, "\(context): dead letters and their audit entries disagree")

        let accounted = Set(queued).union(completed).union(dead).union(superseded)
        let lost = acknowledged.keys.filter { !accounted.contains($0) }
        #expect(lost.isEmpty, "\(context): \(lost.count) acknowledged enqueue(s) lost")
        #expect(acknowledgedDone.isSubset(of: Set(completed)), "\(context): an acknowledged completion is missing")
        #expect(listing.items.allSatisfy { $0.leaseExpiresAt == nil }, "\(context): a lease survived the restart")

        // Per record: queued items in id order carry increasing sequence numbers, at most the last is
        // unsent, and every completed push of the record came before every queued one, in order.
        var queuedByKey: [String: [OutboxItem]] = [:]
        for item in listing.items { queuedByKey[item.push.recordKey.identifier.value, default: []].append(item) }
        var lastCompleted: [String: Int] = [:]
        for requestID in completed {
            guard let ack = acknowledged[requestID] else { continue }  // committed, but killed before printing
            #expect(ack.sequence > lastCompleted[ack.key] ?? 0, "\(context): \(ack.key) completed out of order")
            lastCompleted[ack.key] = ack.sequence
        }
        for (key, items) in queuedByKey {
            let ordered = items.sorted { $0.id < $1.id }
            let sequences = try ordered.map { try JSONDecoder().decode(CrashBody.self, from: Data($0.push.body)).seq }
            #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count, "\(context): \(key) queue out of order")
            #expect(ordered.dropLast().allSatisfy { $0.attempts > 0 }, "\(context): \(key) has an unsent push before another")
            if let first = sequences.first, let done = lastCompleted[key] {
                #expect(done < first, "\(context): \(key) completed a later push before an earlier one")
            }
        }
        if case .broken(let sequence, let reason) = try await store.verifyAuditChain() {
            Issue.record("\(context): audit chain broken at \(sequence): \(reason)")
        }
    }
}

/// SplitMix64, so a run's kill timings can be repeated from its seed.
struct SeededTestGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
