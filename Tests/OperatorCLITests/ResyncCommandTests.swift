import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import GRDB
import StateStore
import Testing

/// `caresync resync` against the real `caresync daemon` (woken with SIGUSR1) and, with no daemon, run
/// in-process through the engine, on three `caresync-store` children.
@Suite("caresync resync")
struct ResyncCommandTests {
    @Test("wakes the running daemon, records who asked, and --wait follows it to completion in lines")
    func wakesAndWaits() async throws {
        let cluster = try await LiveCluster()
        try await cluster.createCarePlan(at: "trust-a", "cp-1")
        try await cluster.startDaemon()
        let daemon = try #require(cluster.daemon)

        let result = try await cluster.run(["resync", "--peer", "trust-a", "--type", "CarePlan", "--patient", patientA.digits, "--full", "--wait"])
        #expect(result.status == 0, "\(result.output) \(result.errors)")
        #expect(result.output.first == "resync request 1 recorded; daemon (pid \(daemon.pid)) woken", "\(result.output)")
        #expect(result.output.dropFirst().dropLast().allSatisfy { $0.hasPrefix("resync 1: ") }, "periodic lines: \(result.output)")
        #expect(result.output.last?.hasPrefix("resync 1 completed in ") == true, "\(result.output)")
        #expect(result.output.last?.contains(" new version(s) read, ") == true)
        #expect(!result.text.contains("\r"), "no progress bar when piped")

        let reader = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
        defer { reader.close() }
        let request = try #require(try await reader.resyncRequest(id: 1))
        #expect(request.scope == ResyncScope(peer: "trust-a", resourceType: .carePlan, patient: patientA, full: true))
        #expect(request.requestedBy == ProcessInfo.processInfo.userName)
        let audit = try await reader.audit(nhsNumber: patientA, since: nil, limit: 100).filter { $0.event.action.hasPrefix("resync-") }
        #expect(audit.map(\.event.action) == ["resync-requested", "resync-completed"])
        #expect(audit.first?.event.actor == ProcessInfo.processInfo.userName)
        try await cluster.stopDaemon()
    }

    @Test("on a terminal --wait redraws one line; --json prints the request at the end")
    func terminalAndJSON() async throws {
        let cluster = try await LiveCluster()
        try await cluster.startDaemon()

        let terminal = try await Helper.onTerminal(["resync", "--full", "--wait", "--config", cluster.configPath])
        #expect(terminal.status == 0, "\(terminal.text)")
        #expect(terminal.text.contains("\r\u{1B}[2Kresync 1 "), "a line redrawn in place: \(terminal.text.debugDescription)")
        #expect(terminal.text.contains("\r\u{1B}[2K\u{1B}[32mresync 1 completed\u{1B}[0m in "))

        let json = try await cluster.run(["resync", "--type", "Encounter", "--wait", "--json"])
        #expect(json.status == 0)
        try await expectValid(json.text, schema: "resync.schema.json")
        let document = try parseJSON(json.text)
        #expect(document["state"] == "completed")
        #expect(document["daemonPid"] == JSON.number(JSONNumber(Int(cluster.daemon!.pid))))
        #expect(document["scope"]?["resourceType"] == "Encounter")
        try await cluster.stopDaemon()
    }

    @Test("a daemon that stops before finishing: --wait exits 1 saying it resumes at the next start")
    func daemonStops() async throws {
        let cluster = try await LiveCluster()
        try await cluster.startDaemon()
        let daemon = try #require(cluster.daemon)
        // Frozen between transactions, the daemon still holds the lock file but does nothing; then it dies
        // with the request pending. (Frozen inside a write, it would block the CLI's own write.)
        try await freezeOutsideTransaction(daemon, stateDirectory: cluster.stateDirectory)
        let waiting = try ChildProcess(
            executable: TestPaths.product("caresync"), arguments: ["resync", "--wait", "--config", cluster.configPath])
        do {
            _ = try await waiting.waitForLine { $0.hasPrefix("resync request 1 recorded") }
        } catch {
            _ = try? await waiting.waitForExit()
            Issue.record("resync ended early: \(waiting.output) \(waiting.errors)")
            throw error
        }
        daemon.send(SIGKILL)
        daemon.send(SIGCONT)
        #expect(try await waiting.waitForExit() == 1)
        #expect(waiting.errors.last == "caresync resync: the daemon stopped before finishing resync request 1 (pending); it resumes when the daemon starts again")
        let reader = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
        defer { reader.close() }
        #expect(try await reader.pendingResyncRequests().map(\.id) == [1], "still there for the next start")
    }

    /// SIGSTOPs `daemon` at a moment it holds no write transaction (checked with an immediate, empty
    /// write that must not wait); SIGCONT and try again otherwise.
    func freezeOutsideTransaction(_ daemon: ChildProcess, stateDirectory: String) async throws {
        var configuration = Configuration()
        configuration.busyMode = .immediateError
        for _ in 0..<200 {
            daemon.send(SIGSTOP)
            // kill(2) only queues the signal: check once every thread has really stopped, or a write the
            // daemon starts in between would hold the lock the check just found free.
            try await waitUntilStopped(daemon.pid)
            do {
                let database = try DatabaseQueue(path: stateDirectory + "/" + SQLiteStateStore.databaseFileName, configuration: configuration)
                defer { try? database.close() }
                try await database.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE; ROLLBACK") }
                return
            } catch {
                daemon.send(SIGCONT)
                try await Task.sleep(for: .milliseconds(Int.random(in: 5...50)))
            }
        }
        throw TestSetupFailure("the daemon was always inside a write transaction")
    }

    /// Waits until every thread of `pid` is in the stopped state (`T` in `/proc/<pid>/task/*/stat`).
    func waitUntilStopped(_ pid: pid_t) async throws {
        let tasks = "/proc/\(pid)/task"
        for _ in 0..<1000 {
            let threads = (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []
            let stopped = !threads.isEmpty && threads.allSatisfy { thread in
                guard let stat = try? String(contentsOfFile: "\(tasks)/\(thread)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { return false }
                // The state is the first field after the command name, which is in parentheses.
                return stat[stat.index(after: close)...].split(separator: " ").first == "T"
            }
            if stopped { return }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw TestSetupFailure("the daemon did not stop after SIGSTOP")
    }

    struct TestSetupFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test("a resync the daemon cannot do (a refused peer) fails with the reason: exit 1")
    func failure() async throws {
        let cluster = try await LiveCluster(trustBFHIRVersion: "3.0.2")
        try await cluster.startDaemon()

        let result = try await cluster.run(["resync", "--peer", "trust-b", "--wait"])
        #expect(result.status == 1, "\(result.output) \(result.errors)")
        #expect(result.output.last?.hasPrefix("resync 1 failed: ") == true, "\(result.output)")
        #expect(result.output.last?.contains("trust-b") == true)
        try await cluster.stopDaemon()
    }

    @Test("no daemon: the resync runs in-process holding the writer lock, with progress and the same bookkeeping")
    func inProcess() async throws {
        let cluster = try await LiveCluster()
        try await cluster.createCarePlan(at: "trust-a", "cp-1")

        let result = try await cluster.run(["resync", "--json"])
        #expect(result.status == 0, "\(result.errors)")
        try await expectValid(result.text, schema: "resync.schema.json")
        let document = try parseJSON(result.text)
        #expect(document["state"] == "completed")
        #expect(document["daemonPid"] == .null)
        #expect(try await cluster.carePlan(at: "hub", "cp-1") != nil, "synced")
        #expect(try await cluster.carePlan(at: "trust-b", "cp-1") != nil, "fanned out")
        #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory + "/caresync.sqlite"))

        // Without a configuration (secrets, peers) it cannot run here.
        let bare = try await caresync(["resync", "--state-dir", cluster.stateDirectory, "--config", cluster.directory.path("none.yaml").path])
        #expect(bare.status == 2)
        #expect(bare.errors.first?.contains("cannot be used") == true, "\(bare.errors)")
    }

    @Test("bad input: an unknown peer or type, a malformed NHS number: one line, exit 2, nothing recorded")
    func badInput() async throws {
        let cluster = try await LiveCluster()
        try await cluster.startDaemon()

        let peer = try await cluster.run(["resync", "--peer", "trust-z"])
        #expect(peer.status == 2)
        #expect(peer.errors == ["caresync resync: no peer named 'trust-z' (known peers: hub, trust-a, trust-b)"])
        let type = try await cluster.run(["resync", "--type", "Observation"])
        #expect(type.status == 2)
        #expect(type.errors == ["caresync resync: --type Observation: not a synchronised resource type (CarePlan, Encounter, RelatedPerson)"])
        let patient = try await cluster.run(["resync", "--patient", "94347659190"])
        #expect(patient.status == 2)
        #expect(patient.errors == ["caresync resync: --patient: not a valid NHS number: an NHS number has exactly 10 digits"])
        let reader = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
        defer { reader.close() }
        #expect(try await reader.resyncRequest(id: 1) == nil)
        try await cluster.stopDaemon()
    }
}
