import CaresyncReliability
import CaresyncTestSupport
import Foundation
import Testing

/// The short form of the reliability suite (docs/reliability.md): every scenario of `make reliability`,
/// at a scale `swift test` can afford, against the built `caresync` and `caresync-store` as real child
/// processes. A scenario that loses, duplicates or misreports anything fails here.
@Suite("Reliability (short form)", .serialized)
struct ReliabilityTests {
    static func environment() throws -> ReliabilityEnvironment {
        let binaries = try TestPaths.product("caresync").deletingLastPathComponent()
        let seed = ProcessInfo.processInfo.environment["CARESYNC_RELIABILITY_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970)
        return ReliabilityEnvironment(binDirectory: binaries, seed: seed, log: { _ in })
    }

    static func expectPassed(_ result: ScenarioResult, sourceLocation: SourceLocation = #_sourceLocation) {
        if let skipped = result.skipped {
            print("reliability \(result.scenario): \(skipped)")
            return
        }
        #expect(result.lost == 0, "records lost: \(result.problems)", sourceLocation: sourceLocation)
        #expect(result.duplicated == 0, "records duplicated: \(result.problems)", sourceLocation: sourceLocation)
        #expect(result.errorsAsDocumented, "errors not as documented: \(result.problems)", sourceLocation: sourceLocation)
        #expect(result.problems.isEmpty, "\(result.problems.joined(separator: "\n"))\n\(result.notes.joined(separator: "\n"))", sourceLocation: sourceLocation)
        #expect(result.trials > 0, sourceLocation: sourceLocation)
    }

    @Test("kill -9 of the daemon in the middle of a sync, restarted: nothing lost, nothing duplicated, every conflict accounted for")
    func crashRecovery() async throws {
        Self.expectPassed(await ReliabilityScenario.crashRecovery.run(scale: .short, environment: try Self.environment()))
    }

    @Test("20% faults of every kind at every store: the peers converge and no record is created twice")
    func faults() async throws {
        Self.expectPassed(await ReliabilityScenario.faults.run(scale: .short, environment: try Self.environment()))
    }

    @Test("hostile inputs: each gets its documented error, the rest keeps syncing, nothing is lost")
    func hostileInput() async throws {
        Self.expectPassed(await ReliabilityScenario.hostileInput.run(scale: .short, environment: try Self.environment()))
    }

    @Test("a provider restored from an older backup is reported within one cycle and the hub loses nothing")
    func restoredPeer() async throws {
        Self.expectPassed(await ReliabilityScenario.restoredPeer.run(scale: .short, environment: try Self.environment()))
    }

    @Test("disk full on the state directory: the daemon stops with a clear error, loses nothing, resumes")
    func diskFull() async throws {
        Self.expectPassed(await ReliabilityScenario.diskFull.run(scale: .short, environment: try Self.environment()))
    }
}
