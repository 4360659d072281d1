import CaresyncHTTP
import CaresyncTestSupport
import FHIRClient
import FHIRJSON
import FHIRModel
import Foundation
import Logging
import MergeCore
import StateStore
import SyncEngine
import Testing

/// A `caresync-store` child process on loopback, restartable on the same port with the same database.
final class StoreChild: @unchecked Sendable {
    let name: String
    let databasePath: String
    private(set) var process: ChildProcess
    private(set) var port: Int
    let arguments: [String]

    init(name: String, directory: TemporaryDirectory, arguments: [String] = []) async throws {
        self.name = name
        self.databasePath = directory.path("\(name).sqlite").path
        self.arguments = arguments
        (process, port) = try await Self.start(databasePath: databasePath, listen: "127.0.0.1:0", arguments: arguments)
    }

    var baseURL: String { "http://127.0.0.1:\(port)/fhir" }

    static func start(databasePath: String, listen: String, arguments: [String]) async throws -> (ChildProcess, Int) {
        let process = try ChildProcess(
            executable: try TestPaths.product("caresync-store"),
            arguments: ["--listen", listen, "--db", databasePath, "--log-level", "error"] + arguments)
        let first = try await process.waitForLine { $0.hasPrefix("listening on") }
        let prefix = "listening on 127.0.0.1:"
        guard first.hasPrefix(prefix), let port = Int(first.dropFirst(prefix.count)) else {
            throw TestFailure("caresync-store announced \(first)")
        }
        return (process, port)
    }

    /// SIGTERM and wait.
    func stop() async throws {
        process.send(SIGTERM)
        try await process.waitForExit()
    }

    /// Starts again on the same port and database.
    func restart() async throws {
        var lastError: (any Error)?
        for _ in 0..<50 {
            do {
                (process, port) = try await Self.start(databasePath: databasePath, listen: "127.0.0.1:\(port)", arguments: arguments)
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        throw lastError ?? TestFailure("could not restart \(name)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A hub and providers on loopback, an HTTP client, and FHIR clients for the tests' own reads and writes.
final class Cluster: @unchecked Sendable {
    let directory: TemporaryDirectory
    let http = HTTPClient()
    let hub: StoreChild
    let providers: [StoreChild]
    let topology: SyncTopology
    var stateDirectory: String { directory.path("state").path }

    /// `providers` as (name, ODS, mode); every store gets `storeArguments` (the hub also `hubArguments`).
    init(
        providers specs: [(String, String, PeerMode)] = [("trust-a", "RA1", .readWrite), ("trust-b", "RB2", .readWrite)],
        storeArguments: [String] = [], hubArguments: [String] = []
    ) async throws {
        directory = try TemporaryDirectory(prefix: "caresync-sync-test")
        hub = try await StoreChild(name: "hub", directory: directory, arguments: storeArguments + hubArguments)
        var children: [StoreChild] = []
        for spec in specs {
            children.append(try await StoreChild(name: spec.0, directory: directory, arguments: storeArguments))
        }
        providers = children
        topology = SyncTopology(
            hub: SyncPeer(name: "hub", ods: "QWE", mode: .hub, baseURL: hub.baseURL),
            providers: zip(specs, children).map { spec, child in
                SyncPeer(name: spec.0, ods: spec.1, mode: spec.2, baseURL: child.baseURL)
            })
    }

    deinit {
        http.shutdown()
        directory.remove()
    }

    func store(_ name: String) -> StoreChild {
        name == "hub" ? hub : providers.first { $0.name == name }!
    }

    func client(_ name: String) throws -> FHIRClient {
        let child = store(name)
        return try FHIRClient(endpoint: FHIREndpoint(name: name, baseURL: child.baseURL), http: http)
    }

    /// An engine over a writer store in the cluster's state directory. Close the returned store when done.
    func engine(settings: EngineSettings = Cluster.fastSettings, clientOverrides: [String: any SyncPeerClient] = [:]) async throws
        -> (SyncEngine, SQLiteStateStore)
    {
        let store = try SQLiteStateStore.open(directory: stateDirectory, access: .writer)
        var clients: [String: any SyncPeerClient] = [:]
        for peer in topology.peers { clients[peer.name] = try client(peer.name) }
        for (name, client) in clientOverrides { clients[name] = client }
        var logger = Logger(label: "sync-test")
        logger.logLevel = .critical
        let engine = SyncEngine(
            topology: topology, settings: settings, policy: MergePolicy.default, store: store, clients: clients, logger: logger)
        try await engine.start()
        return (engine, store)
    }

    static let fastSettings = EngineSettings(
        interval: .milliseconds(200), pageSize: 50, clockSkewMargin: .seconds(2), pushBatchSize: 25, mergeBatchSize: 50)

    /// Runs one engine until quiescent and closes its store.
    @discardableResult
    func sync(settings: EngineSettings = Cluster.fastSettings) async throws -> SyncReport {
        let (engine, store) = try await engine(settings: settings)
        defer { store.close() }
        return try await engine.syncUntilQuiescent()
    }

    // MARK: Records

    /// Creates `resource` at `peer`; returns its id there.
    @discardableResult
    func create(_ peer: String, _ resource: JSON) async throws -> String {
        let type = ResourceType(rawValue: resource["resourceType"]!.stringValue!)!
        let result = try await client(peer).create(type, body: resource.serialized(), ifNoneExist: nil, requestID: RequestIdentifier.make())
        return result.localID
    }

    /// Every current record of `type` at `peer` (all pages).
    func all(_ peer: String, _ type: ResourceType) async throws -> [JSON] {
        let client = try client(peer)
        var page = try await client.search(type, [("_count", "200")])
        var resources = page.resources
        while let next = page.next {
            page = try await client.next(next, expecting: "searchset")
            resources += page.resources
        }
        return resources
    }

    /// The record with business identifier `token` (`system|value`) at `peer`, if any.
    func record(_ peer: String, _ type: ResourceType, _ token: String) async throws -> JSON? {
        let page = try await client(peer).search(type, [("identifier", token)])
        #expect(page.resources.count <= 1, "\(peer) holds \(page.resources.count) \(type.rawValue) with \(token)")
        return page.resources.first
    }

    /// Reads the record with identifier `token` at `peer`, changes it and writes it back with `If-Match`.
    func edit(_ peer: String, _ type: ResourceType, _ token: String, _ change: (inout JSON) -> Void) async throws {
        guard var resource = try await record(peer, type, token), let id = resource["id"]?.stringValue else {
            throw TestFailure("\(peer) has no \(type.rawValue) \(token)")
        }
        let version = resource["meta"]?["versionId"]?.stringValue
        change(&resource)
        _ = try await client(peer).update(
            type, id: id, body: resource.serialized(), ifMatchVersion: version, requestID: RequestIdentifier.make())
    }

    /// Every record of every synchronised type at `peer`, by the first business identifier.
    func recordsByIdentifier(_ peer: String) async throws -> [String: [JSON]] {
        var byKey: [String: [JSON]] = [:]
        for type in ResourceType.synchronised {
            for resource in try await all(peer, type) {
                let key = ResourceIdentity(resource)?.globalKey?.description ?? "no-identifier:\(resource["id"]?.stringValue ?? "?")"
                byKey[key, default: []].append(resource)
            }
        }
        return byKey
    }

    /// Checks that every record appears once per peer, that every provider record is at the hub, and that
    /// every copy of a record is equal in meaning (canonical JSON, id and meta aside).
    func expectConverged(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let hubRecords = try await recordsByIdentifier("hub")
        for (key, copies) in hubRecords {
            #expect(copies.count == 1, "hub holds \(copies.count) copies of \(key)", sourceLocation: sourceLocation)
        }
        for provider in providers {
            let records = try await recordsByIdentifier(provider.name)
            for (key, copies) in records {
                #expect(copies.count == 1, "\(provider.name) holds \(copies.count) copies of \(key)", sourceLocation: sourceLocation)
                guard let hubCopy = hubRecords[key]?.first else {
                    Issue.record("\(key) of \(provider.name) is missing at the hub", sourceLocation: sourceLocation)
                    continue
                }
                #expect(
                    Canonical.content(copies[0]) == Canonical.content(hubCopy),
                    "\(key) differs between \(provider.name) and the hub:\n\(Canonical.content(copies[0]))\n\(Canonical.content(hubCopy))",
                    sourceLocation: sourceLocation)
            }
        }
    }
}

/// Canonical text of a record's content: `id` and `meta` set aside.
enum Canonical {
    static func content(_ resource: JSON) -> String {
        var copy = resource
        copy["id"] = nil
        copy["meta"] = nil
        return String(decoding: copy.canonicalBytes, as: UTF8.self)
    }
}
