import CaresyncHTTP
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import SyncEngine
import Testing

/// A hub push that landed but whose answer never came back (the connection dropped after the commit, or
/// the daemon was killed before recording it) must still fan out: found by the reliability suite's
/// kill -9 scenario, where providers sharing a patient missed each other's records.
@Suite("lost push answers")
struct LostAnswerTests {
    @Test("a hub push whose answer was lost after the commit still fans out to the providers holding the patient")
    func landedPushWithLostAnswerFansOut() async throws {
        let cluster = try await Cluster()
        let patient = Records.patients(1, offset: 900)[0]
        // Both providers hold the patient, each with a record of its own.
        try await cluster.create("trust-a", Records.carePlan("trust-a", "CP-LOST-A", patient: patient))
        try await cluster.create("trust-b", Records.encounter("trust-b", "ENC-LOST-B", patient: patient))

        let (engine, store) = try await cluster.engine()
        defer { store.close() }
        await engine.pull(peerNamed: "trust-a")
        await engine.pull(peerNamed: "trust-b")
        try await engine.mergePending()
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 2)

        // Every hub request is carried out and then its connection reset: the creates land, no answer comes.
        try await setHubFaults(cluster, rate: 1)
        await engine.drain(peerNamed: "hub")
        try await setHubFaults(cluster, rate: 0)
        #expect(try await cluster.record("hub", .carePlan, Records.carePlanSystem("trust-a") + "|CP-LOST-A") != nil, "the create landed")

        try await engine.syncUntilQuiescent()
        // Each provider received the other's record of the patient, once.
        #expect(try await cluster.record("trust-b", .carePlan, Records.carePlanSystem("trust-a") + "|CP-LOST-A") != nil)
        #expect(try await cluster.record("trust-a", .encounter, "https://trust-b.example.nhs.uk/Id/encounter|ENC-LOST-B") != nil)
        #expect(try await store.queue(peer: nil, limit: 1).depth == 0)
        try await cluster.expectConverged()
    }

    func setHubFaults(_ cluster: Cluster, rate: Int) async throws {
        let body = #"{"rate":\#(rate),"faults":["drop-after-commit"],"seed":1}"#
        let response = try await cluster.http.send(
            .init(method: .post, url: "http://127.0.0.1:\(cluster.hub.port)/_admin/faults", headers: ["Content-Type": "application/json"], body: Array(body.utf8)))
        #expect(response.status == 200)
    }
}
