import FHIRJSON
import FHIRModel
import Testing

/// Search parameters, paging and the strict handling of unknown parameters.
@Suite("caresync-store search")
struct SearchTests {
    private static func ids(_ bundle: JSON) -> [String] {
        (bundle["entry"]?.arrayValue ?? []).compactMap { $0["resource"]?["id"]?.stringValue }
    }

    @Test("patient and subject by reference and by NHS number; identifier; RelatedPerson.patient")
    func byPatientAndIdentifier() async throws {
        try await withStore { store in
            let alice = Records.nhsNumber(10)
            let bob = Records.nhsNumber(11)
            let a1 = try await store.create("CarePlan", Records.carePlan(identifier: "a1", nhsNumber: alice, patientID: "alice"))
            let a2 = try await store.create("CarePlan", Records.carePlan(identifier: "a2", nhsNumber: alice, patientID: "alice"))
            let b1 = try await store.create("CarePlan", Records.carePlan(identifier: "b1", nhsNumber: bob, patientID: "bob"))
            // A conditional reference names the patient by NHS number only.
            let conditional = try await store.create(
                "Encounter",
                #"{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient?identifier=\#(NHSNumber.system)|\#(bob)"}}"#
            )
            let contact = try await store.create("RelatedPerson", Records.relatedPerson(nhsNumber: alice, patientID: "alice"))
            let aliceIDs = Set([a1, a2].compactMap { $0["id"]?.stringValue })

            for query in ["patient=Patient/alice", "patient=alice", "subject=Patient/alice", "subject=alice",
                          "patient:identifier=\(NHSNumber.system)|\(alice)", "subject:identifier=\(NHSNumber.system)|\(alice)"]
            {
                let answer = try await store.get("CarePlan?\(query)")
                #expect(answer.status == 200, "\(query)")
                #expect(Set(Self.ids(try answer.json())) == aliceIDs, "\(query)")
            }
            let byIdentifier = try await store.get("CarePlan?identifier=\(Records.carePlanSystem)|b1")
            #expect(Self.ids(try byIdentifier.json()) == [b1["id"]!.stringValue!])
            let anySystem = try await store.get("CarePlan?identifier=b1")
            #expect(Self.ids(try anySystem.json()) == [b1["id"]!.stringValue!])
            let wrongSystem = try await store.get("CarePlan?identifier=urn:other|b1")
            #expect(Self.ids(try wrongSystem.json()).isEmpty)
            let either = try await store.get("CarePlan?identifier=\(Records.carePlanSystem)|a1,\(Records.carePlanSystem)|b1")
            #expect(Self.ids(try either.json()).count == 2)
            let both = try await store.get("CarePlan?patient=alice&identifier=b1")
            #expect(Self.ids(try both.json()).isEmpty, "repeated parameters are ANDed")
            let byID = try await store.get("CarePlan?_id=\(a1["id"]!.stringValue!)")
            #expect(Self.ids(try byID.json()) == [a1["id"]!.stringValue!])

            let encounter = try await store.get("Encounter?patient:identifier=\(NHSNumber.system)|\(bob)")
            #expect(Self.ids(try encounter.json()) == [conditional["id"]!.stringValue!])
            let contacts = try await store.get("RelatedPerson?patient=Patient/alice")
            #expect(Self.ids(try contacts.json()) == [contact["id"]!.stringValue!])
            let contactsByNumber = try await store.get("RelatedPerson?patient:identifier=\(NHSNumber.system)|\(alice)")
            #expect(Self.ids(try contactsByNumber.json()) == [contact["id"]!.stringValue!])
        }
    }

    @Test("_lastUpdated with gt, ge, lt, le (repeatable), _sort both ways, _summary=count, _total")
    func lastUpdatedAndSort() async throws {
        try await withStore { store in
            var stamps: [(id: String, lastUpdated: String)] = []
            for index in 0..<6 {
                let created = try await store.create("CarePlan", Records.carePlan(identifier: "t\(index)"))
                stamps.append((created["id"]!.stringValue!, created["meta"]!["lastUpdated"]!.stringValue!))
                try await Task.sleep(for: .milliseconds(5))  // distinct millisecond stamps
            }
            let third = stamps[2].lastUpdated
            let ge = Self.ids(try await store.get("CarePlan?_lastUpdated=ge\(third)").json())
            #expect(ge == stamps[2...].map(\.id), "ge is inclusive, default order oldest first")
            let gt = Self.ids(try await store.get("CarePlan?_lastUpdated=gt\(third)").json())
            #expect(gt == stamps[3...].map(\.id))
            let lt = Self.ids(try await store.get("CarePlan?_lastUpdated=lt\(third)").json())
            #expect(lt == stamps[..<2].map(\.id))
            let le = Self.ids(try await store.get("CarePlan?_lastUpdated=le\(third)").json())
            #expect(le == stamps[...2].map(\.id))
            let range = Self.ids(try await store.get("CarePlan?_lastUpdated=ge\(stamps[1].lastUpdated)&_lastUpdated=lt\(stamps[4].lastUpdated)").json())
            #expect(range == stamps[1..<4].map(\.id))
            let year = String(third.prefix(4))
            #expect(Self.ids(try await store.get("CarePlan?_lastUpdated=\(year)").json()).count == 6, "a year covers its whole span")

            let ascending = Self.ids(try await store.get("CarePlan?_sort=_lastUpdated").json())
            #expect(ascending == stamps.map(\.id))
            let descending = Self.ids(try await store.get("CarePlan?_sort=-_lastUpdated").json())
            #expect(descending == stamps.reversed().map(\.id))

            let count = try await store.get("CarePlan?_summary=count").json()
            #expect(count["total"] == 6)
            #expect(count["entry"] == nil)
            let total = try await store.get("CarePlan?_total=accurate&_count=2").json()
            #expect(total["total"] == 6)
            #expect(Self.ids(total).count == 2)

            let badDate = try await store.get("CarePlan?_lastUpdated=ge2025-13-01")
            #expect(badDate.status == 400)
            let badPrefix = try await store.get("CarePlan?_lastUpdated=ap2025")
            #expect(badPrefix.status == 400)
            #expect(try await store.get("CarePlan?_count=-1").status == 400)
        }
    }

    @Test("the search Bundle reports the server time; meta.lastUpdated is not before any entry")
    func bundleTime() async throws {
        try await withStore { store in
            let created = try await store.create("CarePlan", Records.carePlan(identifier: "time"))
            let answer = try await store.get("CarePlan")
            let bundle = try answer.json()
            let reported = try #require(bundle["meta"]?["lastUpdated"]?.stringValue.flatMap(FHIRInstant.init))
            let stored = try #require(created["meta"]?["lastUpdated"]?.stringValue.flatMap(FHIRInstant.init))
            #expect(reported >= stored)
            #expect(bundle["type"] == "searchset")
            #expect(answer.header("Date") != nil)
            #expect(bundle["link"]?.arrayValue?.first?["relation"] == "self")
        }
    }

    @Test("unknown parameters: 400 OperationOutcome, ignored with Prefer: handling=lenient")
    func strictAndLenient() async throws {
        try await withStore { store in
            _ = try await store.create("CarePlan", Records.carePlan(identifier: "strict"))
            let strict = try await store.get("CarePlan?status=active")
            #expect(strict.status == 400)
            let issue = try strict.json()["issue"]?.arrayValue?.first
            #expect(issue?["code"] == "not-supported")
            #expect(issue?["expression"] == ["status"])
            let lenient = try await store.get("CarePlan?status=active", headers: [("Prefer", "handling=lenient")])
            #expect(lenient.status == 200)
            let bundle = try lenient.json()
            #expect(Self.ids(bundle).count == 1)
            let selfLink = bundle["link"]?.arrayValue?.first?["url"]?.stringValue
            #expect(selfLink == "http://127.0.0.1:\(store.port)/fhir/CarePlan", "the self link shows only the parameters used")
            #expect(try await store.get("CarePlan?_sort=status").status == 400)
            #expect(try await store.get("RelatedPerson?subject=Patient/x").status == 400, "RelatedPerson has no subject parameter")
        }
    }

    @Test("_count pages through next links on the request's host; a larger _count is capped")
    func paging() async throws {
        try await withStore { store in
            let answer = try await store.post("", try Records.carePlanTransaction(prefix: "page", count: 25))
            try #require(answer.status == 200)
            let (entries, pages) = try await store.collectPages("CarePlan?_count=10")
            #expect(pages == 3)
            #expect(Set(entries.compactMap { $0["resource"]?["id"]?.stringValue }).count == 25)
            #expect(entries.allSatisfy { $0["fullUrl"]?.stringValue?.hasPrefix("http://127.0.0.1:\(store.port)/fhir/CarePlan/") == true })
            let descending = try await store.collectPages("CarePlan?_count=10&_sort=-_lastUpdated")
            #expect(descending.entries.compactMap { $0["resource"]?["id"]?.stringValue } == entries.reversed().compactMap { $0["resource"]?["id"]?.stringValue })
            // Links repeat the search's parameters percent-encoded (`|` as %7C) and still select the same records.
            let byNumber = "CarePlan?patient:identifier=\(NHSNumber.system)|\(Records.nhsNumber(0))&_count=10"
            let first = try await store.get(byNumber).json()
            let next = try #require(try RunningStore.nextPath(first, port: store.port))
            #expect(next.contains("patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C"))
            #expect(try await store.collectPages(byNumber).entries.count == 25)
            let capped = try await store.get("CarePlan?_count=5000").json()
            #expect(Self.ids(capped).count == 25)
        }
    }

    /// Updates each of `originals` and creates one new care plan after each update.
    private static func updateAndCreate(_ store: RunningStore, updating originals: [JSON]) async throws {
        for (index, original) in originals.enumerated() {
            try await update(store, original)
            _ = try await store.create("CarePlan", Records.carePlan(identifier: "during-\(index)"))
        }
    }

    /// Puts `original` (version 1) back with another status, as version 2.
    private static func update(_ store: RunningStore, _ original: JSON) async throws {
        var changed = original
        changed["status"] = "on-hold"
        let id = try #require(original["id"]?.stringValue)
        let update = try await store.put("CarePlan/\(id)", changed.text(), headers: [("If-Match", "W/\"1\"")])
        try #require(update.status == 200)
    }

    @Test("paging 1,000 records while another task writes returns each version at most once and every untouched record exactly once")
    func stablePagingUnderWrites() async throws {
        try await withStore { store in
            for batch in 0..<10 {
                let answer = try await store.post("", try Records.carePlanTransaction(prefix: "stable\(batch)", count: 100))
                try #require(answer.status == 200)
            }
            let before = try await store.collectPages("CarePlan?_count=1000")
            let originals = before.entries.compactMap { $0["resource"] }
            try #require(originals.count == 1000)

            // Another task creates records and updates every tenth original while the reader pages. Between
            // pages the reader itself also updates, from a second set, one record it has already seen and one
            // it has not reached yet, so both cases happen whatever the timing.
            let concurrentIDs = Set(originals.enumerated().filter { $0.offset % 10 == 3 }.compactMap { $0.element["id"]?.stringValue })
            var pendingIDs = originals.enumerated().filter { $0.offset % 10 == 7 }.compactMap { $0.element["id"]?.stringValue }
            let byID = Dictionary(uniqueKeysWithValues: originals.map { ($0["id"]!.stringValue!, $0) })
            async let writing: Void = Self.updateAndCreate(store, updating: originals.filter { concurrentIDs.contains($0["id"]!.stringValue!) })

            var seen: [String: [String]] = [:]
            var duplicateVersions: [String] = []
            var updatedAfterSeen: [String] = []
            var updatedBeforeSeen: [String] = []
            var path: String? = "/fhir/CarePlan?_count=37&_sort=_lastUpdated"
            var pages = 0
            while let current = path {
                let answer = try await store.client.send("GET", current)
                try #require(answer.status == 200)
                let bundle = try answer.json()
                for entry in bundle["entry"]?.arrayValue ?? [] {
                    let id = entry["resource"]!["id"]!.stringValue!
                    let version = entry["resource"]!["meta"]!["versionId"]!.stringValue!
                    if seen[id]?.contains(version) == true { duplicateVersions.append("\(id)/\(version)") }
                    seen[id, default: []].append(version)
                }
                pages += 1
                path = try RunningStore.nextPath(bundle, port: store.port)
                guard path != nil else { break }
                if let index = pendingIDs.firstIndex(where: { seen[$0] != nil }) {
                    let id = pendingIDs.remove(at: index)
                    try await Self.update(store, byID[id]!)
                    updatedAfterSeen.append(id)
                }
                if let index = pendingIDs.lastIndex(where: { seen[$0] == nil }) {
                    let id = pendingIDs.remove(at: index)
                    try await Self.update(store, byID[id]!)
                    updatedBeforeSeen.append(id)
                }
            }
            try await writing
            #expect(duplicateVersions.isEmpty, "versions returned twice: \(duplicateVersions.prefix(5))")
            #expect(updatedAfterSeen.count > 10 && updatedBeforeSeen.count > 10)
            for id in updatedAfterSeen {
                #expect(seen[id] == ["1", "2"], "a record updated after its page comes again, newly versioned: \(id) \(seen[id] ?? [])")
            }
            for id in updatedBeforeSeen {
                #expect(seen[id] == ["2"], "a record updated before its page comes once, in its new version: \(id) \(seen[id] ?? [])")
            }
            let changed = concurrentIDs.union(updatedAfterSeen).union(updatedBeforeSeen)
            for original in originals {
                let id = original["id"]!.stringValue!
                if concurrentIDs.contains(id) {
                    #expect((1...2).contains(seen[id]?.count ?? 0), "\(id) seen \(seen[id] ?? [])")
                } else if !changed.contains(id) {
                    #expect(seen[id] == ["1"], "untouched record \(id) seen \(seen[id] ?? [])")
                }
            }
            #expect(pages > 27)
        }
    }
}
