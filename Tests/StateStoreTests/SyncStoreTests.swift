import CaresyncTestSupport
import FHIRModel
import GRDB
import StateStore
import Testing

@Suite("Sync engine store operations")
struct SyncStoreTests {
    func inboxRecord(_ id: String, version: String = "1") -> InboxRecord {
        InboxRecord(
            resourceType: .carePlan, localID: id, versionID: version, lastUpdated: "2025-04-01T09:30:00Z", nhsNumber: patientA,
            content: json(#"{"resourceType":"CarePlan","id":"\#(id)"}"#))
    }

    func pull(_ store: SQLiteStateStore, _ ids: [String]) async throws -> [InboxItem] {
        _ = try await store.storePulledPage(
            PulledPage(peer: "trust-a", resourceType: .carePlan, records: ids.map { inboxRecord($0) }, cursor: SyncCursor(serverTime: "2025-04-01T09:30:00Z")))
        return try await store.pendingInbox(peer: "trust-a", limit: 100)
    }

    @Test("record contexts read identity, bases, queue tails, open conflicts and patient holders in one snapshot")
    func recordContexts() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }
        let inbox = try await pull(store, ["a"])
        let recordKey = key("plan-a")
        _ = try await store.commitMerge(
            MergeCommit(
                inboxID: inbox[0].id, outcome: .merged,
                identityLinks: [IdentityLink(recordKey: recordKey, nhsNumber: patientA, peer: "trust-a", localID: "a", versionID: "1")],
                baseUpdates: [
                    BaseUpdate(peer: "trust-a", recordKey: recordKey, content: json("{}")),
                    BaseUpdate(peer: "hub", recordKey: recordKey, content: json(#"{"hub":true}"#)),
                ],
                pushes: [
                    PushRequest(
                        peer: "hub", recordKey: recordKey, nhsNumber: patientA, operation: .create, body: json(#"{"x":1}"#),
                        mergeBase: json(#"{"base":1}"#))
                ],
                conflicts: [NewConflict(peer: "trust-a", recordKey: recordKey, nhsNumber: patientA, base: nil, ours: nil, theirs: nil, paths: [])]))

        let contexts = try await store.recordContexts([
            RecordLookup(peer: "trust-a", resourceType: .carePlan, localID: "a", keys: []),
            RecordLookup(peer: "trust-b", resourceType: .carePlan, localID: "zz", keys: [recordKey], patient: patientA, hubForNewHolder: "hub"),
            RecordLookup(peer: "trust-b", resourceType: .carePlan, localID: "none", keys: [key("unknown")]),
        ])
        #expect(contexts[0].identity?.recordKey == recordKey)
        #expect(contexts[0].bases["hub"] == json(#"{"hub":true}"#))
        #expect(contexts[0].queueTails["hub"]?.push.mergeBase == json(#"{"base":1}"#))
        #expect(contexts[0].openConflictPeers == ["trust-a"])
        #expect(contexts[1].identity?.at("trust-a")?.localID == "a", "found by its business identifier")
        #expect(contexts[1].patientHolders == ["trust-a"])
        #expect(contexts[1].hubPatientRecords.map(\.recordKey) == [recordKey], "trust-b holds no record of the patient yet")
        #expect(contexts[2].identity == nil)
        #expect(contexts[0].queueTailIDs["hub"] == contexts[0].queueTails["hub"]?.id)

        // Content of the named peers only; the hub's queued push by id.
        let slim = try await store.recordContexts([
            RecordLookup(
                peer: "hub", resourceType: .carePlan, localID: nil, keys: [recordKey], patient: patientA, contentPeers: ["trust-a"])
        ])[0]
        #expect(slim.bases == ["trust-a": json("{}")])
        #expect(slim.queueTails.isEmpty)
        #expect(slim.queueTailIDs["hub"] != nil)
        #expect(slim.queueTailIDs["hub"] == contexts[0].queueTails["hub"]?.id)
        #expect(slim.patientHolders == ["trust-a"])
        #expect(slim.openConflictPeers == ["trust-a"])
    }

    @Test("a batch of merge commits is one transaction: one bad commit rolls back all of them")
    func commitMergesIsAtomic() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }
        let inbox = try await pull(store, ["a", "b"])
        let good = MergeCommit(inboxID: inbox[0].id, outcome: .merged, pushes: [push("plan-a", "{}")])
        let bad = MergeCommit(inboxID: inbox[1].id, outcome: .merged, pushes: [push("plan-b", "{}", peer: "nowhere")])
        #expect(await storeError { _ = try await store.commitMerges([good, bad]) }?.code == .notFound)
        #expect(try await store.pendingInbox(peer: nil, limit: 10).count == 2)
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 0)
        _ = try await store.commitMerges([good])
        #expect(try await store.pendingInbox(peer: nil, limit: 10).count == 1)
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 1)
    }

    @Test("completing a batch skips pushes whose lease was lost and completes the others")
    func completeBatch() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }
        _ = try await store.enqueue([push("plan-a", #"{"a":1}"#), push("plan-b", #"{"b":1}"#)])
        let leased = try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 1000)
        fixture.clock.advance(milliseconds: 2000)
        let stolen = try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 1000)
        #expect(stolen.count == 1)
        let lost = try await store.complete(leased.map { CompletedPush(push: $0, completion: PushCompletion(localID: "x-\($0.item.id)", versionID: "2")) })
        #expect(lost == [stolen[0].item.id])
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 1)
    }

    @Test("a lost race replaces the push in place with a new request id, or withdraws it, in one transaction")
    func recoverLostRace() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }
        _ = try await store.enqueue([push("plan-a", #"{"v":1}"#), push("plan-b", #"{"b":1}"#)])
        let leased = try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 1000)
        let first = try #require(leased.first { $0.item.push.recordKey == key("plan-a") })
        let receipt = try await store.recoverLostRace(
            first,
            LostRaceRecovery(
                replacement: .init(operation: .update, localID: "plan-a", ifMatchVersion: "7", body: json(#"{"v":2}"#), mergeBase: json(#"{"v":"hub"}"#)),
                targetLocalID: "plan-a", targetVersionID: "7", targetContent: json(#"{"v":"hub"}"#)))
        #expect(receipt?.itemID == first.item.id, "same queue position")
        #expect(receipt?.requestID != first.item.requestID, "a new body gets a new request id")
        let queue = try await store.queue(peer: "hub", limit: 10)
        let replaced = try #require(queue.items.first { $0.id == first.item.id })
        #expect(replaced.push.ifMatchVersion == "7")
        #expect(replaced.push.body == json(#"{"v":2}"#))
        #expect(replaced.attempts == 0 && replaced.leaseExpiresAt == nil)
        #expect(try await store.base(peer: "hub", recordKey: key("plan-a"))?.content == json(#"{"v":"hub"}"#))
        #expect(try await store.identity(forAnyOf: [key("plan-a")])?.at("hub")?.versionID == "7")

        let second = try #require(leased.first { $0.item.push.recordKey == key("plan-b") })
        #expect(try await store.recoverLostRace(second, LostRaceRecovery(replacement: nil)) == nil)
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 1)
        let actions = try await store.audit(nhsNumber: nil, since: nil, limit: 100).map(\.event.action)
        #expect(actions.contains("push-remerged") && actions.contains("push-withdrawn"))
        // The old lease is gone: completing with it fails.
        #expect(await storeError { try await store.complete(first, with: PushCompletion(localID: "plan-a", versionID: "8")) }?.code == .leaseLost)
    }

    @Test("peer sync state and lag show in status; cursors can be reset; inbox counts by state")
    func peerStateAndCursors() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }
        try await store.recordSyncState(peer: "trust-a", .backingOff, detail: "HTTP 503", lagMilliseconds: 4200)
        try await store.recordSyncState(peer: "trust-a", .backingOff, detail: "HTTP 503 again", lagMilliseconds: nil)
        let status = try #require(try await store.status().first { $0.peer.name == "trust-a" })
        #expect(status.syncState == .backingOff)
        #expect(status.syncStateDetail == "HTTP 503 again")
        #expect(status.lagMilliseconds == 4200, "a state without a measurement keeps the last lag")
        let inbox = try await pull(store, ["a", "b"])
        _ = try await store.commitMerge(MergeCommit(inboxID: inbox[0].id, outcome: .quarantined(reason: "bad")))
        #expect(try await store.inboxCounts(peer: "trust-a") == InboxCounts(pending: 1, merged: 0, quarantined: 1))
        #expect(try await store.cursor(peer: "trust-a", resourceType: .carePlan) != nil)
        try await store.resetCursors(peer: "trust-a", resourceType: .encounter)
        #expect(try await store.cursor(peer: "trust-a", resourceType: .carePlan) != nil)
        try await store.resetCursors(peer: "trust-a", resourceType: nil)
        #expect(try await store.cursor(peer: "trust-a", resourceType: .carePlan) == nil)
    }

    @Test("a version merged or quarantined before is not stored again when pulled again; a quarantined row keeps what was received, a merged row drops it")
    func processedVersionsNotStoredAgain() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        let inbox = try await pull(store, ["a", "b"])
        _ = try await store.commitMerges([
            MergeCommit(inboxID: inbox[0].id, outcome: .merged, pushes: [push("plan-a", "{}")]),
            MergeCommit(inboxID: inbox[1].id, outcome: .quarantined(reason: "bad")),
        ])
        #expect(try await pull(store, ["a", "b"]).isEmpty, "the same versions pulled again are not stored again")
        store.close()
        let raw = try DatabaseQueue(path: fixture.databasePath)
        let rows = try raw.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT i.local_id, i.state, length(c.content) AS bytes FROM inbox i
                    LEFT JOIN inbox_content c ON c.inbox_id = i.id ORDER BY i.local_id
                    """)
        }
        #expect(rows.map { $0["local_id"] as String } == ["a", "b"])
        #expect(rows.map { $0["state"] as String } == ["merged", "quarantined"])
        #expect(rows.map { $0["bytes"] as Int? } == [nil, inboxRecord("b").content.count])
    }

    @Test("merged content is deleted, so the pages it took are reused: pulling and merging more versions does not grow the file by their content")
    func mergedContentPagesAreReused() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        let padding = String(repeating: "x", count: 8_000)
        func round(_ name: String) async throws {
            let records = (0..<100).map { index in
                InboxRecord(
                    resourceType: .carePlan, localID: "\(name)-\(index)", versionID: "1", lastUpdated: "2025-04-01T09:30:00Z",
                    nhsNumber: patientA, content: json(#"{"resourceType":"CarePlan","note":"\#(padding)"}"#))
            }
            _ = try await store.storePulledPage(
                PulledPage(peer: "trust-a", resourceType: .carePlan, records: records, cursor: SyncCursor(serverTime: "2025-04-01T09:30:00Z")))
            let pending = try await store.pendingInbox(peer: "trust-a", limit: 200)
            #expect(pending.count == 100)
            #expect(pending.allSatisfy { $0.record.content.count > 8_000 }, "pending rows carry their content")
            _ = try await store.commitMerges(pending.map { MergeCommit(inboxID: $0.id, outcome: .merged) })
        }
        func pages() async throws -> Int {
            try store.checkpoint(truncate: true)
            let raw = try DatabaseQueue(path: fixture.databasePath)
            defer { try? raw.close() }
            return try await raw.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count")! }
        }
        try await round("first")
        let afterFirst = try await pages()
        try await round("second")
        try await round("third")
        let afterThird = try await pages()
        // 200 more versions of 8 KB would take about 100 new 16 KB pages if their content stayed.
        #expect(afterThird - afterFirst < 20, "pages: \(afterFirst) after the first round, \(afterThird) after the third")
        store.close()
    }

    @Test("a file from before inbox content had its own table: its pending rows are still read and merged with their content")
    func pendingRowsFromBeforeTheContentTable() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        _ = try await pull(store, ["a"])
        store.close()
        // As a v4 file held it: the content in the row itself, no content table.
        let raw = try DatabaseQueue(path: fixture.databasePath)
        try await raw.write { db in
            try db.execute(sql: "UPDATE inbox SET content = (SELECT content FROM inbox_content WHERE inbox_id = inbox.id)")
            try db.execute(sql: "DROP TABLE inbox_content")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v5-inbox-content'")
        }
        try raw.close()

        let upgraded = try await fixture.openWriter()
        defer { upgraded.close() }
        let pending = try await upgraded.pendingInbox(peer: "trust-a", limit: 10)
        #expect(pending.map(\.record.content) == [inboxRecord("a").content])
        _ = try await upgraded.commitMerges([MergeCommit(inboxID: pending[0].id, outcome: .merged)])
        #expect(try await upgraded.inboxCounts(peer: "trust-a") == InboxCounts(pending: 0, merged: 1, quarantined: 0))
        #expect(try await pull(upgraded, ["b"]).map(\.record.content) == [inboxRecord("b").content])
    }
}
