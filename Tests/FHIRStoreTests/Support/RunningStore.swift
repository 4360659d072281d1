import CaresyncTestSupport
import FHIRJSON
import Foundation
import Testing

/// A built `caresync-store` started as a child process on port 0, with its own SQLite file.
final class RunningStore: Sendable {
    let process: ChildProcess
    let port: Int
    let databasePath: String
    let directory: TemporaryDirectory
    let client: HTTPTestClient

    /// Starts the store with `arguments` (beyond `--listen` and `--db`) and waits for its first line.
    init(_ arguments: [String] = [], directory: TemporaryDirectory? = nil) async throws {
        let directory = try directory ?? TemporaryDirectory(prefix: "caresync-store-test")
        self.directory = directory
        databasePath = directory.path("store.sqlite").path
        process = try ChildProcess(
            executable: try TestPaths.product("caresync-store"),
            arguments: ["--listen", "127.0.0.1:0", "--db", databasePath] + arguments
        )
        _ = try await process.waitForLine { !$0.isEmpty }
        let first = process.output[0]
        let prefix = "listening on 127.0.0.1:"
        guard first.hasPrefix(prefix), let port = Int(first.dropFirst(prefix.count)) else {
            throw StoreTestError("the first line of stdout is not `listening on 127.0.0.1:<port>`: \(first)")
        }
        self.port = port
        client = HTTPTestClient(port: port)
    }

    /// SIGTERM, then the exit status (the directory stays for a restart).
    @discardableResult
    func stop() async throws -> Int32 {
        process.send(SIGTERM)
        return try await process.waitForExit()
    }

    /// Stops the process if still running and removes the database directory.
    func remove() async {
        if process.process.isRunning { _ = try? await stop() }
        directory.remove()
    }

    // MARK: Shortcuts

    func get(_ path: String, headers: [(String, String)] = []) async throws -> HTTPAnswer {
        try await client.send("GET", "/fhir/" + path, headers: headers)
    }

    func post(_ path: String, _ json: String, headers: [(String, String)] = []) async throws -> HTTPAnswer {
        try await client.send("POST", "/fhir/" + path, headers: headers, json: json)
    }

    func put(_ path: String, _ json: String, headers: [(String, String)] = []) async throws -> HTTPAnswer {
        try await client.send("PUT", "/fhir/" + path, headers: headers, json: json)
    }

    func delete(_ path: String, headers: [(String, String)] = []) async throws -> HTTPAnswer {
        try await client.send("DELETE", "/fhir/" + path, headers: headers)
    }

    /// Creates `json` and returns the stored resource (expects 201).
    func create(_ type: String, _ json: String) async throws -> JSON {
        let answer = try await post(type, json)
        try #require(answer.status == 201, "create \(type) answered \(answer.status): \(answer.text)")
        return try answer.json()
    }

    /// Every entry of a search or history, following `next` links from `firstPath`.
    func collectPages(_ firstPath: String) async throws -> (entries: [JSON], pages: Int) {
        var entries: [JSON] = []
        var path: String? = "/fhir/" + firstPath
        var pages = 0
        while let current = path {
            let answer = try await client.send("GET", current)
            try #require(answer.status == 200, "GET \(current) answered \(answer.status): \(answer.text)")
            let bundle = try answer.json()
            entries += bundle["entry"]?.arrayValue ?? []
            pages += 1
            path = try Self.nextPath(bundle, port: port)
        }
        return (entries, pages)
    }

    /// The path of `Bundle.link[next]`, checked to be an absolute URL on this store's host.
    static func nextPath(_ bundle: JSON, port: Int) throws -> String? {
        guard let next = bundle["link"]?.arrayValue?.first(where: { $0["relation"]?.stringValue == "next" })?["url"]?.stringValue
        else { return nil }
        let origin = "http://127.0.0.1:\(port)"
        guard next.hasPrefix(origin + "/fhir/") else { throw StoreTestError("next link \(next) is not under \(origin)/fhir") }
        return String(next.dropFirst(origin.count))
    }
}

struct StoreTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` against a fresh store started with `arguments`, and stops the store afterwards, also when
/// `body` throws.
func withStore<T>(_ arguments: [String] = [], _ body: (RunningStore) async throws -> T) async throws -> T {
    let store = try await RunningStore(arguments)
    do {
        let result = try await body(store)
        await store.remove()
        return result
    } catch {
        await store.remove()
        throw error
    }
}
