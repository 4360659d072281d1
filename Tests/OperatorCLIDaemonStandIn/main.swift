import Dispatch
import FHIRModel
import Foundation
import StateStore

// A test-only writer process standing in for `caresync daemon` on the resync request path: it holds the
// writer lock (its pid in the lock file), wakes on SIGUSR1, and works through pending resync requests with
// the StateStore API the daemon uses — start, progress in `--steps` steps of `--step-ms`, finish. The
// operator CLI tests run `caresync resync` against it until the real daemon lands.
//
//   operator-cli-daemon-stand-in STATE_DIR [--steps N] [--step-ms MS] [--fail] [--exit-after-start]
//
// Prints `READY <pid>` once the lock is held, `WOKEN` on each SIGUSR1, `DONE <id>` per finished request.

/// One line on stdout, unbuffered (the test reads it while this process runs).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: operator-cli-daemon-stand-in STATE_DIR [options]\n".utf8))
    exit(2)
}
func option(_ name: String, default value: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let number = Int(arguments[index + 1]) else {
        return value
    }
    return number
}
let steps = option("--steps", default: 5)
let stepMilliseconds = option("--step-ms", default: 300)
let fail = arguments.contains("--fail")
let exitAfterStart = arguments.contains("--exit-after-start")

/// The writer store; retried on `lock-held` for a moment: the test that started this process may have
/// closed its own writer an instant ago (see the operator CLI tests' StateFixture).
func openWriter(_ directory: String) async -> SQLiteStateStore? {
    for _ in 0..<100 {
        do {
            return try SQLiteStateStore.open(directory: directory, access: .writer)
        } catch {
            guard error.code == .lockHeld else { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
    return nil
}

guard let store = await openWriter(arguments[1]) else {
    FileHandle.standardError.write(Data("operator-cli-daemon-stand-in: cannot open the state store as writer\n".utf8))
    exit(1)
}
for peer in [
    PeerDescriptor(name: "hub", ods: "QWE", baseURL: "https://hub.example.nhs.uk/fhir", mode: .hub),
    PeerDescriptor(name: "trust-a", ods: "RX1", baseURL: "https://fhir.trust-a.example.nhs.uk/R4", mode: .readWrite),
] {
    try await store.registerPeer(peer)
}

signal(SIGUSR1, SIG_IGN)
let (wakeups, continuation) = AsyncStream.makeStream(of: Void.self)
let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
source.setEventHandler { @Sendable in continuation.yield() }
source.resume()
say("READY \(getpid())")

for await _ in wakeups {
    say("WOKEN")
    for request in try await store.pendingResyncRequests() {
        try await store.startResync(id: request.id)
        if exitAfterStart { exit(0) }
        let what = (request.scope.resourceType?.rawValue ?? "every type") + " from " + (request.scope.peer ?? "every peer")
        for step in 0...steps {
            try await store.updateResyncProgress(id: request.id, ResyncProgress(done: step * 10, total: steps * 10, phase: "pulling \(what)"))
            try await Task.sleep(for: .milliseconds(stepMilliseconds))
        }
        if fail {
            try await store.finishResync(id: request.id, .failed(reason: "the peer answered HTTP 503 on every page"))
        } else {
            try await store.finishResync(id: request.id, .completed(summary: "\(steps * 10) records read again, 0 conflicts"))
        }
        say("DONE \(request.id)")
    }
}
