import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import GRDB
import StateStore
import Testing

@Suite("caresync audit")
struct AuditCommandTests {
    @Test("the newest entries oldest first, by patient and since a time; --json matches the schema")
    func listing() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let all = try await caresync(["audit", "--state-dir", fixture.stateDirectory])
        #expect(all.status == 0, "\(all.errors)")
        #expect(all.output[0].hasPrefix("SEQ  TIME"))
        #expect(all.output.count == 3)
        #expect(all.output[1].contains("push-dead-lettered  trust-a  CarePlan cp-3  *******870  HTTP 422: "), "\(all.output)")
        #expect(all.output[2].contains("merge-conflict"))

        let patient = try await caresync(["audit", "--patient", patientA.digits, "--state-dir", fixture.stateDirectory])
        #expect(patient.output.count == 2)
        #expect(patient.output[1].contains("merge-conflict"))

        let last = try await caresync(["audit", "--limit", "1", "--state-dir", fixture.stateDirectory])
        #expect(last.output.count == 3)
        #expect(last.output[1].contains("merge-conflict"), "the newest one")
        #expect(last.output[2] == "(the newest 1 shown; --limit or --since for others)")

        // The dead letter was written 90 minutes ago, the conflict 60: `--since 75m` keeps the conflict only.
        let recent = try await caresync(["audit", "--since", "75m", "--json", "--state-dir", fixture.stateDirectory])
        #expect(recent.status == 0)
        try await expectValid(recent.text, schema: "audit.schema.json")
        let entries = try #require(try parseJSON(recent.text)["entries"]?.arrayValue)
        #expect(entries.compactMap { $0["action"]?.stringValue } == ["merge-conflict"])
        #expect(entries[0]["patient"] == "*******919")

        let future = try await caresync(["audit", "--since", "2999-01-01", "--state-dir", fixture.stateDirectory])
        #expect(future.output == ["no audit entries match"])
        let instant = try await caresync(["audit", "--since", "2000-01-01T00:00:00Z", "--state-dir", fixture.stateDirectory])
        #expect(instant.output.count == 3)
    }

    @Test("verify: intact exits 0 with the count; an edited entry exits 1 naming it")
    func verify() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let intact = try await caresync(["audit", "verify", "--state-dir", fixture.stateDirectory])
        #expect(intact.status == 0)
        #expect(intact.output.first?.hasPrefix("audit chain intact: 2 entries; newest 2 hash ") == true, "\(intact.output)")
        let intactJSON = try await caresync(["audit", "verify", "--json", "--state-dir", fixture.stateDirectory])
        try await expectValid(intactJSON.text, schema: "audit-verify.schema.json")

        // Someone edits entry 1 behind caresync's back (dropping the append-only trigger first).
        let database = try DatabaseQueue(path: fixture.stateDirectory + "/" + SQLiteStateStore.databaseFileName)
        try await database.write { db in
            try db.execute(sql: "DROP TRIGGER audit_append_only_update")
            try db.execute(sql: "UPDATE audit SET detail = 'nothing to see' WHERE seq = 1")
        }
        try database.close()

        let broken = try await caresync(["audit", "verify", "--state-dir", fixture.stateDirectory])
        #expect(broken.status == 1)
        #expect(broken.output[0] == "audit chain BROKEN at entry 1: its content does not match its hash (edited)")
        #expect(broken.output[1].contains("push-dead-lettered nothing to see"))
        let brokenJSON = try await caresync(["audit", "verify", "--json", "--state-dir", fixture.stateDirectory])
        #expect(brokenJSON.status == 1)
        try await expectValid(brokenJSON.text, schema: "audit-verify.schema.json")
        #expect(try parseJSON(brokenJSON.text)["brokenAt"] == 1)
    }

    @Test("bad input: a malformed time or NHS number: one line, exit 2")
    func badInput() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let time = try await caresync(["audit", "--since", "yesterday", "--state-dir", fixture.stateDirectory])
        #expect(time.status == 2)
        #expect(time.errors.count == 1)
        #expect(time.errors.first?.hasPrefix("caresync audit: --since yesterday: not a time") == true, "\(time.errors)")
        let patient = try await caresync(["audit", "--patient", "9434765918", "--state-dir", fixture.stateDirectory])
        #expect(patient.status == 2)
        let missing = try await caresync(["audit", "verify", "--state-dir", fixture.directory.path("none").path])
        #expect(missing.status == 2)
    }
}
