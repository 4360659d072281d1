import FHIRJSON
import FHIRModel
import Testing

/// `batch` and `transaction` Bundles POSTed to the FHIR base.
@Suite("caresync-store batch and transaction")
struct BundleTests {
    private static func count(_ store: RunningStore, _ query: String) async throws -> Int {
        try await store.get(query + (query.contains("?") ? "&" : "?") + "_summary=count").json()["total"]?.numberValue?.intValue ?? -1
    }

    /// A transaction: a Patient (conditional create, `urn:uuid` fullUrl), a CarePlan and a RelatedPerson
    /// (PUT `RelatedPerson/<contactID>`) that both reference the Patient by its `urn:uuid`.
    private static func patientTransaction(nhsNumber: String, contactID: String) throws -> JSON {
        let patientURN = "urn:uuid:3f1c2a5e-8d1b-4c47-9f0e-2b7d6a1c9e01"
        var contact = try JSON.parse(Records.relatedPerson(nhsNumber: nhsNumber, patientID: "unused"))
        contact["id"] = .string(contactID)
        contact["patient"] = ["reference": .string(patientURN)]
        return [
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                [
                    "fullUrl": .string(patientURN),
                    "resource": try JSON.parse(Records.patient(nhsNumber: nhsNumber)),
                    "request": ["method": "POST", "url": "Patient", "ifNoneExist": .string("identifier=\(NHSNumber.system)|\(nhsNumber)")],
                ],
                [
                    "fullUrl": "urn:uuid:9b8e1c3d-2f4a-4e6b-8c1d-7a5f3e2b1c04",
                    "resource": ["resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": ["reference": .string(patientURN)]],
                    "request": ["method": "POST", "url": "CarePlan"],
                ],
                ["resource": contact, "request": ["method": "PUT", "url": .string("RelatedPerson/\(contactID)")]],
            ],
        ]
    }

    @Test("a transaction rewrites urn:uuid references to the new ids; ifNoneExist reuses an existing resource")
    func transactionReferences() async throws {
        try await withStore { store in
            let number = Records.nhsNumber(20)
            let answer = try await store.post(
                "",
                try Self.patientTransaction(nhsNumber: number, contactID: "contact-1").text(),
                headers: [("Prefer", "return=representation")]
            )
            #expect(answer.status == 200)
            let response = try answer.json()
            #expect(response["type"] == "transaction-response")
            let entries = try #require(response["entry"]?.arrayValue)
            #expect(entries.map { $0["response"]?["status"]?.stringValue } == ["201 Created", "201 Created", "201 Created"])
            let patientLocation = try #require(entries[0]["response"]?["location"]?.stringValue)
            let patientID = String(patientLocation.split(separator: "/")[1])
            #expect(entries[1]["resource"]?["subject"]?["reference"]?.stringValue == "Patient/\(patientID)")
            #expect(entries[2]["resource"]?["patient"]?["reference"]?.stringValue == "Patient/\(patientID)")
            #expect(try await Self.count(store, "CarePlan?patient=Patient/\(patientID)") == 1)
            #expect(try await Self.count(store, "RelatedPerson?patient=Patient/\(patientID)") == 1)

            // The same Patient again: ifNoneExist finds it (200) and references resolve to the existing id.
            // Without Prefer, entries carry only their response.
            let again = try await store.post("", try Self.patientTransaction(nhsNumber: number, contactID: "contact-2").text())
            let againEntries = try #require(try again.json()["entry"]?.arrayValue)
            #expect(againEntries[0]["response"]?["status"] == "200 OK")
            #expect(againEntries[0]["response"]?["location"]?.stringValue?.hasPrefix("Patient/\(patientID)/") == true)
            #expect(againEntries.allSatisfy { $0["resource"] == nil && $0["response"]?["etag"] != nil })
            let carePlanLocation = try #require(againEntries[1]["response"]?["location"]?.stringValue)
            let carePlan = try await store.get(carePlanLocation).json()
            #expect(carePlan["subject"]?["reference"]?.stringValue == "Patient/\(patientID)")
            #expect(try await Self.count(store, "Patient") == 1)
            #expect(try await Self.count(store, "CarePlan?patient=Patient/\(patientID)") == 2)
        }
    }

    @Test("a transaction with one failing entry changes nothing and names the entry")
    func transactionAtomic() async throws {
        try await withStore { store in
            let existing = try await store.create("CarePlan", Records.carePlan(identifier: "tx-existing"))
            let id = existing["id"]!.stringValue!
            var stale = existing
            stale["status"] = "completed"
            let bundle: JSON = [
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    ["resource": try JSON.parse(Records.carePlan(identifier: "tx-new-1")), "request": ["method": "POST", "url": "CarePlan"]],
                    ["resource": try JSON.parse(Records.carePlan(identifier: "tx-new-2")), "request": ["method": "POST", "url": "CarePlan"]],
                    ["resource": stale, "request": ["method": "PUT", "url": .string("CarePlan/\(id)"), "ifMatch": "W/\"5\""]],
                ],
            ]
            let historyBefore = try await store.get("_history").json()["entry"]?.arrayValue?.count
            let answer = try await store.post("", bundle.text())
            #expect(answer.status == 409)
            let issue = try #require(try answer.json()["issue"]?.arrayValue?.first)
            #expect(issue["code"] == "conflict")
            #expect(issue["diagnostics"]?.stringValue?.hasPrefix("Bundle.entry[2] (PUT CarePlan/\(id))") == true)
            #expect(try await Self.count(store, "CarePlan") == 1, "the two creates were rolled back")
            #expect(try await store.get("CarePlan/\(id)").json()["status"] == "active")
            #expect(try await store.get("_history").json()["entry"]?.arrayValue?.count == historyBefore)

            // An invalid resource fails the transaction with 422 naming the entry's element.
            var invalid = bundle
            invalid["entry"] = [
                ["resource": try JSON.parse(Records.carePlan(identifier: "tx-new-3")), "request": ["method": "POST", "url": "CarePlan"]],
                ["resource": ["resourceType": "Encounter", "status": "planned"], "request": ["method": "POST", "url": "CarePlan"]],
            ]
            let refused = try await store.post("", invalid.text())
            #expect(refused.status == 422)
            #expect(try refused.json()["issue"]?.arrayValue?.first?["expression"] == ["Bundle.entry[1].resource.resourceType"])
            #expect(try await Self.count(store, "CarePlan") == 1)

            // A reference to a urn:uuid no entry declares fails it too.
            var dangling = bundle
            dangling["entry"] = [
                [
                    "resource": ["resourceType": "CarePlan", "status": "active", "intent": "plan", "subject": ["reference": "urn:uuid:0d7c8a4e-0000-4000-8000-000000000000"]],
                    "request": ["method": "POST", "url": "CarePlan"],
                ]
            ]
            #expect(try await store.post("", dangling.text()).status == 400)
            #expect(try await Self.count(store, "CarePlan") == 1)
        }
    }

    @Test("batch entries are independent, each with its own status and OperationOutcome")
    func batch() async throws {
        try await withStore { store in
            let existing = try await store.create("CarePlan", Records.carePlan(identifier: "batch-existing"))
            let id = existing["id"]!.stringValue!
            let bundle: JSON = [
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    ["resource": try JSON.parse(Records.carePlan(identifier: "batch-new")), "request": ["method": "POST", "url": "CarePlan"]],
                    ["request": ["method": "GET", "url": "CarePlan/does-not-exist"]],
                    ["resource": existing, "request": ["method": "PUT", "url": .string("CarePlan/\(id)"), "ifMatch": "W/\"3\""]],
                    ["request": ["method": "GET", "url": .string("CarePlan?identifier=\(Records.carePlanSystem)|batch-existing")]],
                    ["request": ["method": "DELETE", "url": .string("CarePlan/\(id)")]],
                ],
            ]
            let answer = try await store.post("", bundle.text())
            #expect(answer.status == 200)
            let response = try answer.json()
            #expect(response["type"] == "batch-response")
            let entries = try #require(response["entry"]?.arrayValue)
            #expect(entries.map { $0["response"]?["status"]?.stringValue } == ["201 Created", "404 Not Found", "409 Conflict", "200 OK", "204 No Content"])
            #expect(entries[1]["response"]?["outcome"]?["resourceType"] == "OperationOutcome")
            #expect(entries[3]["resource"]?["resourceType"] == "Bundle")
            #expect(try await Self.count(store, "CarePlan?identifier=batch-new") == 1)
            #expect(try await store.get("CarePlan/\(id)").status == 410)
        }
    }

    @Test("a Bundle that is not batch or transaction is refused; a transaction changes a resource once")
    func refusedBundles() async throws {
        try await withStore { store in
            let collection = try await store.post("", #"{"resourceType":"Bundle","type":"collection"}"#)
            #expect(collection.status == 422)
            let twice: JSON = [
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    ["resource": try JSON.parse(Records.patient(nhsNumber: Records.nhsNumber(5), id: "p")), "request": ["method": "PUT", "url": "Patient/p"]],
                    ["request": ["method": "DELETE", "url": "Patient/p"]],
                ],
            ]
            let duplicate = try await store.post("", twice.text())
            #expect(duplicate.status == 400)
            #expect(try duplicate.json()["issue"]?.arrayValue?.first?["code"] == "duplicate")
            #expect(try await store.get("Patient/p").status == 404)
        }
    }
}
