import CaresyncHTTP
import CaresyncTestSupport
import FHIRClient
import FHIRJSON
import FHIRModel
import Foundation
import Testing

/// The FHIR client against a real `caresync-store` (and a stand-in that answers badly on purpose).
@Suite("FHIR client")
struct FHIRClientTests {
    @Test("writes: conditional create (201, then 200 for the same identifier), If-Match update, 409 with the OperationOutcome text")
    func writes() async throws {
        let cluster = try await Cluster(providers: [])
        let client = try cluster.client("hub")
        let capabilities = try await client.requireR4()
        #expect(capabilities.fhirVersion == "4.0.1")

        let patient = Records.patients(1)[0]
        let plan = Records.carePlan("trust-a", "CP-1", patient: patient)
        let condition = "identifier=" + FHIRClient.percentEncode(Records.carePlanSystem("trust-a") + "|CP-1")
        let created = try await client.create(.carePlan, body: plan.serialized(), ifNoneExist: condition, requestID: RequestIdentifier.make())
        #expect(created.status == 201)
        #expect(created.versionID == "1")
        let again = try await client.create(.carePlan, body: plan.serialized(), ifNoneExist: condition, requestID: RequestIdentifier.make())
        #expect(again.status == 200)
        #expect(again.localID == created.localID)

        var changed = plan
        changed["id"] = .string(created.localID)
        changed["description"] = "Changed."
        let updated = try await client.update(
            .carePlan, id: created.localID, body: changed.serialized(), ifMatchVersion: "1", requestID: RequestIdentifier.make())
        #expect(updated.versionID == "2")
        do {
            _ = try await client.update(
                .carePlan, id: created.localID, body: changed.serialized(), ifMatchVersion: "1", requestID: RequestIdentifier.make())
            Issue.record("a stale If-Match was accepted")
        } catch {
            #expect(error.code == .httpStatus)
            #expect(error.status == 409)
            #expect(error.outcome?.isEmpty == false)
            #expect(!error.isRetriable)
        }
        let read = try #require(try await client.read(.carePlan, id: created.localID))
        #expect(read.versionID == "2")
        #expect(try await client.read(.carePlan, id: "no-such-id") == nil)
    }

    @Test("a transaction is all or nothing; a batch answers per entry")
    func bundles() async throws {
        let cluster = try await Cluster(providers: [])
        let client = try cluster.client("hub")
        let patient = Records.patients(1)[0]
        func entry(_ value: String, ifMatch: String? = nil, id: String? = nil) -> BatchEntry {
            var plan = Records.carePlan("trust-a", value, patient: patient)
            if let id { plan["id"] = .string(id) }
            return BatchEntry(
                requestID: RequestIdentifier.make(), method: id == nil ? .post : .put, resourceType: .carePlan, localID: id,
                ifMatchVersion: ifMatch, ifNoneExist: nil, body: plan.serialized())
        }
        let first = try await client.transaction([entry("T-1"), entry("T-2")], requestID: RequestIdentifier.make())
        #expect(first.map(\.status) == [201, 201])
        let id = try #require(first[0].localID)
        do {
            _ = try await client.transaction([entry("T-3"), entry("T-1", ifMatch: "7", id: id)], requestID: RequestIdentifier.make())
            Issue.record("a transaction with a stale If-Match was accepted")
        } catch {
            #expect(error.status == 409)
        }
        #expect(try await cluster.record("hub", .carePlan, Records.carePlanSystem("trust-a") + "|T-3") == nil, "nothing of it was written")
        let batch = try await client.batch([entry("T-3"), entry("T-1", ifMatch: "7", id: id)], requestID: RequestIdentifier.make())
        #expect(batch.map(\.status) == [201, 409])
        #expect(batch[1].outcome?.isEmpty == false)
    }

    @Test("paging follows next links exactly; raw pages keep each resource as received")
    func paging() async throws {
        let cluster = try await Cluster(providers: [])
        let patients = Records.patients(7)
        for (index, patient) in patients.enumerated() {
            try await cluster.create("hub", Records.carePlan("trust-a", "P-\(index)", patient: patient))
        }
        let client = try cluster.client("hub")
        var page = try await client.searchPage(.carePlan, [("_count", "3"), ("_sort", "_lastUpdated")])
        var seen: [String] = []
        var pages = 1
        while true {
            for resource in page.resources {
                #expect(resource.resourceType == "CarePlan")
                #expect(resource.versionID == "1")
                let parsed = try JSON.parse(resource.bytes)
                #expect(parsed["id"]?.stringValue == resource.id)
                seen.append(try #require(resource.id))
            }
            #expect(page.serverTime != nil)
            guard let next = page.next else { break }
            page = try await client.nextPage(next)
            pages += 1
        }
        #expect(pages == 3)
        #expect(Set(seen).count == 7)
    }

    @Test("bad answers are refused with a clear error: a next link to another host or outside the base, HTML, an entry without a resource")
    func badAnswers() async throws {
        try await withOddPeer { client, server in
            try await client.requireR4()
            for type in [ResourceType.carePlan, .relatedPerson] {
                do throws(FHIRClientError) {
                    _ = try await client.searchPage(type, [])
                    Issue.record("a foreign next link was accepted for \(type.rawValue)")
                } catch {
                    #expect(error.code == .foreignLink)
                    #expect(error.message.contains("outside the peer's base"))
                }
                do throws(FHIRClientError) {
                    _ = try await client.search(type, [])
                    Issue.record("a foreign next link was accepted for \(type.rawValue)")
                } catch {
                    #expect(error.code == .foreignLink)
                }
            }
            do throws(FHIRClientError) {
                _ = try await client.searchPage(.encounter, [])
                Issue.record("HTML was accepted as a Bundle")
            } catch {
                #expect(error.code == .malformedResponse)
                #expect(error.message.contains("Content-Type"))
            }
            do throws(FHIRClientError) {
                _ = try await client.searchPage(.patient, [])
                Issue.record("an entry without a resource was accepted")
            } catch {
                #expect(error.code == .malformedResponse)
            }
            #expect(server.requests.allSatisfy { !$0.contains("page=2") }, "no foreign link was followed")
        }
    }

    @Test("a search page is read wherever its members stand: each resource's exact bytes and identity fields; a page cut short is refused")
    func awkwardPages() async throws {
        try await withOddPeer { client, _ in
            let page = try await client.searchPage(.patient, [("shape", "awkward")])
            #expect(page.resources.map(\.id) == ["pt-1", "pt-2"])
            #expect(page.resources.map(\.versionID) == ["7", "1"])
            #expect(page.resources.map(\.lastUpdated) == ["2025-04-01T09:30:00Z", "2025-04-01T09:30:01Z"])
            #expect(page.resources.map(\.resourceType) == ["Patient", "Patient"])
            #expect(page.serverTime == FHIRInstant("2025-04-01T09:30:02Z"))
            #expect(page.next == nil)
            let first = try JSON.parse(page.resources[0].bytes)
            #expect(first["text"]?["div"]?.stringValue == #"<div>say "}]{[" brackets \</div>"#)
            #expect(first["extension"]?.arrayValue?.count == 2)
            #expect(page.resources[0].bytes.first == UInt8(ascii: "{") && page.resources[0].bytes.last == UInt8(ascii: "}"))
            do throws(FHIRClientError) {
                _ = try await client.searchPage(.patient, [("shape", "truncated")])
                Issue.record("a page cut off inside a string was accepted")
            } catch {
                #expect(error.code == .malformedResponse)
                #expect(error.message.contains("unterminated"))
            }
        }
    }

    @Test("a peer that cannot be reached is a retriable transport error")
    func unreachable() async throws {
        let http = HTTPClient()
        defer { http.shutdown() }
        let client = try FHIRClient(endpoint: FHIREndpoint(name: "gone", baseURL: "http://127.0.0.1:1/fhir"), http: http)
        do {
            try await client.requireR4()
            Issue.record("reached a closed port")
        } catch {
            #expect(error.code == .transport)
            #expect(error.isRetriable)
        }
    }

    /// Runs `body` with a client of the stand-in that answers badly on purpose (`odd_peer.py`), and the
    /// stand-in itself (it records the requests it saw).
    private func withOddPeer(_ body: (FHIRClient, FakeR5Server) async throws -> Void) async throws {
        let server = try await FakeR5Server(script: "odd_peer.py")
        defer { server.stop() }
        let http = HTTPClient()
        defer { http.shutdown() }
        try await body(try FHIRClient(endpoint: FHIREndpoint(name: "odd", baseURL: server.baseURL), http: http), server)
    }
}
