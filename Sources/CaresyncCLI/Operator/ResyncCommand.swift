import ArgumentParser
import CaresyncDaemon
import CaresyncHTTP
import FHIRJSON
import FHIRModel
import Foundation
import Logging
import StateStore
import Synchronization
import SyncEngine

/// `caresync resync [--peer P] [--type T] [--patient NHSNO] [--full] [--wait] [--json]`: records a resync
/// request in the state store and wakes the running daemon with `SIGUSR1` (sent to the pid in the writer
/// lock file); with `--wait`, follows the request until the daemon marks it done. With no daemon running,
/// runs the resync in this process through the sync engine, holding the writer lock.
struct ResyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resync",
        abstract: "Ask the daemon to read records again from the peers, now.",
        discussion: """
            Without --full, pulls the changes since each cursor at once (as the next cycle would); with --full, \
            reads every record again from the start and reconciles it. --peer, --type and --patient narrow \
            what is read. --wait shows progress (a bar on a terminal, a line per change when piped) and exits \
            0 when the daemon completes the request, 1 when it fails or the daemon stops first. Exit status 2 \
            for an unknown peer or type or a malformed NHS number.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Only this peer.")
    var peer: String?

    @Option(name: .long, help: "Only this resource type (CarePlan, Encounter, RelatedPerson).")
    var type: String?

    @Option(name: .long, help: "Only this patient's records (NHS number, 10 digits).")
    var patient: String?

    @Flag(name: .long, help: "Read everything again from the start, not only the changes since the cursor.")
    var full = false

    @Flag(name: .long, help: "Follow the request until the daemon has done it.")
    var wait = false

    @Flag(name: .long, help: "Print the request as one JSON object at the end (Schemas/cli/resync.schema.json).")
    var json = false

    func run() async throws {
        try await runOperatorCommand("resync") { () throws(OperatorError) in
            let resourceType = try type.map { (text) throws(OperatorError) -> ResourceType in
                guard let known = ResourceType(rawValue: text), ResourceType.synchronised.contains(known) else {
                    let names = ResourceType.synchronised.map(\.rawValue).joined(separator: ", ")
                    throw .invalidInput("--type \(text): not a synchronised resource type (\(names))")
                }
                return known
            }
            let nhsNumber = try patient.map { (text) throws(OperatorError) in try NHSNumber.operatorInput(text) }
            let context = OperatorContext(global)
            // A state directory that does not exist yet has no daemon: the in-process resync creates it.
            let directory = try await context.statePath()
            guard let daemon = DaemonLock.holder(stateDirectory: directory) else {
                try await runInProcess(context: context, type: resourceType, patient: nhsNumber)
                return
            }
            let store = try await context.openStore(.operator)
            defer { store.close() }
            if let peer { try await requireKnownPeer(peer, in: store) }
            let user = OperatorUser.current()
            let id = try await storeCall { () async throws(StateStoreError) in
                try await store.requestResync(peer: peer, type: resourceType, patient: nhsNumber, full: full, requestedBy: user)
            }
            var signalled = true
            if kill(daemon, SIGUSR1) != 0 {
                signalled = false
                let reason = String(cString: strerror(errno))
                FileHandle.standardError.write(
                    Data(
                        "caresync resync: could not wake the daemon (pid \(daemon)): \(reason); it picks the request up on its next cycle\n"
                            .utf8))
            }
            if !json {
                writeOut("resync request \(id) recorded" + (signalled ? "; daemon (pid \(daemon)) woken" : "") + "\n")
            }
            var request = try await Self.read(id, from: store)
            if wait {
                request = try await ResyncProgressDisplay(id: id, quiet: json).follow(store: store, stateDirectory: directory)
            }
            if json {
                writeOut(Self.json(request, daemon: daemon).text(.pretty) + "\n")
            }
            if request.state == .failed { throw .quietExit(.failure) }
        }
    }

    /// No daemon holds the lock: run the resync here through the engine's entry point, holding the writer
    /// lock (a daemon started meanwhile fails on it), recorded and audited as a request the daemon would
    /// have run, with progress shown as `--wait` shows it.
    func runInProcess(context: OperatorContext, type: ResourceType?, patient: NHSNumber?) async throws(OperatorError) {
        let configuration = try await context.configuration()
        if let peer, configuration.peer(named: peer) == nil {
            throw .invalidInput("no peer named '\(peer)' in the configuration (peers: \(configuration.peers.map(\.name).joined(separator: ", ")))")
        }
        let directory = configuration.state.path
        let store: SQLiteStateStore
        do {
            store = try SQLiteStateStore.open(directory: directory, access: .writer)
        } catch {
            if error.code == .lockHeld {
                throw .failure(
                    "a daemon started on \(directory) meanwhile (pid \(error.lockHolderPID.map(String.init) ?? "?")): ask again to hand it the resync")
            }
            throw .store(error)
        }
        defer { store.close() }
        _ = CaresyncLogging.bootstrap(level: .warning)
        let logger = Logger(label: "caresync.resync")
        let http = HTTPClient()
        defer { http.shutdown() }
        let engine: SyncEngine
        do {
            let tokens = try PeerAccessTokens(configuration: configuration, transport: HTTPTokenEndpointTransport(client: http))
            engine = try SyncEngine.make(
                configuration: configuration, store: store, http: http, tokens: tokens, metrics: nil, observer: nil, logger: logger)
        } catch {
            throw .failure("cannot set up the sync engine: \(error)")
        }
        do throws(StateStoreError) {
            try await engine.start()
        } catch {
            throw .store(error)
        }
        let user = OperatorUser.current()
        let scope = ResyncScope(peer: peer, resourceType: type, patient: patient, full: full)
        let id = try await storeCall { () async throws(StateStoreError) in
            try await store.requestResync(peer: peer, type: type, patient: patient, full: full, requestedBy: user)
        }
        try await storeCall { () async throws(StateStoreError) in try await store.startResync(id: id) }
        if !json {
            writeOut("no daemon is running on \(directory): resync request \(id) runs here (holding the writer lock)\n")
        }
        let printer = ResyncProgressPrinter(quiet: json)
        let outcome: ResyncOutcome
        do {
            let report = try await engine.runOnce(scope) { progress in
                try? await store.updateResyncProgress(id: id, progress)
                if let request = try? await store.resyncRequest(id: id) { printer.show(request) }
            }
            outcome = .completed(summary: report.resyncSummary)
        } catch {
            outcome = .failed(reason: "\(error)")
        }
        try await storeCall { () async throws(StateStoreError) in try await store.finishResync(id: id, outcome) }
        let request = try await Self.read(id, from: store)
        printer.finish(request)
        if json {
            writeOut(Self.json(request, daemon: nil).text(.pretty) + "\n")
        }
        if request.state == .failed { throw .quietExit(.failure) }
    }

    static func read(_ id: Int64, from store: SQLiteStateStore) async throws(OperatorError) -> ResyncRequest {
        guard let request = try await storeCall({ () async throws(StateStoreError) in try await store.resyncRequest(id: id) }) else {
            throw .failure("resync request \(id) is no longer in the state database")
        }
        return request
    }

    static func json(_ request: ResyncRequest, daemon: Int32?) -> JSON {
        [
            "id": .integer(request.id),
            "state": .string(request.state.rawValue),
            "scope": [
                "peer": .optional(request.scope.peer),
                "resourceType": .optional(request.scope.resourceType?.rawValue),
                "patient": .optional(request.scope.patient?.masked),
                "full": .bool(request.scope.full),
            ],
            "requestedBy": .string(request.requestedBy),
            "requestedAt": .instant(request.requestedAt),
            "startedAt": .instant(request.startedAt),
            "finishedAt": .instant(request.finishedAt),
            "progress": [
                "done": .integer(request.progress.done),
                "total": request.progress.total.map { .integer($0) } ?? .null,
                "phase": .optional(request.progress.phase),
            ],
            "outcome": .optional(request.outcome),
            "daemonPid": daemon.map { .integer($0) } ?? .null,
        ]
    }
}

/// Shows a resync request's progress: a bar redrawn in place on a terminal, a line per change when
/// piped (at most one a second, and one every ten seconds while nothing changes), and a summary at the end.
final class ResyncProgressPrinter: Sendable {
    private struct State {
        var lastLine = ""
        var lastPrinted: Int64 = 0
        var drewBar = false
    }

    /// Show nothing (the final JSON says it all).
    let quiet: Bool
    private let terminal: Bool
    private let style: TextStyle
    private let state = Mutex(State())

    init(quiet: Bool) {
        self.quiet = quiet
        terminal = TextStyle.standardOutputIsTerminal && !quiet
        style = TextStyle.standardOutput()
    }

    /// Progress so far.
    func show(_ request: ResyncRequest) {
        guard !quiet else { return }
        let now = nowMilliseconds()
        if terminal {
            state.withLock { $0.drewBar = true }
            writeOut("\r\u{1B}[2K" + Self.bar(request, width: Self.terminalWidth()))
            return
        }
        let line = Self.line(request)
        let due = state.withLock { state -> Bool in
            guard (line != state.lastLine && now - state.lastPrinted >= 1000) || now - state.lastPrinted >= 10_000 else { return false }
            state.lastLine = line
            state.lastPrinted = now
            return true
        }
        if due { writeOut(line + "\n") }
    }

    /// The end: the bar cleared, the summary line.
    func finish(_ request: ResyncRequest) {
        guard !quiet else { return }
        if state.withLock({ $0.drewBar }) { writeOut("\r\u{1B}[2K") }
        writeOut(Self.summary(request, style: style) + "\n")
    }

    /// Leaves the bar's line before an error message.
    func abandon() {
        if state.withLock({ $0.drewBar }) { writeOut("\n") }
    }

    /// `resync 12: running, 40/100 (40%), pulling CarePlan from trust-a`; `running, 12 done, reading …`
    /// while the total is unknown.
    static func line(_ request: ResyncRequest) -> String {
        var parts = ["resync \(request.id): \(request.state.rawValue)"]
        if request.state == .running {
            if let total = request.progress.total {
                parts.append("\(Format.count(request.progress.done))/\(Format.count(total)) (\(percent(request.progress)))")
            } else {
                parts.append("\(Format.count(request.progress.done)) done")
            }
        }
        if let phase = request.progress.phase { parts.append(phase) }
        return parts.joined(separator: ", ")
    }

    /// `resync 12 [#######.............]  35%  35/100  pulling CarePlan from trust-a`, cut to `width`.
    static func bar(_ request: ResyncRequest, width: Int) -> String {
        var text = "resync \(request.id) "
        if request.state == .pending {
            text += "waiting for the daemon…"
        } else if let total = request.progress.total, total > 0 {
            let cells = 24
            let filled = min(cells, request.progress.done * cells / total)
            text += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: cells - filled) + "] "
            text += "\(percent(request.progress))  \(Format.count(request.progress.done))/\(Format.count(total))"
        } else {
            text += "\(Format.count(request.progress.done)) done"
        }
        if let phase = request.progress.phase { text += "  \(phase)" }
        return String(text.prefix(max(20, width - 1)))
    }

    static func summary(_ request: ResyncRequest, style: TextStyle) -> String {
        let elapsed = request.finishedAt.map { $0 - (request.startedAt ?? request.requestedAt) } ?? 0
        switch request.state {
        case .completed:
            return style.paint("resync \(request.id) completed", .green) + " in \(Format.duration(milliseconds: elapsed))"
                + (request.outcome.map { ": \($0)" } ?? "")
        case .failed:
            return style.paint("resync \(request.id) failed", .red) + (request.outcome.map { ": \($0)" } ?? "")
        case .pending, .running:
            return line(request)
        }
    }

    static func percent(_ progress: ResyncProgress) -> String {
        guard let total = progress.total, total > 0 else { return "-" }
        return "\(min(100, progress.done * 100 / total))%"
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }
}

/// Follows a request the daemon works on, polling the state database, until it is finished or the
/// daemon stops.
struct ResyncProgressDisplay {
    let id: Int64
    let quiet: Bool

    func follow(store: SQLiteStateStore, stateDirectory: String) async throws(OperatorError) -> ResyncRequest {
        let printer = ResyncProgressPrinter(quiet: quiet)
        while true {
            let request = try await ResyncCommand.read(id, from: store)
            if request.state.isFinished {
                printer.finish(request)
                return request
            }
            printer.show(request)
            if DaemonLock.holder(stateDirectory: stateDirectory) == nil {
                // Read once more: the daemon may have finished the request just before stopping.
                let last = try await ResyncCommand.read(id, from: store)
                if last.state.isFinished { continue }
                printer.abandon()
                throw .failure(
                    "the daemon stopped before finishing resync request \(id) (\(last.state.rawValue)); "
                        + "it resumes when the daemon starts again")
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// The daemon's writer lock file (`<state dir>/caresync.lock`), seen from outside.
enum DaemonLock {
    /// The pid of the process holding the writer lock, or `nil` when no process holds it. Probes with a
    /// shared, non-blocking `flock`, which only the holder's exclusive lock refuses; never creates the file.
    static func holder(stateDirectory: String) -> Int32? {
        let path = stateDirectory + "/" + SQLiteStateStore.lockFileName
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        if flock(descriptor, LOCK_SH | LOCK_NB) == 0 {
            flock(descriptor, LOCK_UN)
            return nil
        }
        guard errno == EWOULDBLOCK else { return nil }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<count].prefix { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self))
    }
}
