// `caresync-store`: the FHIR R4 store caresync is tested against (docs/caresync-store.md).
public import ArgumentParser
import FHIRStore
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct CaresyncStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caresync-store",
        abstract: "A small, faithful FHIR R4 server (JSON, SQLite) for caresync's tests, benchmarks and sandbox.",
        discussion: """
            Prints `listening on HOST:PORT` as the first line of stdout once bound (use port 0 for a free port).
            FHIR base: /fhir. SIGTERM or SIGINT stops it gracefully. See docs/caresync-store.md.
            """
    )

    @Option(help: ArgumentHelp("Address to listen on, HOST:PORT (port 0 picks a free port).", valueName: "host:port"))
    var listen: String = "127.0.0.1:8080"

    @Option(help: ArgumentHelp("SQLite database file (created if missing).", valueName: "file"))
    var db: String

    @Option(help: "HTTP status for an If-Match that does not match the current version: 409 or 412.")
    var versionConflictStatus: Int = 409

    @Flag(help: "Refuse updates of existing resources that carry no If-Match (428).")
    var requireIfMatch = false

    @Option(help: "Probability (0...1) that a FHIR request gets an injected fault.")
    var faultRate: Double = 0

    @Option(help: ArgumentHelp("Faults to inject, comma-separated: 429, 503, reset, drop-after-commit, slow.", valueName: "list"))
    var faults: String = ""

    @Option(help: "Seed of the fault sequence (same seed, same request order: same faults).")
    var faultSeed: UInt64 = 0

    @Option(help: "Retry-After seconds sent with injected 429 and 503 answers.")
    var retryAfter: Int = 1

    @Option(help: "Delay of a 'slow' fault, in seconds.")
    var slowDelay: Double = 2

    @Option(help: "Shift every timestamp the store writes and reports by this many seconds; stamps become whole seconds.")
    var clockSkew: Double?

    @Option(help: "Resource checks before storing: r4 (FHIR R4 conformance, 422 otherwise) or minimal (type, id and meta shape only, to seed hostile records in tests).")
    var validation: StoreValidation = .r4

    @Option(help: "Log level on stderr (trace, debug, info, notice, warning, error, critical).")
    var logLevel: String = "warning"

    func validate() throws {
        guard versionConflictStatus == 409 || versionConflictStatus == 412 else {
            throw ValidationError("--version-conflict-status must be 409 or 412")
        }
        guard (0...1).contains(faultRate) else { throw ValidationError("--fault-rate must be between 0 and 1") }
        guard slowDelay >= 0, retryAfter >= 0 else { throw ValidationError("--slow-delay and --retry-after must not be negative") }
        _ = try parsedFaults()
        _ = try parsedListen()
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        let (host, port) = try parsedListen()
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "caresync-store")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        let configuration = StoreConfiguration(
            host: host,
            port: port,
            databasePath: db,
            versionConflictStatus: versionConflictStatus,
            requireIfMatch: requireIfMatch,
            faults: FaultSettings(
                rate: faultRate,
                kinds: try parsedFaults(),
                seed: faultSeed,
                retryAfterSeconds: retryAfter,
                slowDelayMilliseconds: Int((slowDelay * 1000).rounded())
            ),
            clockSkewSeconds: clockSkew,
            validation: validation
        )
        let server = try FHIRStoreServer(configuration: configuration, logger: logger)
        try await server.run { host, port in
            print("listening on \(host.contains(":") ? "[\(host)]" : host):\(port)")
            fflush(nil)  // the first line must reach a pipe at once
        }
    }

    private func parsedFaults() throws -> [FaultKind] {
        try faults.split(separator: ",").map { name in
            let trimmed = name.filter { $0 != " " }
            guard let kind = FaultKind(rawValue: trimmed) else {
                throw ValidationError("unknown fault \(trimmed) in --faults; known: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return kind
        }
    }

    private func parsedListen() throws -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:0")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ValidationError("--listen must name a host, e.g. 127.0.0.1:0") }
        return (host, port)
    }
}

extension StoreValidation: ExpressibleByArgument {}
