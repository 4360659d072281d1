import FHIRJSON
import Testing

/// Create, read, vread, update, delete and conditional create against a real caresync-store over HTTP.
@Suite("caresync-store interactions")
struct InteractionTests {
    @Test("create assigns the id and version 1 and answers 201 with Location, ETag, Last-Modified, Date")
    func create() async throws {
        try await withStore { store in
            let answer = try await store.post(
                "CarePlan",
                Records.carePlan(identifier: "cp-create", id: "client-chosen"),
                headers: [("X-Request-ID", "7a1d4c9e-1111-4222-8333-944455556666")]
            )
            #expect(answer.status == 201)
            let resource = try answer.json()
            let id = try #require(resource["id"]?.stringValue)
            #expect(id != "client-chosen", "the server ignores a client id on create")
            #expect(resource["meta"]?["versionId"] == "1")
            #expect(resource["meta"]?["lastUpdated"]?.stringValue != nil)
            #expect(answer.header("Location") == "http://127.0.0.1:\(store.port)/fhir/CarePlan/\(id)/_history/1")
            #expect(answer.header("ETag") == "W/\"1\"")
            #expect(answer.header("Last-Modified")?.hasSuffix(" GMT") == true)
            #expect(answer.header("Date")?.hasSuffix(" GMT") == true)
            #expect(answer.header("Content-Type") == "application/fhir+json; charset=utf-8")
            #expect(answer.header("X-Request-ID") == "7a1d4c9e-1111-4222-8333-944455556666")
            #expect(resource["identifier"]?.arrayValue?.first?["value"] == "cp-create")
        }
    }

    @Test("read answers the stored resource; 404 for an unknown id; vread answers each version")
    func readAndVread() async throws {
        try await withStore { store in
            let created = try await store.create("CarePlan", Records.carePlan(identifier: "cp-read"))
            let id = try #require(created["id"]?.stringValue)

            let read = try await store.get("CarePlan/\(id)")
            #expect(read.status == 200)
            #expect(try read.json() == created)
            #expect(read.header("ETag") == "W/\"1\"")
            #expect(read.header("Last-Modified") != nil)

            let unknown = try await store.get("CarePlan/no-such-plan")
            #expect(unknown.status == 404)
            #expect(try unknown.json()["resourceType"] == "OperationOutcome")

            var changed = created
            changed["status"] = "completed"
            let update = try await store.put("CarePlan/\(id)", changed.text(), headers: [("If-Match", "W/\"1\"")])
            #expect(update.status == 200)

            let first = try await store.get("CarePlan/\(id)/_history/1")
            #expect(first.status == 200)
            #expect(try first.json()["status"] == "active")
            let second = try await store.get("CarePlan/\(id)/_history/2")
            #expect(try second.json()["status"] == "completed")
            #expect(second.header("ETag") == "W/\"2\"")
            let missing = try await store.get("CarePlan/\(id)/_history/9")
            #expect(missing.status == 404)
            #expect(try missing.json()["resourceType"] == "OperationOutcome")
        }
    }

    @Test("update: If-Match match 200, stale If-Match 409, id mismatch 400, unknown id creates 201")
    func update() async throws {
        try await withStore { store in
            let created = try await store.create("CarePlan", Records.carePlan(identifier: "cp-update"))
            let id = try #require(created["id"]?.stringValue)
            var changed = created
            changed["status"] = "on-hold"

            let ok = try await store.put("CarePlan/\(id)", changed.text(), headers: [("If-Match", "W/\"1\"")])
            #expect(ok.status == 200)
            #expect(ok.header("ETag") == "W/\"2\"")
            #expect(try ok.json()["meta"]?["versionId"] == "2")

            let stale = try await store.put("CarePlan/\(id)", changed.text(), headers: [("If-Match", "W/\"1\"")])
            #expect(stale.status == 409)
            let outcome = try stale.json()
            #expect(outcome["resourceType"] == "OperationOutcome")
            #expect(outcome["issue"]?.arrayValue?.first?["code"] == "conflict")

            let malformed = try await store.put("CarePlan/\(id)", changed.text(), headers: [("If-Match", "version two")])
            #expect(malformed.status == 400)

            var otherID = changed
            otherID["id"] = "someone-else"
            let mismatch = try await store.put("CarePlan/\(id)", otherID.text())
            #expect(mismatch.status == 400)
            #expect(try mismatch.json()["issue"]?.arrayValue?.first?["expression"] == ["CarePlan.id"])

            var noID = changed
            noID["id"] = nil
            #expect(try await store.put("CarePlan/\(id)", noID.text()).status == 400)

            let createdByPut = try await store.put("CarePlan/chosen-by-client", Records.carePlan(identifier: "cp-put", id: "chosen-by-client"))
            #expect(createdByPut.status == 201)
            #expect(createdByPut.header("ETag") == "W/\"1\"")
            #expect(createdByPut.header("Location")?.hasSuffix("/fhir/CarePlan/chosen-by-client/_history/1") == true)
            #expect(try await store.get("CarePlan/chosen-by-client").status == 200)
        }
    }

    @Test("--version-conflict-status 412 answers a stale If-Match with 412")
    func conflictAs412() async throws {
        try await withStore(["--version-conflict-status", "412"]) { store in
            let created = try await store.create("Encounter", #"{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}}"#)
            let id = try #require(created["id"]?.stringValue)
            let stale = try await store.put("Encounter/\(id)", created.text(), headers: [("If-Match", "W/\"7\"")])
            #expect(stale.status == 412)
            #expect(try stale.json()["issue"]?.arrayValue?.first?["code"] == "conflict")
        }
    }

    @Test("--require-if-match answers 428 to an update without If-Match; creating by PUT needs none")
    func requireIfMatch() async throws {
        try await withStore(["--require-if-match"]) { store in
            let created = try await store.create("RelatedPerson", Records.relatedPerson(nhsNumber: Records.nhsNumber(1), patientID: "p1"))
            let id = try #require(created["id"]?.stringValue)
            let without = try await store.put("RelatedPerson/\(id)", created.text())
            #expect(without.status == 428)
            #expect(try without.json()["resourceType"] == "OperationOutcome")
            let with = try await store.put("RelatedPerson/\(id)", created.text(), headers: [("If-Match", "W/\"1\"")])
            #expect(with.status == 200)
            let fresh = try await store.put("Patient/new-patient", Records.patient(nhsNumber: Records.nhsNumber(2), id: "new-patient"))
            #expect(fresh.status == 201)
        }
    }

    @Test("conditional create: no match 201, one match 200 with the existing resource, several 412")
    func conditionalCreate() async throws {
        try await withStore { store in
            let condition = [("If-None-Exist", "identifier=\(Records.carePlanSystem)|cp-cond")]
            let first = try await store.post("CarePlan", Records.carePlan(identifier: "cp-cond"), headers: condition)
            #expect(first.status == 201)
            let id = try first.json()["id"]?.stringValue

            let again = try await store.post("CarePlan", Records.carePlan(identifier: "cp-cond", status: "revoked"), headers: condition)
            #expect(again.status == 200)
            #expect(try again.json()["id"]?.stringValue == id)
            #expect(try again.json()["status"] == "active", "the existing resource is returned unchanged")
            #expect(again.header("ETag") == "W/\"1\"")

            _ = try await store.create("CarePlan", Records.carePlan(identifier: "cp-dup"))
            _ = try await store.create("CarePlan", Records.carePlan(identifier: "cp-dup"))
            let ambiguous = try await store.post(
                "CarePlan",
                Records.carePlan(identifier: "cp-dup"),
                headers: [("If-None-Exist", "identifier=\(Records.carePlanSystem)|cp-dup")]
            )
            #expect(ambiguous.status == 412)
            #expect(try ambiguous.json()["issue"]?.arrayValue?.first?["code"] == "multiple-matches")
            let search = try await store.get("CarePlan?identifier=\(Records.carePlanSystem)|cp-dup")
            #expect(try search.json()["entry"]?.arrayValue?.count == 2, "the refused create wrote nothing")
        }
    }

    @Test("delete answers 204; later reads answer 410; the old version stays readable; history shows the delete")
    func delete() async throws {
        try await withStore { store in
            let created = try await store.create("CarePlan", Records.carePlan(identifier: "cp-delete"))
            let id = try #require(created["id"]?.stringValue)

            let deleted = try await store.delete("CarePlan/\(id)")
            #expect(deleted.status == 204)
            #expect(deleted.body.isEmpty)
            #expect(deleted.header("ETag") == "W/\"2\"")

            let gone = try await store.get("CarePlan/\(id)")
            #expect(gone.status == 410)
            #expect(try gone.json()["issue"]?.arrayValue?.first?["code"] == "deleted")
            #expect(try await store.get("CarePlan/\(id)/_history/2").status == 410)
            #expect(try await store.get("CarePlan/\(id)/_history/1").status == 200)
            #expect(try await store.delete("CarePlan/\(id)").status == 204, "deleting again is idempotent")
            #expect(try await store.delete("CarePlan/never-existed").status == 404)

            let search = try await store.get("CarePlan?identifier=\(Records.carePlanSystem)|cp-delete")
            #expect(try search.json()["entry"] == nil, "a deleted resource is not found by search")

            let history = try await store.get("CarePlan/\(id)/_history")
            #expect(history.status == 200)
            let entries = try #require(try history.json()["entry"]?.arrayValue)
            #expect(entries.count == 2)
            #expect(entries[0]["request"]?["method"] == "DELETE")
            #expect(entries[0]["resource"] == nil)
            #expect(entries[1]["request"]?["method"] == "POST")

            var revived = created
            revived["status"] = "draft"
            let recreate = try await store.put("CarePlan/\(id)", revived.text())
            #expect(recreate.status == 201)
            #expect(recreate.header("ETag") == "W/\"3\"")
        }
    }

    @Test("Prefer: return=minimal leaves out the body but keeps the headers")
    func preferMinimal() async throws {
        try await withStore { store in
            let answer = try await store.post("CarePlan", Records.carePlan(identifier: "cp-min"), headers: [("Prefer", "return=minimal")])
            #expect(answer.status == 201)
            #expect(answer.body.isEmpty)
            let location = try #require(answer.header("Location"))
            #expect(answer.header("ETag") == "W/\"1\"")
            let path = String(location.dropFirst("http://127.0.0.1:\(store.port)/fhir/".count))
            #expect(try await store.get(path).status == 200)
        }
    }

    @Test("Expect: 100-continue gets an interim 100 before the answer")
    func expectContinue() async throws {
        try await withStore { store in
            let answer = try await store.put(
                "Patient/expecting",
                Records.patient(nhsNumber: Records.nhsNumber(3), id: "expecting"),
                headers: [("Expect", "100-continue")]
            )
            #expect(answer.interim == [100])
            #expect(answer.status == 201)
        }
    }
}
