import CaresyncTestSupport
import FHIRModel
import Foundation
import GRDB
import StateStore
import Testing

@Suite("Audit hash chain")
struct AuditChainTests {
    /// A store with five audit entries, closed; returns the fixture.
    func storeWithFiveEntries() async throws -> StoreFixture {
        let fixture = try StoreFixture()
        let store = try await fixture.openWriter()
        for index in 1...5 {
            try await store.appendAudit([
                AuditEvent(actor: "caresync", action: "merged", peer: "trust-a", recordKey: key("cp-\(index)"), nhsNumber: patientA, detail: "entry \(index)")
            ])
        }
        #expect(try await store.verifyAuditChain() == .intact(entries: 5))
        store.close()
        return fixture
    }

    /// Edits the file behind the store's back, as someone with the file could (triggers dropped first).
    func tamper(_ fixture: StoreFixture, _ sql: String) throws {
        let raw = try DatabaseQueue(path: fixture.databasePath)
        try raw.writeWithoutTransaction { db in
            try db.execute(sql: "DROP TRIGGER IF EXISTS audit_append_only_update; DROP TRIGGER IF EXISTS audit_append_only_delete")
            try db.execute(sql: sql)
        }
        try raw.close()
    }

    @Test("the log refuses updates and deletes through SQL")
    func appendOnly() async throws {
        let fixture = try await storeWithFiveEntries()
        defer { fixture.directory.remove() }
        let raw = try DatabaseQueue(path: fixture.databasePath)
        #expect(throws: DatabaseError.self) { try raw.write { try $0.execute(sql: "UPDATE audit SET detail = 'x' WHERE seq = 2") } }
        #expect(throws: DatabaseError.self) { try raw.write { try $0.execute(sql: "DELETE FROM audit WHERE seq = 2") } }
        try raw.close()
    }

    @Test("an edited entry is found")
    func editedRow() async throws {
        let fixture = try await storeWithFiveEntries()
        defer { fixture.directory.remove() }
        try tamper(fixture, "UPDATE audit SET detail = 'nothing to see' WHERE seq = 3")
        let store = try SQLiteStateStore.open(directory: fixture.path, access: .reader, options: fixture.options())
        defer { store.close() }
        guard case .broken(let sequence, let reason) = try await store.verifyAuditChain() else {
            Issue.record("the edit was not detected")
            return
        }
        #expect(sequence == 3)
        #expect(reason.contains("edited"))
    }

    @Test("an edited entry whose hash was recomputed breaks the next link")
    func rehashedRow() async throws {
        let fixture = try await storeWithFiveEntries()
        defer { fixture.directory.remove() }
        try tamper(fixture, "UPDATE audit SET hash = zeroblob(32) WHERE seq = 2")
        let store = try SQLiteStateStore.open(directory: fixture.path, access: .reader, options: fixture.options())
        defer { store.close() }
        let result = try await store.verifyAuditChain()
        #expect(result != .intact(entries: 5))
        if case .broken(let sequence, _) = result { #expect(sequence == 2) }
    }

    @Test("a deleted entry is found at the entry after it; a deleted first entry too")
    func deletedRow() async throws {
        let fixture = try await storeWithFiveEntries()
        defer { fixture.directory.remove() }
        try tamper(fixture, "DELETE FROM audit WHERE seq = 4")
        let store = try SQLiteStateStore.open(directory: fixture.path, access: .reader, options: fixture.options())
        guard case .broken(let sequence, _) = try await store.verifyAuditChain() else {
            Issue.record("the deletion was not detected")
            return
        }
        #expect(sequence == 5)
        store.close()

        try tamper(fixture, "DELETE FROM audit WHERE seq = 1")
        let again = try SQLiteStateStore.open(directory: fixture.path, access: .reader, options: fixture.options())
        defer { again.close() }
        guard case .broken(let first, _) = try await again.verifyAuditChain() else {
            Issue.record("the deletion of the first entry was not detected")
            return
        }
        #expect(first == 2)
    }

    @Test("the chain continues across reopening and across writer and operator processes' connections")
    func chainAcrossOpens() async throws {
        let fixture = try await storeWithFiveEntries()
        defer { fixture.directory.remove() }
        let writer = try await fixture.openWriter()
        defer { writer.close() }
        let operatorStore = try SQLiteStateStore.open(directory: fixture.path, access: .operator, options: fixture.options())
        defer { operatorStore.close() }
        for index in 0..<10 {
            let store = index.isMultiple(of: 2) ? writer : operatorStore
            try await store.appendAudit([AuditEvent(actor: "alice", action: "note", detail: "\(index)")])
        }
        #expect(try await writer.verifyAuditChain() == .intact(entries: 15))
        let entries = try await operatorStore.audit(nhsNumber: nil, since: nil, limit: 100)
        #expect(entries.map(\.sequence) == Array(1...15))
        #expect(Set(entries.map(\.hash)).count == 15)
    }
}
