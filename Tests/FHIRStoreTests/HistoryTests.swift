import FHIRJSON
import Testing

/// Type, instance and system `_history`.
@Suite("caresync-store history")
struct HistoryTests {
    @Test("type history: _since is inclusive, newest first, deletes included without a resource")
    func typeHistory() async throws {
        try await withStore { store in
            let first = try await store.create("CarePlan", Records.carePlan(identifier: "h1"))
            try await Task.sleep(for: .milliseconds(5))
            let second = try await store.create("CarePlan", Records.carePlan(identifier: "h2"))
            let secondID = second["id"]!.stringValue!
            var changed = second
            changed["status"] = "completed"
            try #require(try await store.put("CarePlan/\(secondID)", changed.text()).status == 200)
            try #require(try await store.delete("CarePlan/\(first["id"]!.stringValue!)").status == 204)
            _ = try await store.create("Patient", Records.patient(nhsNumber: Records.nhsNumber(4)))

            let since = second["meta"]!["lastUpdated"]!.stringValue!
            let answer = try await store.get("CarePlan/_history?_since=\(since)")
            #expect(answer.status == 200)
            let bundle = try answer.json()
            #expect(bundle["type"] == "history")
            #expect(bundle["meta"]?["lastUpdated"] != nil)
            let entries = try #require(bundle["entry"]?.arrayValue)
            let summary = entries.map { "\($0["request"]!["method"]!.stringValue!) \($0["response"]!["etag"]!.stringValue!)" }
            #expect(summary == ["DELETE W/\"2\"", "PUT W/\"2\"", "POST W/\"1\""], "newest first; the version stamped exactly _since is included")
            #expect(entries[0]["resource"] == nil)
            #expect(entries[0]["request"]?["url"]?.stringValue == "CarePlan/\(first["id"]!.stringValue!)")
            #expect(entries[0]["response"]?["status"] == "204 No Content")
            #expect(entries[1]["resource"]?["status"] == "completed")
            #expect(entries[2]["response"]?["status"] == "201 Created")

            let all = try await store.get("CarePlan/_history").json()
            #expect(all["entry"]?.arrayValue?.count == 4)
            let system = try await store.get("_history").json()
            #expect(system["entry"]?.arrayValue?.count == 5, "system history spans every type")
            #expect(try await store.get("CarePlan/_history?_at=2025").status == 400)
        }
    }

    @Test("instance history lists every version newest first and pages with _count; 404 for an unknown id")
    func instanceHistory() async throws {
        try await withStore { store in
            var resource = try await store.create("CarePlan", Records.carePlan(identifier: "hi"))
            let id = resource["id"]!.stringValue!
            for status in ["on-hold", "active", "completed"] {
                resource["status"] = .string(status)
                resource = try await store.put("CarePlan/\(id)", resource.text()).json()
            }
            let (entries, pages) = try await store.collectPages("CarePlan/\(id)/_history?_count=3")
            #expect(pages == 2)
            #expect(entries.compactMap { $0["resource"]?["meta"]?["versionId"]?.stringValue } == ["4", "3", "2", "1"])
            #expect(try await store.get("CarePlan/unknown/_history").status == 404)
        }
    }

    @Test("history paging newest first is not disturbed by writes between pages")
    func historyPagingUnderWrites() async throws {
        try await withStore { store in
            try #require(try await store.post("", try Records.carePlanTransaction(prefix: "hp", count: 30)).status == 200)
            var path: String? = "/fhir/CarePlan/_history?_count=7"
            var versions: [String] = []
            var written = 0
            while let current = path {
                let bundle = try await store.client.send("GET", current).json()
                versions += (bundle["entry"]?.arrayValue ?? []).compactMap { $0["resource"]?["id"]?.stringValue }
                path = try RunningStore.nextPath(bundle, port: store.port)
                _ = try await store.create("CarePlan", Records.carePlan(identifier: "hp-late-\(written)"))
                written += 1
            }
            #expect(versions.count == 30, "later writes are newer than the first page and never appear on later pages")
            #expect(Set(versions).count == 30)
        }
    }
}
