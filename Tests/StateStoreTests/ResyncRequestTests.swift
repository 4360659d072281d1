import CaresyncTestSupport
import FHIRModel
import GRDB
import StateStore
import Testing

@Suite("Resync requests")
struct ResyncRequestTests {
    @Test("an operator's request is seen by the daemon, runs with progress, finishes once, and is audited")
    func lifecycle() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let writer = try await fixture.openWriter()
        defer { writer.close() }
        let cli = try SQLiteStateStore.open(directory: fixture.path, access: .operator, options: fixture.options())
        defer { cli.close() }

        let id = try await cli.requestResync(peer: "trust-a", type: .encounter, patient: patientA, full: true, requestedBy: "alice")
        let other = try await cli.requestResync(peer: nil, type: nil, patient: nil, full: false, requestedBy: "bob")
        #expect(try await writer.pendingResyncRequests().map(\.id) == [id, other])

        var request = try #require(try await cli.resyncRequest(id: id))
        #expect(request.scope == ResyncScope(peer: "trust-a", resourceType: .encounter, patient: patientA, full: true))
        #expect(request.state == .pending)
        #expect(request.requestedBy == "alice")
        #expect(request.requestedAt == fixture.clock.nowMilliseconds())

        try await writer.startResync(id: id)
        fixture.clock.advance(milliseconds: 1_500)
        try await writer.updateResyncProgress(id: id, ResyncProgress(done: 40, total: 100, phase: "pulling Encounter from trust-a"))
        request = try #require(try await cli.resyncRequest(id: id))
        #expect(request.state == .running)
        #expect(request.progress == ResyncProgress(done: 40, total: 100, phase: "pulling Encounter from trust-a"))
        #expect(request.updatedAt == fixture.clock.nowMilliseconds())
        // Still listed while running: a daemon that stops mid-way picks it up again.
        #expect(try await writer.pendingResyncRequests().map(\.id) == [id, other])

        try await writer.finishResync(id: id, .completed(summary: "100 records read again"))
        request = try #require(try await cli.resyncRequest(id: id))
        #expect(request.state == .completed)
        #expect(request.outcome == "100 records read again")
        #expect(request.finishedAt == fixture.clock.nowMilliseconds())
        #expect(try await writer.pendingResyncRequests().map(\.id) == [other])

        // Finished means finished.
        #expect(await storeError { try await writer.finishResync(id: id, .failed(reason: "again")) }?.code == .invalidArgument)
        #expect(await storeError { try await writer.startResync(id: id) }?.code == .invalidArgument)
        #expect(await storeError { try await writer.updateResyncProgress(id: id, ResyncProgress(done: 1)) }?.code == .invalidArgument)
        // Progress on a request not started is refused.
        #expect(await storeError { try await writer.updateResyncProgress(id: other, ResyncProgress(done: 1)) }?.code == .invalidArgument)

        try await writer.finishResync(id: other, .failed(reason: "the hub refused the connection"))
        #expect(try await cli.resyncRequest(id: other)?.state == .failed)

        let audit = try await cli.audit(nhsNumber: nil, since: nil, limit: 100)
        let actions = audit.map { "\($0.event.actor) \($0.event.action)" }
        #expect(actions == ["alice resync-requested", "bob resync-requested", "caresync resync-completed", "caresync resync-failed"])
        #expect(audit[0].event.nhsNumber == patientA)
        #expect(audit[0].event.peer == "trust-a")
        #expect(!audit.map(\.event.detail).joined().contains(patientA.digits), "audit details never carry the NHS number")
        #expect(try await cli.verifyAuditChain() == .intact(entries: 4))
    }

    @Test("bad requests are refused and write nothing: an unknown peer or request, no requester, negative progress")
    func refused() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let writer = try await fixture.openWriter()
        defer { writer.close() }
        let reader = try SQLiteStateStore.open(directory: fixture.path, access: .reader, options: fixture.options())
        defer { reader.close() }

        #expect(
            await storeError {
                _ = try await writer.requestResync(peer: "nowhere", type: nil, patient: nil, full: false, requestedBy: "alice")
            }?.code == .notFound)
        #expect(
            await storeError { _ = try await writer.requestResync(peer: nil, type: nil, patient: nil, full: false, requestedBy: "") }?
                .code == .invalidArgument)
        #expect(await storeError { _ = try await reader.requestResync(peer: nil, type: nil, patient: nil, full: false, requestedBy: "a") }?.code == .readOnly)
        #expect(await storeError { try await writer.startResync(id: 99) }?.code == .notFound)
        #expect(await storeError { try await writer.finishResync(id: 99, .completed(summary: "")) }?.code == .notFound)
        #expect(try await reader.resyncRequest(id: 99) == nil)
        #expect(try await reader.pendingResyncRequests().isEmpty)

        let id = try await writer.requestResync(peer: nil, type: nil, patient: nil, full: false, requestedBy: "alice")
        try await writer.startResync(id: id)
        #expect(await storeError { try await writer.updateResyncProgress(id: id, ResyncProgress(done: -1)) }?.code == .invalidArgument)
        #expect(try await reader.audit(nhsNumber: nil, since: nil, limit: 10).count == 1)
    }

    @Test("a database from before resync requests is migrated by the writer; the CLI asks for that first")
    func migration() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        try await fixture.openWriter().close()
        let raw = try DatabaseQueue(path: fixture.databasePath)
        try await raw.write { db in
            try db.execute(sql: "DROP TABLE resync_request")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v2-resync-requests'")
        }
        try raw.close()

        #expect(await storeError { _ = try SQLiteStateStore.open(directory: fixture.path, access: .operator) }?.code == .schemaOutdated)
        let writer = try SQLiteStateStore.open(directory: fixture.path, access: .writer, options: fixture.options())
        defer { writer.close() }
        let id = try await writer.requestResync(peer: "hub", type: .carePlan, patient: nil, full: false, requestedBy: "alice")
        #expect(try await writer.resyncRequest(id: id)?.scope.peer == "hub")
    }
}
