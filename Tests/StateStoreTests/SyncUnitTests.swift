import CaresyncTestSupport
import FHIRModel
import StateStore
import Testing

@Suite("Pull pages, merge commits and conflicts")
struct SyncUnitTests {
    func record(_ id: String, version: String, nhs: NHSNumber? = patientA) -> InboxRecord {
        InboxRecord(
            resourceType: .carePlan,
            localID: id,
            versionID: version,
            lastUpdated: "2025-04-01T09:30:00Z",
            nhsNumber: nhs,
            content: json(#"{"resourceType":"CarePlan","id":"\#(id)"}"#)
        )
    }

    @Test("a page goes into the inbox and the cursor advances in one transaction; repeats are ignored")
    func pageAndCursor() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        let seen = [VersionKey(resourceType: .carePlan, id: "a", versionID: "1")]
        let cursor = SyncCursor(serverTime: "2025-04-01T09:30:00.123+01:00", seen: seen)
        let page = PulledPage(peer: "trust-a", resourceType: .carePlan, records: [record("a", version: "1"), record("b", version: "3")], cursor: cursor)
        #expect(try await store.storePulledPage(page) == 2)
        #expect(try await store.cursor(peer: "trust-a", resourceType: .carePlan) == cursor)
        #expect(try await store.storePulledPage(page) == 0)

        let pending = try await store.pendingInbox(peer: "trust-a", limit: 10)
        #expect(pending.map(\.record.localID) == ["a", "b"])
        #expect(pending[0].record.nhsNumber == patientA)

        // A page for an unknown peer stores nothing and moves no cursor.
        let bad = PulledPage(peer: "nowhere", resourceType: .carePlan, records: [record("c", version: "1")], cursor: cursor)
        #expect(await storeError { _ = try await store.storePulledPage(bad) }?.code == .notFound)
        #expect(try await store.pendingInbox(peer: nil, limit: 10).count == 2)
        #expect(try await store.cursor(peer: "nowhere", resourceType: .carePlan) == nil)
    }

    @Test("a merge commit writes inbox state, pushes, conflicts, identity, bases and audit together or not at all")
    func mergeCommitIsAtomic() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        _ = try await store.storePulledPage(
            PulledPage(
                peer: "trust-a",
                resourceType: .carePlan,
                records: [record("a", version: "1"), record("b", version: "1")],
                cursor: SyncCursor(serverTime: "2025-04-01T09:30:00Z")
            )
        )
        let inbox = try await store.pendingInbox(peer: "trust-a", limit: 10)
        let businessKey = key("plan-a")
        let minted = GlobalKey.minted(resourceType: .carePlan, originODS: "RX1", localID: "a")
        let commit = MergeCommit(
            inboxID: inbox[0].id,
            outcome: .merged,
            identityLinks: [
                IdentityLink(recordKey: businessKey, aliases: [minted], nhsNumber: patientA, peer: "trust-a", localID: "a", versionID: "1")
            ],
            baseUpdates: [BaseUpdate(peer: "trust-a", recordKey: businessKey, content: json("{}"))],
            pushes: [push("plan-a", #"{"merged":true}"#, baseOwners: ["hub", "trust-a"])],
            conflicts: [
                NewConflict(
                    peer: "trust-a",
                    recordKey: businessKey,
                    nhsNumber: patientA,
                    base: json("{}"),
                    ours: json(#"{"status":"active"}"#),
                    theirs: json(#"{"status":"revoked"}"#),
                    paths: [ConflictPath(path: "CarePlan.status", rule: "status-machine")]
                )
            ],
            audit: [AuditEvent(actor: "caresync", action: "merged", peer: "trust-a", recordKey: businessKey, nhsNumber: patientA, detail: "1 conflict")]
        )

        // The same commit with a link that clashes with it (same local id, another record) is refused whole.
        var clashing = commit
        clashing.identityLinks.append(
            IdentityLink(recordKey: key("other"), nhsNumber: patientA, peer: "trust-a", localID: "a", versionID: "1")
        )
        #expect(await storeError { _ = try await store.commitMerge(clashing) }?.code == .invalidArgument)
        #expect(try await store.pendingInbox(peer: "trust-a", limit: 10).count == 2)
        #expect(try await store.queue(peer: nil, limit: 10).depth == 0)
        #expect(try await store.conflicts(includeResolved: true, nhsNumber: nil).isEmpty)
        #expect(try await store.identity(forAnyOf: [businessKey]) == nil)
        #expect(try await store.audit(nhsNumber: nil, since: nil, limit: 10).isEmpty)

        let result = try await store.commitMerge(commit)
        #expect(result.pushes.count == 1)
        #expect(result.conflictIDs.count == 1)
        #expect(try await store.pendingInbox(peer: "trust-a", limit: 10).map(\.record.localID) == ["b"])
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 1)
        #expect(try await store.base(peer: "trust-a", recordKey: businessKey)?.content == json("{}"))
        // Found by any of its keys, or by the peer's local id.
        let byAlias = try #require(try await store.identity(forAnyOf: [key("unknown"), minted]))
        #expect(byAlias.recordKey == businessKey)
        #expect(Set(byAlias.keys) == [businessKey, minted])
        #expect(try await store.identity(peer: "trust-a", resourceType: .carePlan, localID: "a")?.recordKey == businessKey)
        #expect(try await store.audit(nhsNumber: patientA, since: nil, limit: 10).map(\.event.action) == ["merged"])
        #expect(try await store.peersHolding(nhsNumber: patientA) == ["trust-a"])
        #expect(try await store.peersHolding(nhsNumber: patientB).isEmpty)

        // An inbox row is merged once.
        #expect(await storeError { _ = try await store.commitMerge(commit) }?.code == .invalidArgument)

        // Quarantine keeps the row with its reason.
        _ = try await store.commitMerge(MergeCommit(inboxID: inbox[1].id, outcome: .quarantined(reason: "nhs-number-check-digit")))
        #expect(try await store.pendingInbox(peer: nil, limit: 10).isEmpty)
    }

    @Test("conflicts are listed by patient, shown with their paths, and resolved once with who and why")
    func conflicts() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        _ = try await store.storePulledPage(
            PulledPage(
                peer: "trust-a",
                resourceType: .carePlan,
                records: [record("a", version: "1"), record("b", version: "1", nhs: patientB)],
                cursor: SyncCursor(serverTime: "2025-04-01T09:30:00Z")
            )
        )
        let inbox = try await store.pendingInbox(peer: nil, limit: 10)
        for (item, patient) in zip(inbox, [patientA, patientB]) {
            _ = try await store.commitMerge(
                MergeCommit(
                    inboxID: item.id,
                    outcome: .merged,
                    conflicts: [
                        NewConflict(
                            peer: "trust-a",
                            recordKey: key(item.record.localID),
                            nhsNumber: patient,
                            base: json(#"{"q":1}"#),
                            ours: json(#"{"q":2}"#),
                            theirs: json(#"{"q":3}"#),
                            paths: [
                                ConflictPath(path: "CarePlan.activity[act-1].detail.quantity", rule: "never-auto"),
                                ConflictPath(path: "CarePlan.status", rule: "status-machine"),
                            ]
                        )
                    ]
                )
            )
        }
        let forB = try await store.conflicts(includeResolved: false, nhsNumber: patientB)
        #expect(forB.count == 1)
        #expect(forB[0].conflict.recordKey == key("b"))
        #expect(forB[0].conflict.paths.map(\.rule) == ["never-auto", "status-machine"])
        #expect(try await store.status().first { $0.peer.name == "trust-a" }?.openConflicts == 2)

        let resolution = ConflictResolution(choice: "theirs", content: json(#"{"q":3}"#), resolvedBy: "alice", reason: "confirmed with the ward")
        let receipts = try await store.resolveConflict(id: forB[0].id, resolution: resolution, pushes: [push("b", #"{"q":3}"#, nhs: patientB)])
        #expect(receipts.count == 1)
        let shown = try #require(try await store.conflict(id: forB[0].id))
        #expect(shown.state == .resolved)
        #expect(shown.resolution == resolution)
        #expect(shown.conflict.theirs == json(#"{"q":3}"#))
        #expect(try await store.conflicts(includeResolved: false, nhsNumber: nil).count == 1)
        #expect(try await store.conflicts(includeResolved: true, nhsNumber: nil).count == 2)

        let again = await storeError { _ = try await store.resolveConflict(id: forB[0].id, resolution: resolution, pushes: []) }
        #expect(again?.code == .alreadyResolved)
        let audit = try await store.audit(nhsNumber: patientB, since: nil, limit: 10)
        #expect(audit.map(\.event.action) == ["conflict-resolved"])
        #expect(audit[0].event.actor == "alice")
        #expect(audit[0].event.detail.contains("confirmed with the ward"))
        #expect(try await store.audit(nhsNumber: patientB, since: audit[0].at + 1, limit: 10).isEmpty)
    }
}
