import CaresyncTestSupport
import FHIRJSON
import Foundation
import Testing

/// What the store emits, checked by an independent R4 implementation; bad requests; start and stop.
@Suite("caresync-store conformance and lifecycle")
struct ConformanceTests {
    @Test("metadata is a CapabilityStatement for FHIR 4.0.1 naming the supported types")
    func metadata() async throws {
        try await withStore { store in
            let answer = try await store.get("metadata")
            #expect(answer.status == 200)
            #expect(answer.header("Date") != nil)
            let statement = try answer.json()
            #expect(statement["resourceType"] == "CapabilityStatement")
            #expect(statement["fhirVersion"] == "4.0.1")
            let types = statement["rest"]?.arrayValue?.first?["resource"]?.arrayValue?.compactMap { $0["type"]?.stringValue }
            #expect(types == ["CarePlan", "Encounter", "Patient", "RelatedPerson"])
            #expect(statement["implementation"]?["url"]?.stringValue == "http://127.0.0.1:\(store.port)/fhir")
        }
    }

    @Test("the JSON the store emits passes the fhirclient R4 models (strict)")
    func independentR4Check() async throws {
        let documents = try await withStore { store in
            var documents: [(name: String, bytes: [UInt8])] = []
            let created = try await store.post("CarePlan", Records.carePlan(identifier: "r4", patientID: "p1"))
            documents.append(("created-careplan", created.body))
            let id = try created.json()["id"]!.stringValue!
            var changed = try created.json()
            changed["status"] = "completed"
            documents.append(("updated-careplan", try await store.put("CarePlan/\(id)", changed.text()).body))
            let patient = try await store.post("Patient", Records.patient(nhsNumber: Records.nhsNumber(30)))
            documents.append(("created-patient", patient.body))
            let contact = try await store.post("RelatedPerson", Records.relatedPerson(nhsNumber: Records.nhsNumber(30), patientID: "p1"))
            documents.append(("created-relatedperson", contact.body))
            let encounter = try await store.post(
                "Encounter",
                #"{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/p1"}}"#
            )
            documents.append(("created-encounter", encounter.body))
            documents.append(("search-bundle", try await store.get("CarePlan?patient=Patient/p1&_total=accurate").body))
            documents.append(("count-bundle", try await store.get("CarePlan?_summary=count").body))
            try #require(try await store.delete("CarePlan/\(id)").status == 204)
            documents.append(("history-with-delete", try await store.get("CarePlan/_history").body))
            documents.append(("instance-history", try await store.get("CarePlan/\(id)/_history").body))
            documents.append(("not-found-outcome", try await store.get("CarePlan/nope").body))
            documents.append(("gone-outcome", try await store.get("CarePlan/\(id)").body))
            documents.append(("invalid-outcome", try await store.post("CarePlan", #"{"resourceType":"CarePlan","id":"not valid!"}"#).body))
            documents.append(("metadata", try await store.get("metadata").body))
            documents.append(("transaction-response", try await store.post("", try Records.carePlanTransaction(prefix: "r4tx", count: 3)).body))
            let batch: JSON = [
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [["request": ["method": "GET", "url": "CarePlan/missing"]], ["request": ["method": "GET", "url": "Patient"]]],
            ]
            documents.append(("batch-response", try await store.post("", batch.text()).body))
            return documents
        }
        let result = try await R4Checker.check(documents)
        #expect(result.status == 0, "fhirclient refused:\n\(result.lines.joined(separator: "\n"))")
        #expect(result.lines.filter { $0.hasPrefix("ok ") }.count == documents.count)
    }

    @Test("the R4 check can fail: a resource with an unknown element is refused")
    func checkerRefusesBadJSON() async throws {
        let bad = Array(#"{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/1"},"colour":"blue"}"#.utf8)
        let result = try await R4Checker.check([("bad-careplan", bad)])
        #expect(result.status == 1)
        #expect(result.lines.contains { $0.hasPrefix("invalid ") && $0.contains("colour") })
    }

    @Test("bad requests: 400 unparseable, 400 not an object, 422 invalid, 415, 406, 405, 404 routes and types — all with an OperationOutcome")
    func badRequests() async throws {
        try await withStore { store in
            func expectOutcome(_ answer: HTTPAnswer, _ status: Int, expression: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
                #expect(answer.status == status, "\(answer.text)", sourceLocation: sourceLocation)
                let outcome = try answer.json()
                #expect(outcome["resourceType"] == "OperationOutcome", sourceLocation: sourceLocation)
                #expect(outcome["issue"]?.arrayValue?.first?["diagnostics"]?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
                if let expression {
                    let expressions = outcome["issue"]?.arrayValue?.flatMap { $0["expression"]?.arrayValue ?? [] }
                    #expect(expressions?.contains(.string(expression)) == true, "\(outcome.text())", sourceLocation: sourceLocation)
                }
            }
            try expectOutcome(try await store.post("CarePlan", #"{"resourceType":"CarePlan","status":"#), 400)
            try expectOutcome(try await store.post("CarePlan", #"{"resourceType":"CarePlan","id":"a","id":"b"}"#), 400)
            try expectOutcome(try await store.post("CarePlan", #"["CarePlan"]"#), 400)
            try expectOutcome(try await store.post("CarePlan", #"{"resourceType":"Encounter","status":"planned"}"#), 422, expression: "resourceType")
            try expectOutcome(try await store.post("CarePlan", #"{"status":"active"}"#), 422, expression: "resourceType")
            try expectOutcome(try await store.post("CarePlan", #"{"resourceType":"CarePlan","id":"has space"}"#), 422, expression: "CarePlan.id")
            try expectOutcome(try await store.post("CarePlan", #"{"resourceType":"CarePlan","meta":"v1"}"#), 422, expression: "CarePlan.meta")
            try expectOutcome(
                try await store.client.send("POST", "/fhir/CarePlan", headers: [("Content-Type", "application/xml")], body: Array("<CarePlan/>".utf8)),
                415
            )
            try expectOutcome(try await store.get("CarePlan", headers: [("Accept", "application/fhir+xml")]), 406)
            try expectOutcome(try await store.client.send("PATCH", "/fhir/CarePlan/x"), 405)
            try expectOutcome(try await store.get("Observation"), 404)
            try expectOutcome(try await store.get("CarePlan/a/b/c/d/e"), 404)
            try expectOutcome(try await store.client.send("GET", "/nowhere"), 404)
            try expectOutcome(try await store.get("CarePlan/bad!id"), 400)
        }
    }

    @Test("R4 validation: a resource breaking an R4 rule is refused with 422 naming the element; --validation minimal stores it")
    func r4Validation() async throws {
        let missingStatus = #"{"resourceType":"CarePlan","intent":"plan","subject":{"reference":"Patient/1"}}"#
        let unknownElement = #"{"resourceType":"Encounter","status":"planned","class":{"code":"AMB"},"colour":"blue"}"#
        try await withStore { store in
            let refused = try await store.post("CarePlan", missingStatus)
            #expect(refused.status == 422, "\(refused.text)")
            let expressions = try refused.json()["issue"]?.arrayValue?.flatMap { $0["expression"]?.arrayValue ?? [] }
            #expect(expressions?.contains("CarePlan.status") == true, "\(refused.text)")
            let unknown = try await store.post("Encounter", unknownElement)
            #expect(unknown.status == 422)
        }
        try await withStore(["--validation", "minimal"]) { store in
            let stored = try await store.post("CarePlan", missingStatus)
            #expect(stored.status == 201)
            let storedUnknown = try await store.post("Encounter", unknownElement)
            #expect(storedUnknown.status == 201)
        }
    }

    @Test("SIGTERM stops the store cleanly; a restart on the same file keeps every version and continues numbering")
    func restart() async throws {
        let directory = try TemporaryDirectory(prefix: "caresync-store-restart")
        defer { directory.remove() }
        let first = try await RunningStore([], directory: directory)
        let created = try await first.create("CarePlan", Records.carePlan(identifier: "durable"))
        let id = created["id"]!.stringValue!
        let stamp = try #require(created["meta"]?["lastUpdated"]?.stringValue)
        #expect(try await first.stop() == 0)

        let second = try await RunningStore([], directory: directory)
        let read = try await second.get("CarePlan/\(id)")
        #expect(read.status == 200)
        #expect(try read.json() == created)
        var changed = created
        changed["status"] = "completed"
        let update = try await second.put("CarePlan/\(id)", changed.text(), headers: [("If-Match", "W/\"1\"")])
        #expect(update.header("ETag") == "W/\"2\"")
        let newStamp = try #require(try update.json()["meta"]?["lastUpdated"]?.stringValue)
        #expect(newStamp >= stamp)
        second.process.send(SIGINT)
        #expect(try await second.process.waitForExit() == 0)
    }
}
