import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import Synchronization
import Testing

@Suite("caresync status")
struct StatusCommandTests {
    @Test("healthy peers: one aligned line each, a health line, exit 0")
    func healthy() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()

        let result = try await caresync(["status", "--state-dir", fixture.stateDirectory])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.count == 5, "\(result.output)")
        #expect(result.output[0].hasPrefix("PEER     ROLE      STATE  LAG  CURSOR"))
        #expect(result.output[1].hasPrefix("hub      hub       idle   -    2025-06-15T09:30:00Z"))
        #expect(result.output[2].hasPrefix("trust-a  provider  idle"))
        #expect(result.output.last == "health: ok — 3 peers, 0 queued, no dead letters, no open conflicts")
        // Columns line up: every row has its STATE cell where the header has it.
        let column = try #require(result.output[0].range(of: "STATE")).lowerBound.utf16Offset(in: result.output[0])
        for line in result.output[1...3] {
            #expect(line.dropFirst(column).hasPrefix("idle"), "\(line)")
        }
        #expect(!result.text.contains("\u{1B}["), "no colour when piped")
    }

    @Test("dead letters, an open conflict, an unreachable peer and a stale queue: each named, exit 1")
    func attention() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let result = try await caresync(["status", "--state-dir", fixture.stateDirectory])
        #expect(result.status == 1, "\(result.errors)")
        let text = result.text
        let hubLine = try #require(result.output.first { $0.hasPrefix("hub ") })
        #expect(hubLine.contains("  idle "))
        #expect(hubLine.contains(" 2 "), "two queued for the hub: \(hubLine)")
        #expect(hubLine.contains(" 2h ") || hubLine.contains(" 1h59m ") || hubLine.contains(" 2h01m "), "\(hubLine)")
        let trustA = try #require(result.output.first { $0.hasPrefix("trust-a ") })
        #expect(trustA.contains("backing off  5m  "), "the lag the engine measured: \(trustA)")
        #expect(trustA.contains("2025-06-14T08:00:00Z"), "the earliest cursor: \(trustA)")
        let trustB = try #require(result.output.first { $0.hasPrefix("trust-b ") })
        #expect(trustB.contains("unreachable"))
        #expect(text.contains("  trust-b: unreachable: cannot connect: Connection refused"))
        #expect(text.contains("health: attention needed — 5 problems:"), "\(text)")
        #expect(text.contains("  trust-a: 1 dead letter (caresync queue --dead --peer trust-a)"))
        #expect(text.contains("  trust-a: 1 open conflict (caresync conflicts list)"))
        #expect(text.contains("  trust-b: unreachable: cannot connect: Connection refused (caresync peers probe trust-b)"))
        #expect(text.contains("  hub: the oldest queued push has waited "), "\(text)")
        #expect(text.contains("(limit 15m) (caresync queue --peer hub)"), "\(text)")
        #expect(!text.contains(patientA.digits) && !text.contains(patientB.digits))

        // A longer limit: the stale queues are no longer a problem, the rest still is.
        let relaxed = try await caresync(["status", "--state-dir", fixture.stateDirectory, "--max-queue-age", "1d"])
        #expect(relaxed.status == 1)
        #expect(relaxed.text.contains("health: attention needed — 3 problems:"), "\(relaxed.text)")
    }

    @Test("--json: the shape of Schemas/cli/status.schema.json, checked by Python jsonschema")
    func json() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let result = try await caresync(["status", "--state-dir", fixture.stateDirectory, "--json"])
        #expect(result.status == 1)
        try await expectValid(result.text, schema: "status.schema.json")
        let document = try parseJSON(result.text)
        #expect(document["healthy"] == false)
        let peers = try #require(document["peers"]?.arrayValue)
        #expect(peers.compactMap { $0["name"]?.stringValue } == ["hub", "trust-a", "trust-b"])
        #expect(peers[1]["state"] == "backing-off")
        #expect(peers[1]["deadLetters"] == 1)
        #expect(peers[1]["openConflicts"] == 1)
        #expect(peers[1]["queueDepth"] == 1)
        #expect(peers[2]["state"] == "unreachable")
        #expect(peers[1]["lagSeconds"] == JSON.number(JSONNumber("300.000")!))
        #expect(peers[0]["lagSeconds"] == .null, "the hub's lag is not measured")
        #expect(peers[1]["cursors"]?.arrayValue?.count == 2)
        let codes = document["attention"]?.arrayValue?.compactMap { $0["code"]?.stringValue } ?? []
        #expect(codes.sorted() == ["dead-letters", "open-conflicts", "queue-stale", "queue-stale", "unreachable"])

        let healthy = try StateFixture()
        defer { healthy.directory.remove() }
        try await healthy.fillHealthy()
        let ok = try await caresync(["status", "--state-dir", healthy.stateDirectory, "--json"])
        #expect(ok.status == 0)
        try await expectValid(ok.text, schema: "status.schema.json")
    }

    @Test("colour on a terminal, none with NO_COLOR")
    func colour() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillTroubled()

        let coloured = try await Helper.onTerminal(["status", "--state-dir", fixture.stateDirectory])
        #expect(coloured.status == 1)
        #expect(coloured.text.contains("\u{1B}[31munreachable\u{1B}[0m"), "\(coloured.text)")
        #expect(coloured.text.contains("\u{1B}[31mhealth: attention needed\u{1B}[0m"))

        let plain = try await Helper.onTerminal(["status", "--state-dir", fixture.stateDirectory], environment: ["NO_COLOR": "1"])
        #expect(plain.status == 1)
        #expect(!plain.text.contains("\u{1B}["), "\(plain.text)")
        #expect(plain.text.contains("unreachable"))
    }

    @Test("bad input: no state directory, no database, a bad option value: one line, exit 2")
    func badInput() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }

        let missing = try await caresync(["status", "--state-dir", fixture.directory.path("nowhere").path])
        #expect(missing.status == 2)
        #expect(missing.errors == ["caresync status: no state directory at \(fixture.directory.path("nowhere").path) (give --state-dir, or check state.path in /etc/caresync/caresync.yaml)"])

        let empty = try await caresync(["status", "--state-dir", fixture.directory.url.path])
        #expect(empty.status == 2)
        #expect(empty.errors.count == 1)
        #expect(empty.errors.first?.hasPrefix("caresync status: no state database in \(fixture.directory.url.path)") == true, "\(empty.errors)")

        let noConfig = try await caresync(["status", "--config", fixture.directory.path("absent.yaml").path])
        #expect(noConfig.status == 2)
        #expect(noConfig.errors.first?.contains("--state-dir is not given and the configuration") == true, "\(noConfig.errors)")

        let badAge = try await caresync(["status", "--state-dir", fixture.directory.url.path, "--max-queue-age", "soon"])
        #expect(badAge.status == 2)
    }

    @Test("without --state-dir the state directory comes from state.path, even when secrets cannot be read")
    func stateFromConfiguration() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        // The bearer token names a systemd credential: outside systemd the full load fails, status still works.
        let config = fixture.directory.path("caresync.yaml")
        try """
            state:
              path: state
            hub:
              name: hub
              ods: QWE
              baseURL: https://hub.example.nhs.uk/fhir
              auth: {type: bearer, tokenFile: "credential:hub-token"}
            providers:
              - name: trust-a
                ods: RX1
                baseURL: https://fhir.trust-a.example.nhs.uk/R4
                mode: read-write
                auth: {type: none}
            """.write(to: config, atomically: true, encoding: .utf8)
        let result = try await caresync(["status", "--config", config.path])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.last?.hasPrefix("health: ok") == true)
    }

    @Test("status reads while a writer process commits (reader access, no lock)")
    func whileWriting() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        let writer = try await fixture.openWriter()
        defer { writer.close() }
        // The writer holds the lock and keeps committing while status runs several times.
        let stop = Mutex(false)
        let writing = Task {
            var count = 0
            while !stop.withLock({ $0 }) {
                _ = try await writer.enqueue([StateFixture.push("w-\(count)", to: "hub", patient: patientA)])
                count += 1
            }
            return count
        }
        var depths: [Int] = []
        for _ in 0..<5 {
            let result = try await caresync(["status", "--state-dir", fixture.stateDirectory, "--json"])
            #expect(result.errors.isEmpty, "\(result.errors)")
            let hub = try parseJSON(result.text)["peers"]?.arrayValue?.first
            depths.append(hub?["queueDepth"]?.numberValue.flatMap { Int($0.text) } ?? -1)
        }
        stop.withLock { $0 = true }
        let written = try await writing.value
        #expect(depths == depths.sorted(), "depths only grow: \(depths)")
        #expect(depths.allSatisfy { $0 >= 0 && $0 <= written })
        #expect(written > 0)
    }
}
