import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import Testing

@Suite("caresync queue")
struct QueueCommandTests {
    @Test("the queue of one peer or all: depth, oldest age, aligned items with tries and last error")
    func listing() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let all = try await caresync(["queue", "--state-dir", fixture.stateDirectory])
        #expect(all.status == 0, "\(all.errors)")
        #expect(all.output[0].hasPrefix("all peers: 3 queued, oldest waiting "), "\(all.output)")
        #expect(all.output[1].hasPrefix("ID  PEER     RECORD         PATIENT     OP      TRIES  AGE"), "\(all.output)")
        #expect(all.output.count == 5)
        let failed = try #require(all.output.first { $0.contains("CarePlan/cp-1") })
        #expect(failed.contains("*******919"))
        #expect(failed.contains("HTTP 503: Service Unavailable"))
        #expect(failed.contains(" in 1h29m ") || failed.contains(" in 1h30m "), "the retry is three hours after the failure: \(failed)")
        #expect(!all.text.contains(patientA.digits), "NHS numbers are masked")

        let hub = try await caresync(["queue", "--peer", "hub", "--state-dir", fixture.stateDirectory, "--limit", "1"])
        #expect(hub.status == 0)
        #expect(hub.output[0].hasPrefix("hub: 2 queued (showing 1), oldest waiting "), "\(hub.output)")
        #expect(hub.output.count == 3)

        let json = try await caresync(["queue", "--peer", "trust-a", "--json", "--state-dir", fixture.stateDirectory])
        #expect(json.status == 0)
        try await expectValid(json.text, schema: "queue.schema.json")
        let document = try parseJSON(json.text)
        #expect(document["dead"] == false)
        #expect(document["depth"] == 1)
        #expect(document["items"]?.arrayValue?.first?["localId"] == "cp-4")
        #expect(document["items"]?.arrayValue?.first?["patient"] == "*******870")
    }

    @Test("--dead lists the dead letters with status and reason; --json matches the schema")
    func deadLetters() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let ids = try await fixture.fillTroubled()

        let text = try await caresync(["queue", "--dead", "--state-dir", fixture.stateDirectory])
        #expect(text.status == 0)
        #expect(text.output[0] == "all peers: 1 dead letter; retry with: caresync queue retry ID… (or --all-dead) after fixing the cause")
        let row = try #require(text.output.dropFirst(2).first)
        #expect(row.hasPrefix(" \(ids.deadLetter)  trust-a  CarePlan/cp-3  *******870  update  422"), "\(row)")
        #expect(row.hasSuffix("CarePlan.activity[0].detail.kind: unknown code 'Appointmentx'"))

        let json = try await caresync(["queue", "--dead", "--json", "--state-dir", fixture.stateDirectory])
        try await expectValid(json.text, schema: "queue.schema.json")
        let item = try #require(try parseJSON(json.text)["items"]?.arrayValue?.first)
        #expect(item["httpStatus"] == 422)
        #expect(item["id"] == JSON.number(JSONNumber(Int(ids.deadLetter))))

        let none = try await caresync(["queue", "--dead", "--peer", "hub", "--state-dir", fixture.stateDirectory])
        #expect(none.output == ["hub: no dead letters"])
    }

    @Test("retry puts a dead letter back with its request id, audited with the OS user and reason")
    func retry() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let ids = try await fixture.fillTroubled()
        let before = try await fixture.openReader().deadLetters(peer: nil)

        let result = try await caresync(
            ["queue", "retry", String(ids.deadLetter), "--reason", "code fixed at trust-a", "--state-dir", fixture.stateDirectory])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.first?.hasPrefix("queued again as item ") == true, "\(result.output)")
        #expect(result.output.first?.contains(before[0].requestID) == true, "the same request id")
        let user = ProcessInfo.processInfo.userName
        #expect(result.output.last == "1 dead letter queued again; audited as \(user)", "\(result.output)")

        let reader = try fixture.openReader()
        defer { reader.close() }
        #expect(try await reader.deadLetters(peer: nil).isEmpty)
        #expect(try await reader.queue(peer: "trust-a", limit: 10).items.contains { $0.requestID == before[0].requestID })
        let audit = try await reader.audit(nhsNumber: nil, since: nil, limit: 100)
        let entry = try #require(audit.last)
        #expect(entry.event.action == "dead-letter-retried")
        #expect(entry.event.actor == user)
        #expect(entry.event.detail.hasSuffix("code fixed at trust-a"))

        let again = try await caresync(["queue", "retry", "--all-dead", "--state-dir", fixture.stateDirectory])
        #expect(again.status == 0)
        #expect(again.output == ["no dead letters to retry"])
    }

    @Test("bad input: an unknown peer or id, ids with --all-dead, neither: one line, exit 2, nothing retried")
    func badInput() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        let ids = try await fixture.fillTroubled()

        let peer = try await caresync(["queue", "--peer", "trust-z", "--state-dir", fixture.stateDirectory])
        #expect(peer.status == 2)
        #expect(peer.errors == ["caresync queue: no peer named 'trust-z' (known peers: hub, trust-a, trust-b)"])

        let unknown = try await caresync(["queue", "retry", String(ids.deadLetter), "999", "--state-dir", fixture.stateDirectory])
        #expect(unknown.status == 2)
        #expect(unknown.errors == ["caresync queue retry: no dead letter 999"])
        #expect(try await fixture.openReader().deadLetters(peer: nil).count == 1, "all or nothing")

        let both = try await caresync(["queue", "retry", "1", "--all-dead", "--state-dir", fixture.stateDirectory])
        #expect(both.status == 2)
        #expect(both.errors.first?.contains("give dead letter ids or --all-dead") == true, "\(both.errors)")
        let neither = try await caresync(["queue", "retry", "--state-dir", fixture.stateDirectory])
        #expect(neither.status == 2)
        let notNumber = try await caresync(["queue", "retry", "seven", "--state-dir", fixture.stateDirectory])
        #expect(notNumber.status == 2)
    }
}
