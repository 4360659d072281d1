import FHIRJSON
import FHIRModel
import Foundation
import Testing

/// Fault injection (`--fault-rate`, `--faults`, `--fault-seed`, `/_admin/faults`) and `--clock-skew`.
@Suite("caresync-store faults and clock skew")
struct FaultTests {
    private static func setFaults(_ store: RunningStore, _ json: String) async throws -> JSON {
        let answer = try await store.client.send("POST", "/_admin/faults", headers: [("Content-Type", "application/json")], body: Array(json.utf8))
        try #require(answer.status == 200, "admin answered \(answer.status): \(answer.text)")
        return try answer.json()
    }

    /// Statuses of `count` sequential searches; `-1` where the connection closed without an answer.
    private static func statuses(_ store: RunningStore, count: Int) async throws -> [Int] {
        var statuses: [Int] = []
        for _ in 0..<count {
            do {
                statuses.append(try await store.get("CarePlan?_count=1").status)
            } catch is HTTPTestError {
                statuses.append(-1)
            }
        }
        return statuses
    }

    @Test("429 and 503 appear at the configured rate with Retry-After and an OperationOutcome; /metadata is never faulted")
    func rate() async throws {
        try await withStore(["--fault-rate", "0.3", "--faults", "429,503", "--fault-seed", "42", "--retry-after", "2"]) { store in
            var counts: [Int: Int] = [:]
            for _ in 0..<400 {
                let answer = try await store.get("CarePlan?_count=1")
                counts[answer.status, default: 0] += 1
                if answer.status == 429 || answer.status == 503 {
                    #expect(answer.header("Retry-After") == "2")
                    let outcome = try answer.json()
                    #expect(outcome["resourceType"] == "OperationOutcome")
                    #expect(outcome["issue"]?.arrayValue?.first?["code"]?.stringValue == (answer.status == 429 ? "throttled" : "transient"))
                }
            }
            let faulted = (counts[429] ?? 0) + (counts[503] ?? 0)
            #expect((80...160).contains(faulted), "expected about 120 of 400 faulted, got \(faulted)")
            #expect((counts[429] ?? 0) > 20 && (counts[503] ?? 0) > 20, "both kinds are drawn: \(counts)")
            #expect(counts[200] == 400 - faulted)
            for _ in 0..<50 { #expect(try await store.get("metadata").status == 200) }
            let state = try await store.client.send("GET", "/_admin/faults").json()
            #expect(state["eligibleRequests"] == 400)
            #expect(state["injected"]?["429"]?.numberValue?.intValue == counts[429])
            #expect(state["injected"]?["503"]?.numberValue?.intValue == counts[503])
        }
    }

    @Test("the same seed gives the same faults in the same order, from the command line and from /_admin/faults")
    func deterministic() async throws {
        let arguments = ["--fault-rate", "0.25", "--faults", "429,503,reset", "--fault-seed", "7"]
        let first = try await withStore(arguments) { store in try await Self.statuses(store, count: 120) }
        let (second, third) = try await withStore(arguments) { store in
            let second = try await Self.statuses(store, count: 120)
            _ = try await Self.setFaults(store, #"{"rate":0.25,"faults":["429","503","reset"],"seed":7}"#)
            return (second, try await Self.statuses(store, count: 120))
        }
        #expect(first == second)
        #expect(first == third)
        #expect(first.contains(-1) && first.contains(429) && first.contains(503) && first.contains(200))
    }

    @Test("drop-after-commit commits the write and closes the connection without an answer")
    func dropAfterCommit() async throws {
        try await withStore(["--fault-rate", "1", "--faults", "drop-after-commit"]) { store in
            await #expect(throws: HTTPTestError.self) {
                _ = try await store.post("CarePlan", Records.carePlan(identifier: "dropped"))
            }
            await #expect(throws: HTTPTestError.self) {
                _ = try await store.post("", try Records.carePlanTransaction(prefix: "dropped-tx", count: 5))
            }
            _ = try await Self.setFaults(store, #"{"rate":0}"#)
            let single = try await store.get("CarePlan?identifier=\(Records.carePlanSystem)|dropped").json()
            #expect(single["entry"]?.arrayValue?.count == 1, "the create committed although no answer came")
            let batch = try await store.get("CarePlan?identifier=\(Records.carePlanSystem)|dropped-tx-4").json()
            #expect(batch["entry"]?.arrayValue?.count == 1)
        }
    }

    @Test("reset closes the connection before doing anything")
    func reset() async throws {
        try await withStore(["--fault-rate", "1", "--faults", "reset"]) { store in
            await #expect(throws: HTTPTestError.self) {
                _ = try await store.post("CarePlan", Records.carePlan(identifier: "never-stored"))
            }
            #expect(try await store.get("metadata").status == 200)
            _ = try await Self.setFaults(store, #"{"rate":0,"faults":["reset"]}"#)
            let search = try await store.get("CarePlan?identifier=\(Records.carePlanSystem)|never-stored").json()
            #expect(search["entry"] == nil)
        }
    }

    @Test("slow delays the answer by at least the configured time and then answers")
    func slow() async throws {
        try await withStore(["--fault-rate", "1", "--faults", "slow", "--slow-delay", "0.3"]) { store in
            let started = ContinuousClock.now
            let answer = try await store.post("CarePlan", Records.carePlan(identifier: "slow"))
            #expect(answer.status == 201)
            #expect(ContinuousClock.now - started >= .milliseconds(300))
        }
    }

    @Test("/_admin/faults refuses unknown faults and rates outside 0...1")
    func adminValidation() async throws {
        try await withStore { store in
            let unknown = try await store.client.send("POST", "/_admin/faults", body: Array(#"{"rate":0.5,"faults":["teapot"]}"#.utf8))
            #expect(unknown.status == 400)
            let rate = try await store.client.send("POST", "/_admin/faults", body: Array(#"{"rate":2,"faults":["429"]}"#.utf8))
            #expect(rate.status == 400)
            #expect(try await store.client.send("DELETE", "/_admin/faults").status == 405)
        }
    }

    @Test("--clock-skew shifts every timestamp and Date header, in whole seconds shared by several versions")
    func clockSkew() async throws {
        try await withStore(["--clock-skew=-7200"]) { store in
            let expected = Date().addingTimeInterval(-7200)
            let answer = try await store.post("CarePlan", Records.carePlan(identifier: "skewed"))
            let stamp = try #require(try answer.json()["meta"]?["lastUpdated"]?.stringValue)
            #expect(!stamp.contains("."), "whole seconds: \(stamp)")
            let instant = try #require(FHIRInstant(stamp))
            #expect(abs(Double(instant.millisecondsSinceEpoch) / 1000 - expected.timeIntervalSince1970) < 300)
            let date = try #require(answer.header("Date").flatMap(Self.httpDate))
            #expect(abs(date.timeIntervalSince(expected)) < 300)
            let lastModified = try #require(answer.header("Last-Modified").flatMap(Self.httpDate))
            #expect(abs(lastModified.timeIntervalSince1970 - Double(instant.millisecondsSinceEpoch) / 1000) < 1)

            let search = try await store.get("CarePlan").json()
            let reported = try #require(search["meta"]?["lastUpdated"]?.stringValue.flatMap(FHIRInstant.init))
            #expect(abs(Double(reported.millisecondsSinceEpoch) / 1000 - expected.timeIntervalSince1970) < 300)

            try #require(try await store.post("", try Records.carePlanTransaction(prefix: "same-second", count: 20)).status == 200)
            let all = try await store.get("CarePlan?_count=100").json()
            let stamps = (all["entry"]?.arrayValue ?? []).compactMap { $0["resource"]?["meta"]?["lastUpdated"]?.stringValue }
            let shared = Dictionary(grouping: stamps, by: { $0 }).values.map(\.count).max() ?? 0
            #expect(shared >= 2, "several versions share one second")
            let newest = try #require(stamps.last)
            let inclusive = try await store.get("CarePlan?_lastUpdated=ge\(newest)&_summary=count").json()
            #expect(inclusive["total"]?.numberValue?.intValue == stamps.filter { $0 == newest }.count)
        }
    }

    private static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text)
    }
}
