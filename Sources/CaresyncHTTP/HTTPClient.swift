import Synchronization

/// An HTTP/1.1 and HTTP/2 client over libcurl for every peer of the process.
///
/// One libcurl multi handle, owned by one dedicated thread, runs every transfer; `send` hands its
/// request to that thread and suspends until the response (or error) arrives. Connections are kept
/// and reused per host and TLS configuration; HTTP/2 is used over TLS when the server offers it, with
/// many requests multiplexed on one connection.
///
/// Policy, not configurable: TLS certificates and host names are always verified; plain `http://` is
/// refused unless the host is a loopback address; redirects are never followed (a 3xx is returned as
/// is, so writes are never replayed elsewhere and credentials never leave the host asked for);
/// plain-HTTP (loopback) requests never go through a proxy, while HTTPS requests honour the usual
/// `https_proxy` / `no_proxy` environment. Creating a client ignores SIGPIPE for the whole process.
public final class HTTPClient: Sendable {
    /// Connection limits shared by every request of one client.
    public struct Configuration: Sendable {
        /// Open connections to one host at most; further requests wait for one (or multiplex on HTTP/2).
        public var maximumConnectionsPerHost: Int
        /// Open connections in total at most (0: no limit).
        public var maximumTotalConnections: Int
        /// Idle connections kept open for reuse.
        public var idleConnectionCacheSize: Int
        /// The `User-Agent` sent unless a request sets its own.
        public var userAgent: String

        /// Limits suitable for a daemon talking to a handful of FHIR peers.
        public init(
            maximumConnectionsPerHost: Int = 6,
            maximumTotalConnections: Int = 0,
            idleConnectionCacheSize: Int = 32,
            userAgent: String = "caresync"
        ) {
            self.maximumConnectionsPerHost = maximumConnectionsPerHost
            self.maximumTotalConnections = maximumTotalConnections
            self.idleConnectionCacheSize = idleConnectionCacheSize
            self.userAgent = userAgent
        }
    }

    private let engine: Engine
    private let handles = EasyHandlePool(capacity: 256)
    private let userAgent: String
    private let nextID = Atomic<UInt64>(1)

    /// Starts the client's transfer thread.
    public init(configuration: Configuration = Configuration()) {
        engine = Engine(configuration: configuration)
        userAgent = configuration.userAgent
        engine.start()
    }

    deinit {
        engine.stop(wait: false)
    }

    /// Sends `request` and returns the complete response, whatever its status code.
    ///
    /// Cancelling the calling task abandons the transfer (its connection is closed) and throws
    /// ``HTTPError/Code/cancelled``.
    public func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let transfer = try Transfer.make(request, id: id, userAgent: userAgent, pool: handles)
        let engine = engine
        let ticket = transfer.ticket
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Transfer.Outcome, Never>) in
                transfer.continuation = continuation
                engine.submit(transfer)
            }
        } onCancel: {
            engine.cancel(ticket)
        }
        return try outcome.get().response
    }

    /// Fails every queued and running request with ``HTTPError/Code/shutDown``, closes all connections
    /// and stops the transfer thread; returns once it has stopped. Later requests fail at once.
    public func shutdown() {
        engine.stop(wait: true)
    }
}
