import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The caresync test and sandbox FHIR R4 server: HTTP/1.1 on one address, SQLite underneath.
///
/// ```swift
/// let server = try FHIRStoreServer(configuration: StoreConfiguration(databasePath: "hub.sqlite"), logger: logger)
/// try await server.run { host, port in print("listening on \(host):\(port)") }
/// ```
public struct FHIRStoreServer: Sendable {
    public let configuration: StoreConfiguration
    private let logger: Logger
    private let service: FHIRService
    private let faults: FaultInjector

    /// Opens (or creates) the database; throws when the file cannot be opened or migrated.
    public init(configuration: StoreConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let database = try ResourceDatabase(path: configuration.databasePath)
        let clock = ServerClock(skewSeconds: configuration.clockSkewSeconds, notBefore: try database.newestStamp())
        service = FHIRService(database: database, clock: clock, configuration: configuration)
        faults = FaultInjector(configuration.faults)
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting, finishes the requests in flight and returns.
    /// `onListening` runs once the socket is bound, with the host and the actual port.
    public func run(onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void) async throws {
        let bracketed = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        let authority = Mutex("\(bracketed):\(configuration.port)")
        let frontEnd = HTTPFrontEnd(service: service, faults: faults, logger: logger, listenAuthority: { authority.withLock { $0 } })
        let host = configuration.host
        let server = try HTTPServerBuilder.http1().buildServer(
            configuration: ServerConfiguration(address: .hostname(host, port: configuration.port), serverName: nil),
            eventLoopGroup: EventLoopGroupProvider.singleton.eventLoopGroup,
            logger: logger,
            responder: { request, writer, channel in
                try await frontEnd.respond(to: request, writer: writer, channel: channel)
            },
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                authority.withLock { $0 = "\(bracketed):\(port)" }
                onListening(host, port)
            }
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [server],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
