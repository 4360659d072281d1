import CaresyncTestSupport
import FHIRModel
import StateStore
import Testing

@Suite("Resolving a conflict in the store")
struct ConflictResolutionStoreTests {
    /// A writer with one open conflict on `plan-a` (trust-a against the hub) and one push of the record
    /// queued for the hub; returns the store, the conflict id and the queued item id.
    func openConflict(_ fixture: StoreFixture) async throws -> (SQLiteStateStore, Int64, Int64) {
        let store = try await fixture.openWriter()
        _ = try await store.storePulledPage(
            PulledPage(
                peer: "trust-a", resourceType: .carePlan,
                records: [InboxRecord(resourceType: .carePlan, localID: "a", versionID: "2", nhsNumber: patientA, content: json("{}"))],
                cursor: SyncCursor(serverTime: "2025-04-01T09:30:00Z")))
        let inbox = try await store.pendingInbox(peer: "trust-a", limit: 1)
        let result = try await store.commitMerge(
            MergeCommit(
                inboxID: inbox[0].id, outcome: .merged,
                identityLinks: [IdentityLink(recordKey: key("plan-a"), nhsNumber: patientA, peer: "trust-a", localID: "a", versionID: "1")],
                baseUpdates: [BaseUpdate(peer: "trust-a", recordKey: key("plan-a"), content: json(#"{"v":1}"#))],
                pushes: [push("plan-a", #"{"queued":true}"#)],
                conflicts: [
                    NewConflict(
                        peer: "trust-a", recordKey: key("plan-a"), nhsNumber: patientA, base: json(#"{"v":1}"#), ours: json(#"{"v":2}"#),
                        theirs: json(#"{"v":3}"#), paths: [ConflictPath(path: "CarePlan.status", rule: "careplan-status")])
                ]))
        return (store, result.conflictIDs[0], result.pushes[0].itemID)
    }

    @Test("resolution, pushes, the provider's base and synced version and the audit entry are one transaction")
    func together() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let (store, id, queued) = try await openConflict(fixture)
        defer { store.close() }

        let receipts = try await store.resolveConflict(
            id: id, resolution: ConflictResolution(choice: "theirs", content: json(#"{"v":3}"#), resolvedBy: "alice", reason: "checked"),
            pushes: [push("plan-a", #"{"v":3}"#), push("plan-a", #"{"v":3}"#, peer: "trust-b")],
            baseUpdates: [BaseUpdate(peer: "trust-a", recordKey: key("plan-a"), content: json(#"{"v":3}"#))],
            identityLinks: [IdentityLink(recordKey: key("plan-a"), nhsNumber: patientA, peer: "trust-a", localID: "a", versionID: "2")],
            queueTails: [QueueTailGuard(peer: "hub", lastItemID: queued), QueueTailGuard(peer: "trust-b", lastItemID: nil)])
        #expect(receipts.count == 2)
        let conflict = try #require(try await store.conflict(id: id))
        #expect(conflict.state == .resolved)
        #expect(conflict.resolution?.resolvedBy == "alice")
        #expect(try await store.base(peer: "trust-a", recordKey: key("plan-a"))?.content == json(#"{"v":3}"#))
        #expect(try await store.identity(forAnyOf: [key("plan-a")])?.at("trust-a")?.versionID == "2")
        #expect(try await store.queue(peer: "trust-b", limit: 10).depth == 1)
        let audit = try await store.audit(nhsNumber: patientA, since: nil, limit: 10)
        // The hub push replaced the unsent one queued before (coalescing), audited as such.
        #expect(audit.map(\.event.action) == ["push-superseded", "conflict-resolved"])
        let entry = try #require(audit.last)
        #expect(entry.event.actor == "alice")
        #expect(entry.event.detail == "conflict \(id) resolved with theirs; 2 push(es) queued (hub, trust-b); reason: checked")
        #expect(try await store.verifyAuditChain() == .intact(entries: 2))
    }

    @Test("a push queued meanwhile for a target refuses the resolution, and nothing of it is written")
    func queueTailGuard() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let (store, id, queued) = try await openConflict(fixture)
        defer { store.close() }

        for stale in [QueueTailGuard(peer: "hub", lastItemID: nil), QueueTailGuard(peer: "hub", lastItemID: queued - 1)] {
            let error = await storeError {
                _ = try await store.resolveConflict(
                    id: id, resolution: ConflictResolution(choice: "ours", content: json("{}"), resolvedBy: "alice", reason: "r"),
                    pushes: [push("plan-a", #"{"v":2}"#, peer: "trust-a")],
                    baseUpdates: [BaseUpdate(peer: "trust-a", recordKey: key("plan-a"), content: json(#"{"v":3}"#))], identityLinks: [],
                    queueTails: [stale])
            }
            #expect(error?.code == .changedMeanwhile)
        }
        #expect(try await store.conflict(id: id)?.state == .open)
        #expect(try await store.queue(peer: "trust-a", limit: 10).depth == 0)
        #expect(try await store.base(peer: "trust-a", recordKey: key("plan-a"))?.content == json(#"{"v":1}"#))
        #expect(try await store.audit(nhsNumber: nil, since: nil, limit: 10).isEmpty)
    }
}
