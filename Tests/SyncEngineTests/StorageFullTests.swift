import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import Logging
import MergeCore
import StateStore
import SyncEngine
import Synchronization
import Testing

/// The state directory runs out of space while the engine runs (docs/sync-engine.md, "A full state
/// directory"): a real `tmpfs` mounted on the state directory (needs root, as CI runs), real stores on
/// loopback, the engine's own loops.
@Suite("Full state directory", .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
struct StorageFullTests {
    /// What the engine reported: storage problems (and their clearing) and failed pulls.
    final class Recorder: SyncObserver, Sendable {
        let problems = Mutex<[String?]>([])
        let failedPulls = Mutex(0)

        func storage(problem: String?) { problems.withLock { $0.append(problem) } }
        func pulled(peer: String, type: ResourceType, records: Int, succeeded: Bool) {
            if !succeeded { failedPulls.withLock { $0 += 1 } }
        }
    }

    @Test("a full state directory is reported once, work backs off, nothing is lost, and it resumes when space returns")
    func fullStateDirectory() async throws {
        let cluster = try await Cluster(providers: [("trust-a", "RA1", .readOnly)])
        try FileManager.default.createDirectory(atPath: cluster.stateDirectory, withIntermediateDirectories: true)
        try #require(Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", cluster.stateDirectory]))
        defer { _ = Self.run("/bin/umount", ["-l", cluster.stateDirectory]) }

        let patients = Records.patients(6)
        try await Records.seed(cluster, peer: "trust-a", patients: Array(patients[0..<3]), prefix: "A")
        let store = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .writer)
        defer { store.close() }
        let recorder = Recorder()
        var logger = Logger(label: "storage-full-test")
        logger.logLevel = .critical
        let engine = SyncEngine(
            topology: cluster.topology, settings: Cluster.fastSettings, policy: MergePolicy.default, store: store,
            clients: ["hub": try cluster.client("hub"), "trust-a": try cluster.client("trust-a")], logger: logger,
            observer: recorder)
        try await engine.start()
        try await engine.syncUntilQuiescent()
        #expect(try await cluster.recordsByIdentifier("hub").count == 9)

        // Fill the state directory, then give the provider new records while the engine runs.
        let filler = cluster.stateDirectory + "/filler"
        Self.fill(filler)
        try await Records.seed(cluster, peer: "trust-a", patients: Array(patients[3..<6]), prefix: "B")
        let running = Task { await engine.run() }
        try await Self.waitFor { recorder.problems.withLock { $0.count } >= 1 }
        let startedFull = ContinuousClock.now
        // Ten cycles with the directory full.
        try await Task.sleep(for: Cluster.fastSettings.interval * 10)
        let fullFor = ContinuousClock.now - startedFull
        let problems = recorder.problems.withLock { $0 }
        #expect(problems.count == 1, "reported once, not every cycle: \(problems)")
        #expect(problems.first??.contains("state directory is full") == true)
        #expect(engine.statusLine().contains("state store full"), "\(engine.statusLine())")
        #expect(try await cluster.recordsByIdentifier("hub").count == 9, "no work taken without a durable record")
        // Backing off: the interval doubling from 200 ms, so a handful of tries (three types each), not one per cycle.
        let cycles = Int(fullFor / Cluster.fastSettings.interval) + 1
        let tries = recorder.failedPulls.withLock { $0 }
        #expect(tries <= Int(log2(Double(cycles))) + 3, "\(tries) failed pulls in \(cycles) cycles")

        // Space returns: the next try stores, the problem is cleared, and the new records reach the hub.
        try FileManager.default.removeItem(atPath: filler)
        try await Self.waitFor { try await cluster.recordsByIdentifier("hub").count == 18 }
        engine.stop()
        await running.value
        #expect(recorder.problems.withLock { $0.last } == .some(nil), "cleared once a write succeeded")
        for (key, copies) in try await cluster.recordsByIdentifier("hub") {
            #expect(copies.count == 1, "hub holds \(copies.count) copies of \(key)")
        }
        #expect(try await store.inboxCounts(peer: "trust-a").pending == 0)
    }

    /// Polls `condition` every 100 ms, failing after two minutes (a hang guard, not a speed limit).
    static func waitFor(_ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(120))
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the condition did not hold within two minutes")
    }

    /// Writes `path` until the file system is full.
    static func fill(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var chunk = 1 << 20
        let buffer = [UInt8](repeating: 0x5A, count: chunk)
        while chunk >= 512 {
            let count = buffer.withUnsafeBytes { write(fd, $0.baseAddress, chunk) }
            if count <= 0 { chunk /= 2 }
        }
        fsync(fd)
    }

    /// Runs a system command; whether it exited 0.
    static func run(_ executable: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus == 0
        } catch {
            return false
        }
    }
}
