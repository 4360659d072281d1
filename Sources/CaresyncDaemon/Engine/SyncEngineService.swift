public import CaresyncHTTP
public import FHIRClient
public import FHIRModel
import Foundation
public import Logging
public import MergeCore
public import ServiceLifecycle
public import StateStore
public import SyncEngine
import UnixSignals

/// The `Authorization` of one peer for ``FHIRClient``, from the daemon's per-peer token providers (looked
/// up on every request, so a reload's new provider takes effect at once).
public struct PeerAuthorization: FHIRAuthorization {
    let tokens: PeerAccessTokens
    let peer: String

    /// The header for `peer` from `tokens`.
    public init(tokens: PeerAccessTokens, peer: String) {
        self.tokens = tokens
        self.peer = peer
    }

    public func authorizationHeader() async throws(FHIRClientError) -> String? {
        guard let provider = tokens.provider(for: peer) else { return nil }
        do {
            return try await provider.accessToken()?.authorizationHeaderValue
        } catch {
            throw FHIRClientError(.authorization, error.description, url: peer, isRetriable: error.isRetriable)
        }
    }

    public func invalidate() async {
        await tokens.provider(for: peer)?.invalidate()
    }
}

/// Feeds the engine's events into caresync's Prometheus metrics and the health monitor (watchdog,
/// `/healthz`).
public struct MetricsSyncObserver: SyncObserver {
    let metrics: CaresyncMetrics
    let health: HealthMonitor

    /// Events recorded into `metrics`; heartbeats into `health`.
    public init(metrics: CaresyncMetrics, health: HealthMonitor) {
        self.metrics = metrics
        self.health = health
    }

    public func pulled(peer: String, type: ResourceType, records: Int, succeeded: Bool) {
        metrics.recordPull(peer: peer, type: type, succeeded ? .succeeded : .failed, records: records)
    }

    public func pushed(peer: String, outcome: PushOutcomeKind) {
        let mapped: CaresyncMetrics.PushOutcome =
            switch outcome {
            case .succeeded: .succeeded
            case .retried: .retried
            case .conflict: .conflict
            case .deadLettered: .deadLettered
            }
        metrics.recordPush(peer: peer, mapped)
    }

    public func merged(_ kind: InboundPlan.Kind, duration: Duration) {
        let outcome: CaresyncMetrics.MergeOutcome =
            switch kind {
            case .merged, .created, .hubChange: .merged
            case .unchanged, .quarantined: .unchanged
            case .conflict: .conflict
            case .refused: .refused
            }
        metrics.recordMerge(outcome, duration: duration)
    }

    public func measured(peer: String, queueDepth: Int, oldestQueuedAge: Duration, deadLetters: Int, openConflicts: Int, lag: Duration) {
        metrics.setQueueDepth(peer: peer, queueDepth)
        metrics.setOldestQueuedAge(peer: peer, oldestQueuedAge)
        metrics.setDeadLetters(peer: peer, deadLetters)
        metrics.setOpenConflicts(peer: peer, openConflicts)
        metrics.setLag(peer: peer, lag)
    }

    public func heartbeat(_ component: String, deadline: Duration) {
        health.heartbeat(component, deadline: deadline)
    }

    public func storage(problem: String?) {
        health.degrade("state-store", reason: problem)
    }
}

extension CaresyncConfiguration {
    /// The engine's view of the peers.
    public var syncTopology: SyncTopology {
        SyncTopology(
            hub: SyncPeer(name: hub.name, ods: hub.ods, mode: .hub, baseURL: hub.baseURL.text),
            providers: providers.map { provider in
                SyncPeer(
                    name: provider.name, ods: provider.ods, mode: provider.mode == .readWrite ? .readWrite : .readOnly,
                    fanOut: FanOut(rawValue: provider.scope.rawValue) ?? .heldPatients, baseURL: provider.baseURL.text)
            })
    }

    /// The engine's pacing from `sync.*`.
    public var syncSettings: EngineSettings {
        EngineSettings(
            interval: sync.interval, resourceTypes: sync.resourceTypes, pageSize: sync.pageSize,
            clockSkewMargin: sync.clockSkewMargin)
    }

    /// The merge policy: the embedded one, or the configured file.
    public func mergePolicy() throws -> MergePolicy {
        switch policy {
        case .embedded:
            return MergePolicy.default
        case .file(let reference):
            guard let data = FileManager.default.contents(atPath: reference.path) else {
                throw ConfigurationApplyError(message: "policy: cannot read \(reference.path)")
            }
            return try MergePolicy(bytes: [UInt8](data))
        }
    }

    /// What the running engine cannot change without a restart: peers (names, ODS, URLs, modes, scopes),
    /// sync settings, the state directory and the policy. Credentials, TLS files and the log level reload live.
    func engineShape() -> [String] {
        var shape = ["state:\(state.path)", "policy:\(policy)", "sync:\(sync)"]
        shape.append("hub:\(hub.name)|\(hub.ods)|\(hub.baseURL.text)")
        for provider in providers {
            shape.append("provider:\(provider.name)|\(provider.ods)|\(provider.baseURL.text)|\(provider.mode)|\(provider.scope)")
        }
        return shape
    }

    /// Whether `other` can be applied to an engine running this configuration (only credentials, TLS
    /// files and the log level differ).
    public func canReloadLive(into other: CaresyncConfiguration) -> Bool {
        engineShape() == other.engineShape()
    }
}

/// A reloaded configuration the running daemon cannot apply.
public struct ConfigurationApplyError: Error, Sendable, CustomStringConvertible {
    /// What was refused and why.
    public let message: String

    public var description: String { message }
}



extension SyncEngine {
    /// An engine for `configuration`: one ``FHIRClient`` per peer over `http`, authorised by `tokens`,
    /// recording exchanges into `metrics`.
    public static func make(
        configuration: CaresyncConfiguration, store: any SyncStateStoreProtocol, http: HTTPClient, tokens: PeerAccessTokens?,
        metrics: CaresyncMetrics?, observer: (any SyncObserver)?, logger: Logger
    ) throws -> SyncEngine {
        var clients: [String: any SyncPeerClient] = [:]
        var observe: (@Sendable (FHIRExchange) -> Void)?
        if let metrics {
            observe = { exchange in
                metrics.recordHTTPRequest(peer: exchange.peer, method: exchange.method, status: exchange.status, duration: exchange.duration)
            }
        }
        for peer in configuration.peers {
            let endpoint = FHIREndpoint(name: peer.name, baseURL: peer.baseURL.text, tls: peer.tls.httpConfiguration)
            var authorization: (any FHIRAuthorization)?
            if let tokens { authorization = PeerAuthorization(tokens: tokens, peer: peer.name) }
            let client = try FHIRClient(endpoint: endpoint, http: http, authorization: authorization, observe: observe)
            clients[peer.name] = client
        }
        return SyncEngine(
            topology: configuration.syncTopology, settings: configuration.syncSettings, policy: try configuration.mergePolicy(),
            store: store, clients: clients, logger: logger, observer: observer)
    }
}

/// The sync engine as a ``Service``: runs its loops until graceful shutdown, then lets in-flight pushes
/// finish and returns. SIGUSR1 (sent by `caresync resync`) starts a pass of every peer at once.
public struct SyncEngineService: Service {
    let engine: SyncEngine
    let logger: Logger
    let wakeOnSignal: Bool

    /// Runs `engine`; with `wakeOnSignal`, SIGUSR1 wakes it.
    public init(engine: SyncEngine, logger: Logger, wakeOnSignal: Bool = true) {
        self.engine = engine
        self.logger = logger
        self.wakeOnSignal = wakeOnSignal
    }

    public func run() async throws {
        let engine = self.engine
        let logger = self.logger
        let wakeOnSignal = self.wakeOnSignal
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if wakeOnSignal {
                    group.addTask {
                        for await _ in await UnixSignalsSequence(trapping: .sigusr1) {
                            logger.notice("SIGUSR1: starting a sync pass now")
                            engine.wake()
                        }
                    }
                }
                await engine.run()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            logger.notice("shutting down: finishing in-flight pushes")
            engine.stop()
        }
    }
}
