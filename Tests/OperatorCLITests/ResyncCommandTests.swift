import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import Testing

/// `caresync resync` against a writer process holding the lock and handling SIGUSR1 (the stand-in for
/// the daemon on this path: it works through resync requests with the daemon's StateStore calls).
@Suite("caresync resync")
struct ResyncCommandTests {
    /// Starts the stand-in on the fixture's state directory and waits until it holds the lock.
    func startDaemon(_ fixture: StateFixture, _ options: [String] = []) async throws -> ChildProcess {
        let daemon = try ChildProcess(
            executable: TestPaths.product("operator-cli-daemon-stand-in"), arguments: [fixture.stateDirectory] + options)
        _ = try await daemon.waitForLine { $0.hasPrefix("READY ") }
        return daemon
    }

    @Test("records the request, wakes the daemon with SIGUSR1, and --wait follows it to completion in lines")
    func wakesAndWaits() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        let daemon = try await startDaemon(fixture)
        defer { daemon.send(SIGKILL) }

        let result = try await caresync([
            "resync", "--peer", "trust-a", "--type", "CarePlan", "--patient", patientA.digits, "--full", "--wait",
            "--state-dir", fixture.stateDirectory,
        ])
        #expect(result.status == 0, "\(result.errors)")
        #expect(daemon.output.contains("WOKEN"), "the daemon was woken by the signal")
        #expect(result.output.first == "resync request 1 recorded; daemon (pid \(daemon.pid)) woken", "\(result.output)")
        let progress = result.output.dropFirst().dropLast()
        #expect(!progress.isEmpty, "periodic lines while it runs: \(result.output)")
        #expect(progress.allSatisfy { $0.hasPrefix("resync 1: ") }, "\(result.output)")
        #expect(progress.contains { $0.contains(" running ") && $0.contains("/50 (") && $0.hasSuffix("pulling CarePlan from trust-a") })
        #expect(result.output.last?.hasPrefix("resync 1 completed in ") == true)
        #expect(result.output.last?.hasSuffix(": 50 records read again, 0 conflicts") == true)
        #expect(!result.text.contains("\r"), "no progress bar when piped")

        let reader = try fixture.openReader()
        defer { reader.close() }
        let request = try #require(try await reader.resyncRequest(id: 1))
        #expect(request.scope == ResyncScope(peer: "trust-a", resourceType: .carePlan, patient: patientA, full: true))
        #expect(request.requestedBy == ProcessInfo.processInfo.userName)
        let audit = try await reader.audit(nhsNumber: patientA, since: nil, limit: 10)
        #expect(audit.map(\.event.action) == ["resync-requested", "resync-completed"])
        #expect(audit[0].event.actor == ProcessInfo.processInfo.userName)
    }

    @Test("without --wait it returns at once; on a terminal --wait draws a progress bar")
    func progressBar() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        let daemon = try await startDaemon(fixture)
        defer { daemon.send(SIGKILL) }

        let quick = try await caresync(["resync", "--state-dir", fixture.stateDirectory])
        #expect(quick.status == 0)
        #expect(quick.output.count == 1)

        let terminal = try await Helper.onTerminal(["resync", "--type", "Encounter", "--wait", "--state-dir", fixture.stateDirectory])
        #expect(terminal.status == 0)
        #expect(terminal.text.contains("\r\u{1B}[2Kresync 2 ["), "a bar redrawn in place: \(terminal.text.debugDescription)")
        #expect(terminal.text.contains("] ") && terminal.text.contains("%  "))
        #expect(terminal.text.contains("\u{1B}[32mresync 2 completed\u{1B}[0m"))
    }

    @Test("--json prints the request at the end; a failed resync exits 1 with the reason")
    func jsonAndFailure() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        let daemon = try await startDaemon(fixture, ["--fail", "--steps", "2", "--step-ms", "100"])
        defer { daemon.send(SIGKILL) }

        let result = try await caresync(["resync", "--peer", "hub", "--wait", "--json", "--state-dir", fixture.stateDirectory])
        #expect(result.status == 1)
        try await expectValid(result.text, schema: "resync.schema.json")
        let document = try parseJSON(result.text)
        #expect(document["state"] == "failed")
        #expect(document["outcome"] == "the peer answered HTTP 503 on every page")
        #expect(document["scope"]?["peer"] == "hub")

        let text = try await caresync(["resync", "--wait", "--state-dir", fixture.stateDirectory])
        #expect(text.status == 1)
        #expect(text.output.last == "resync 2 failed: the peer answered HTTP 503 on every page")
    }

    @Test("a daemon that stops before finishing: --wait exits 1 saying it resumes at the next start")
    func daemonStops() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        let daemon = try await startDaemon(fixture, ["--exit-after-start"])

        let result = try await caresync(["resync", "--wait", "--state-dir", fixture.stateDirectory])
        #expect(try await daemon.waitForExit() == 0)
        #expect(result.status == 1)
        #expect(result.errors.last == "caresync resync: the daemon stopped before finishing resync request 1 (running); it resumes when the daemon starts again")
        #expect(try await fixture.openReader().pendingResyncRequests().map(\.id) == [1], "still there for the next start")
    }

    @Test("no daemon running: exit 1 and nothing recorded")
    func noDaemon() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()

        let result = try await caresync(["resync", "--state-dir", fixture.stateDirectory])
        #expect(result.status == 1)
        #expect(result.errors.first?.hasPrefix("caresync resync: no daemon is running on \(fixture.stateDirectory)") == true, "\(result.errors)")
        #expect(try await fixture.openReader().pendingResyncRequests().isEmpty)
    }

    @Test("bad input: an unknown peer or type, a malformed NHS number: one line, exit 2, nothing recorded")
    func badInput() async throws {
        let fixture = try StateFixture()
        defer { fixture.directory.remove() }
        try await fixture.fillHealthy()
        let daemon = try await startDaemon(fixture)
        defer { daemon.send(SIGKILL) }

        let peer = try await caresync(["resync", "--peer", "trust-z", "--state-dir", fixture.stateDirectory])
        #expect(peer.status == 2)
        #expect(peer.errors == ["caresync resync: no peer named 'trust-z' (known peers: hub, trust-a, trust-b)"])
        let type = try await caresync(["resync", "--type", "Observation", "--state-dir", fixture.stateDirectory])
        #expect(type.status == 2)
        #expect(type.errors == ["caresync resync: --type Observation: not a synchronised resource type (CarePlan, Encounter, RelatedPerson)"])
        let patient = try await caresync(["resync", "--patient", "94347659190", "--state-dir", fixture.stateDirectory])
        #expect(patient.status == 2)
        #expect(patient.errors == ["caresync resync: --patient: not a valid NHS number: an NHS number has exactly 10 digits"])
        #expect(try await fixture.openReader().pendingResyncRequests().isEmpty)
    }
}
