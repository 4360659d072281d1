import FHIRJSON
import GRDB

/// The FHIR interactions of the store, independent of HTTP: a ``FHIRRequest`` in, a ``FHIRResponse`` out.
///
/// Each request is first *prepared* (route, body parse, validation, search parse — no database) into an
/// ``Operation``, then *executed* against the database: reads on a pooled reader, writes on the single
/// writer, each atomically (``GroupCommitWriter``). Bundle entries go through the same two steps, which
/// is how a transaction runs all its entries in one SQLite transaction.
final class FHIRService: Sendable {
    let database: ResourceDatabase
    let clock: ServerClock
    let configuration: StoreConfiguration
    /// When this store started, for `CapabilityStatement.date`.
    let startedAt: String
    private let writer: GroupCommitWriter

    init(database: ResourceDatabase, clock: ServerClock, configuration: StoreConfiguration) {
        self.database = database
        self.clock = clock
        self.configuration = configuration
        self.startedAt = clock.instant(clock.now())
        self.writer = GroupCommitWriter(pool: database.pool, clock: clock)
    }

    /// Answers `request`; `base` is the absolute FHIR base URL (`http://host:port/fhir`) for links.
    func handle(_ request: FHIRRequest, base: String) async -> FHIRResponse {
        do {
            let operation = try prepare(request)
            switch operation {
            case .bundle(let bundle, let kind):
                return try await processBundle(bundle, kind: kind, request: request, base: base)
            case .capabilities:
                return FHIRResponse(status: 200, body: CapabilityStatement.make(base: base, date: startedAt, configuration: configuration).serialized())
            default:
                if operation.isWrite {
                    return try await write { db in try self.execute(operation, in: db, base: base) }
                }
                let time = clock.searchTime()
                return try await database.pool.read { db in try self.execute(operation, in: db, base: base, time: time) }
            }
        } catch let error as StoreError {
            return FHIRResponse(error: error)
        } catch {
            return FHIRResponse(error: StoreError(500, "exception", "the store failed to process the request: \(error)"))
        }
    }

    /// Runs `body` atomically on the writer (group commit, see ``GroupCommitWriter``).
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await writer.write(body)
    }

    // MARK: Prepare

    /// What a request asks for, parsed and checked, ready to run against the database.
    enum Operation: Sendable {
        case capabilities
        case read(type: String, id: String)
        case vread(type: String, id: String, version: String)
        case search(SearchQuery)
        case history(type: String?, id: String?, HistoryQuery)
        case create(type: String, resource: PreparedResource, ifNoneExist: SearchQuery?)
        case update(type: String, id: String, resource: PreparedResource, ifMatch: Int?)
        case delete(type: String, id: String, ifMatch: Int?)
        case bundle(JSONObject, kind: String)

        var isWrite: Bool {
            switch self {
            case .create, .update, .delete, .bundle: true
            default: false
            }
        }
    }

    func prepare(_ request: FHIRRequest) throws(StoreError) -> Operation {
        let path = request.path
        let method = request.method
        guard let first = path.first else {
            guard method == "POST" else { throw methodNotAllowed(method, "the FHIR base", allowed: "POST (batch or transaction)") }
            let bundle = try parseObject(request.body)
            guard bundle["resourceType"]?.stringValue == "Bundle" else {
                throw StoreError(422, "invalid", "a POST to the FHIR base takes a Bundle of type batch or transaction", expression: ["resourceType"])
            }
            guard let kind = bundle["type"]?.stringValue, kind == "batch" || kind == "transaction" else {
                throw StoreError(422, "invalid", "Bundle.type must be batch or transaction here", expression: ["Bundle.type"])
            }
            return .bundle(bundle, kind: kind)
        }
        if first == "metadata" {
            guard path.count == 1 else { throw unknownRoute(path) }
            guard method == "GET" else { throw methodNotAllowed(method, "metadata", allowed: "GET") }
            return .capabilities
        }
        if first == "_history" {
            guard path.count == 1 else { throw unknownRoute(path) }
            guard method == "GET" else { throw methodNotAllowed(method, "_history", allowed: "GET") }
            return .history(type: nil, id: nil, try HistoryQuery(items: request.query, lenient: request.lenient))
        }
        guard ResourceCheck.isSupported(first) else {
            throw StoreError(
                404,
                "not-supported",
                "resource type \(first) is not supported by this server (supported: \(ResourceCheck.supportedTypes.joined(separator: ", ")))"
            )
        }
        let type = first
        switch path.count {
        case 1:
            switch method {
            case "GET":
                return .search(try SearchQuery(type: type, items: request.query, lenient: request.lenient))
            case "POST":
                let resource = try parseResource(request.body, type: type)
                let condition = try request.ifNoneExist.map { (header) throws(StoreError) in
                    try SearchQuery(type: type, items: Self.conditionItems(header), lenient: false, filtersOnly: true)
                }
                return .create(type: type, resource: PreparedResource(resource, type: type), ifNoneExist: condition)
            default:
                throw methodNotAllowed(method, type, allowed: "GET (search), POST (create)")
            }
        case 2 where path[1] == "_search":
            guard method == "POST" else { throw methodNotAllowed(method, "\(type)/_search", allowed: "POST") }
            var items = request.query
            if case .bytes(let bytes) = request.body {
                items += QueryItem.parse(String(decoding: bytes, as: UTF8.self))
            }
            return .search(try SearchQuery(type: type, items: items, lenient: request.lenient))
        case 2 where path[1] == "_history":
            guard method == "GET" else { throw methodNotAllowed(method, "\(type)/_history", allowed: "GET") }
            return .history(type: type, id: nil, try HistoryQuery(items: request.query, lenient: request.lenient))
        case 2:
            let id = try validID(path[1])
            switch method {
            case "GET":
                return .read(type: type, id: id)
            case "PUT":
                let resource = try parseResource(request.body, type: type)
                guard let bodyID = resource["id"]?.stringValue else {
                    throw StoreError.invalid("an update must carry the resource id (\(type).id) equal to the id in the URL", expression: ["\(type).id"])
                }
                guard bodyID == id else {
                    throw StoreError.invalid("\(type).id \(bodyID) does not match the id in the URL (\(id))", expression: ["\(type).id"])
                }
                return .update(
                    type: type,
                    id: id,
                    resource: PreparedResource(resource, type: type),
                    ifMatch: try request.ifMatch.map(Self.parseETag)
                )
            case "DELETE":
                return .delete(type: type, id: id, ifMatch: try request.ifMatch.map(Self.parseETag))
            default:
                throw methodNotAllowed(method, "\(type)/[id]", allowed: "GET (read), PUT (update), DELETE (delete)")
            }
        case 3 where path[2] == "_history":
            guard method == "GET" else { throw methodNotAllowed(method, "\(type)/[id]/_history", allowed: "GET") }
            return .history(type: type, id: try validID(path[1]), try HistoryQuery(items: request.query, lenient: request.lenient))
        case 4 where path[2] == "_history":
            guard method == "GET" else { throw methodNotAllowed(method, "\(type)/[id]/_history/[vid]", allowed: "GET") }
            return .vread(type: type, id: try validID(path[1]), version: path[3])
        default:
            throw unknownRoute(path)
        }
    }

    /// The body as a JSON object: 400 when it is not JSON or not an object.
    func parseObject(_ body: FHIRRequest.Body) throws(StoreError) -> JSONObject {
        let json: JSON
        switch body {
        case .none:
            throw StoreError(400, "required", "the request needs a JSON body")
        case .json(let value):
            json = value
        case .bytes(let bytes):
            do {
                json = try JSON.parse(bytes)
            } catch {
                throw StoreError(400, "structure", "the body is not valid JSON: \(error.description) [\(error.code.rawValue)]")
            }
        }
        guard let object = json.objectValue else {
            throw StoreError(400, "structure", "the body must be a JSON object (a FHIR resource), not \(json.kindName)")
        }
        return object
    }

    /// The body as a resource of `type`: 400 when unparseable, 422 when ``ResourceCheck`` finds problems.
    func parseResource(_ body: FHIRRequest.Body, type: String) throws(StoreError) -> JSONObject {
        let resource = try parseObject(body)
        let problems = ResourceCheck.problems(in: resource, expectedType: type, validation: configuration.validation)
        guard problems.isEmpty else { throw StoreError(status: 422, issues: problems) }
        return resource
    }

    private func validID(_ text: String) throws(StoreError) -> String {
        guard ResourceCheck.isValidID(text) else {
            throw StoreError.invalid("\(text) is not a valid FHIR id (1 to 64 of A-Z a-z 0-9 - .)")
        }
        return text
    }

    /// `If-None-Exist: identifier=s|v`, also written `CarePlan?identifier=s|v` or `?identifier=s|v`.
    static func conditionItems(_ header: String) -> [QueryItem] {
        let query = header.firstIndex(of: "?").map { header[header.index(after: $0)...] } ?? Substring(header)
        return QueryItem.parse(query)
    }

    /// `W/"3"` or `"3"` → 3.
    static func parseETag(_ text: String) throws(StoreError) -> Int {
        var value = Substring(text.trimmingSpaces)
        if value.hasPrefix("W/") { value = value.dropFirst(2) }
        if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
        guard let version = Int(value), version > 0 else {
            throw StoreError.invalid("If-Match must be a version ETag such as W/\"3\", not \(text)", expression: ["If-Match"])
        }
        return version
    }

    private func methodNotAllowed(_ method: String, _ route: String, allowed: String) -> StoreError {
        StoreError(405, "not-supported", "\(method) is not supported on \(route); allowed: \(allowed)")
    }

    private func unknownRoute(_ path: [String]) -> StoreError {
        StoreError.notFound("no FHIR interaction at /fhir/\(path.joined(separator: "/")); see /fhir/metadata")
    }

    // MARK: Execute

    /// Runs a prepared operation. `time` is the server time taken before the read began (searches).
    func execute(_ operation: Operation, in db: Database, base: String, time: Int64? = nil) throws -> FHIRResponse {
        switch operation {
        case .capabilities, .bundle:
            throw StoreError(400, "not-supported", "this interaction cannot be nested in a Bundle entry")
        case .read(let type, let id):
            return try read(db, type: type, id: id)
        case .vread(let type, let id, let version):
            return try vread(db, type: type, id: id, version: version)
        case .search(let query):
            return try search(db, query, base: base, time: time ?? clock.searchTime())
        case .history(let type, let id, let query):
            return try history(db, type: type, id: id, query, base: base, time: time ?? clock.searchTime())
        case .create(let type, let resource, let condition):
            if let condition {
                let existing = try matches(db, condition, limit: 2)
                if existing.count > 1 {
                    throw StoreError(
                        412,
                        "multiple-matches",
                        "If-None-Exist matches more than one \(type); the create was not done",
                        expression: ["If-None-Exist"]
                    )
                }
                if let id = existing.first {
                    var response = try read(db, type: type, id: id)
                    response.location = "\(type)/\(id)/_history/\(response.versionId ?? 1)"
                    response.bodyIsWrittenResource = true
                    return response
                }
            }
            return try store(db, type: type, id: UUIDText.timeOrdered(milliseconds: clock.now()), resource: resource, version: 1, method: "POST", status: 201, replacing: false)
        case .update(let type, let id, let resource, let ifMatch):
            return try update(db, type: type, id: id, resource: resource, ifMatch: ifMatch)
        case .delete(let type, let id, let ifMatch):
            return try delete(db, type: type, id: id, ifMatch: ifMatch)
        }
    }

    func read(_ db: Database, type: String, id: String) throws -> FHIRResponse {
        guard let current = try Tables.current(db, type: type, id: id) else {
            throw StoreError.notFound("\(type)/\(id) is not known to this server")
        }
        guard !current.deleted else {
            throw StoreError(410, "deleted", "\(type)/\(id) was deleted (version \(current.version))")
        }
        var response = FHIRResponse(status: 200, body: try Tables.body(db, seq: current.seq))
        response.versionId = current.version
        response.lastModified = current.lastUpdated
        return response
    }

    private func vread(_ db: Database, type: String, id: String, version text: String) throws -> FHIRResponse {
        guard let number = Int(text), let row = try Tables.version(db, type: type, id: id, version: number) else {
            throw StoreError.notFound("\(type)/\(id) has no version \(text)")
        }
        guard let body = row.body else {
            throw StoreError(410, "deleted", "version \(text) of \(type)/\(id) is its deletion")
        }
        var response = FHIRResponse(status: 200, body: body)
        response.versionId = row.version
        response.lastModified = row.lastUpdated
        return response
    }

    func update(_ db: Database, type: String, id: String, resource: PreparedResource, ifMatch: Int?) throws -> FHIRResponse {
        let current = try Tables.current(db, type: type, id: id)
        let live = current.flatMap { $0.deleted ? nil : $0 }
        if let expected = ifMatch {
            guard let live, live.version == expected else {
                let actual = live.map { "the current version is W/\"\($0.version)\"" }
                    ?? (current == nil ? "\(type)/\(id) does not exist" : "\(type)/\(id) is deleted")
                throw StoreError(
                    configuration.versionConflictStatus,
                    "conflict",
                    "version conflict: If-Match W/\"\(expected)\" but \(actual); re-read and retry",
                    expression: ["If-Match"]
                )
            }
        } else if configuration.requireIfMatch, let live {
            throw StoreError(
                428,
                "required",
                "this server requires If-Match on updates of existing resources (\(type)/\(id) is at W/\"\(live.version)\")",
                expression: ["If-Match"]
            )
        }
        let version = (current?.version ?? 0) + 1
        return try store(db, type: type, id: id, resource: resource, version: version, method: "PUT", status: live == nil ? 201 : 200, replacing: current != nil)
    }

    func delete(_ db: Database, type: String, id: String, ifMatch: Int?) throws -> FHIRResponse {
        guard let current = try Tables.current(db, type: type, id: id) else {
            throw StoreError.notFound("\(type)/\(id) is not known to this server")
        }
        var response = FHIRResponse(status: 204)
        response.versionId = current.version
        response.lastModified = current.lastUpdated
        if current.deleted { return response }
        if let expected = ifMatch, expected != current.version {
            throw StoreError(
                configuration.versionConflictStatus,
                "conflict",
                "version conflict: If-Match W/\"\(expected)\" but the current version is W/\"\(current.version)\"",
                expression: ["If-Match"]
            )
        }
        let stamp = clock.stampForWrite()
        _ = try Tables.append(db, type: type, id: id, version: current.version + 1, lastUpdated: stamp, method: "DELETE", body: nil)
        try Tables.index(db, type: type, id: id, tokens: [], replacing: true)
        response.versionId = current.version + 1
        response.lastModified = stamp
        return response
    }

    /// Writes a new version of `(type, id)`: server-set `id` and `meta.versionId/lastUpdated`, the version
    /// row, the current row and the search index.
    func store(
        _ db: Database,
        type: String,
        id: String,
        resource: PreparedResource,
        version: Int,
        method: String,
        status: Int,
        replacing: Bool
    ) throws -> FHIRResponse {
        let stamp = clock.stampForWrite()
        let bytes = resource.stored(id: id, version: version, lastUpdated: clock.instant(stamp))
        _ = try Tables.append(db, type: type, id: id, version: version, lastUpdated: stamp, method: method, body: bytes)
        try Tables.index(db, type: type, id: id, tokens: resource.tokens, replacing: replacing)
        var response = FHIRResponse(status: status, body: bytes)
        response.location = "\(type)/\(id)/_history/\(version)"
        response.versionId = version
        response.lastModified = stamp
        response.bodyIsWrittenResource = true
        return response
    }

    // MARK: Search and history

    /// The ids of current resources matching the filters of `query` (If-None-Exist), at most `limit`.
    func matches(_ db: Database, _ query: SearchQuery, limit: Int) throws -> [String] {
        let filter = query.filterSQL()
        let statement = try db.cachedStatement(sql: "SELECT r.id FROM resource r WHERE \(filter.sql) LIMIT \(limit)")
        return try String.fetchAll(statement, arguments: StatementArguments(filter.arguments))
    }

    private func search(_ db: Database, _ query: SearchQuery, base: String, time: Int64) throws -> FHIRResponse {
        let filter = query.filterSQL()
        var total: Int?
        if query.countOnly || query.includeTotal {
            let statement = try db.cachedStatement(sql: "SELECT count(*) FROM resource r WHERE \(filter.sql)")
            total = try Int.fetchOne(statement, arguments: StatementArguments(filter.arguments)) ?? 0
        }
        let selfLink = link(base: base, path: query.type, items: query.linkItems, cursor: query.paging.cursor)
        guard !query.countOnly else {
            let bundle = BundleWriter(type: "searchset", lastUpdated: clock.instant(time), total: total, links: [("self", selfLink)])
            return FHIRResponse(status: 200, body: bundle.finish())
        }
        var sql = "SELECT r.id, r.seq, r.last_updated, v.body FROM resource r JOIN version v ON v.seq = r.seq WHERE \(filter.sql)"
        var arguments = filter.arguments
        if let cursor = query.paging.cursor {
            sql += query.descending ? " AND (r.last_updated, r.seq) < (?, ?)" : " AND (r.last_updated, r.seq) > (?, ?)"
            arguments += [cursor.lastUpdated, cursor.seq]
        }
        sql += query.descending ? " ORDER BY r.last_updated DESC, r.seq DESC" : " ORDER BY r.last_updated, r.seq"
        sql += " LIMIT \(query.paging.count + 1)"
        let rows = try Row.fetchAll(try db.cachedStatement(sql: sql), arguments: StatementArguments(arguments))
        var links: [(relation: String, url: String)] = [("self", selfLink)]
        let page = rows.prefix(query.paging.count)
        if rows.count > query.paging.count, let last = page.last {
            let cursor = PageCursor(lastUpdated: last[2], seq: last[1])
            links.append(("next", link(base: base, path: query.type, items: query.linkItems, cursor: cursor)))
        }
        var bundle = BundleWriter(type: "searchset", lastUpdated: clock.instant(time), total: total, links: links)
        let mode = JSONMember("search", ["mode": "match"])
        for row in page {
            let id: String = row[0]
            bundle.addEntry(fullUrl: "\(base)/\(query.type)/\(id)", resource: Tables.bytes(row, 3), members: [mode])
        }
        return FHIRResponse(status: 200, body: bundle.finish())
    }

    private func history(_ db: Database, type: String?, id: String?, _ query: HistoryQuery, base: String, time: Int64) throws -> FHIRResponse {
        var conditions: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if let type {
            conditions.append("type = ?")
            arguments.append(type)
        }
        if let type, let id {
            guard try Tables.current(db, type: type, id: id) != nil else {
                throw StoreError.notFound("\(type)/\(id) is not known to this server")
            }
            conditions.append("id = ?")
            arguments.append(id)
        }
        if let since = query.since {
            conditions.append("last_updated >= ?")
            arguments.append(since)
        }
        var sql = "SELECT seq, type, id, version, last_updated, method, body FROM version"
        if type == nil {
            // System history: `seq` order is `(last_updated, seq)` order (stamps never go backwards).
            if let cursor = query.paging.cursor {
                conditions.append("seq < ?")
                arguments.append(cursor.seq)
            }
            if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
            sql += " ORDER BY seq DESC LIMIT \(query.paging.count + 1)"
        } else {
            if let cursor = query.paging.cursor {
                conditions.append("(last_updated, seq) < (?, ?)")
                arguments += [cursor.lastUpdated, cursor.seq]
            }
            sql += " WHERE " + conditions.joined(separator: " AND ")
            sql += " ORDER BY last_updated DESC, seq DESC LIMIT \(query.paging.count + 1)"
        }
        let rows = try Row.fetchAll(try db.cachedStatement(sql: sql), arguments: StatementArguments(arguments)).map(Tables.versionRow)
        let path = [type, id, "_history"].compactMap { $0 }.joined(separator: "/")
        var links: [(relation: String, url: String)] = [("self", link(base: base, path: path, items: query.linkItems, cursor: query.paging.cursor))]
        let page = rows.prefix(query.paging.count)
        if rows.count > query.paging.count, let last = page.last {
            let cursor = PageCursor(lastUpdated: last.lastUpdated, seq: last.seq)
            links.append(("next", link(base: base, path: path, items: query.linkItems, cursor: cursor)))
        }
        var bundle = BundleWriter(type: "history", lastUpdated: clock.instant(time), links: links)
        for row in page {
            let status = row.method == "DELETE" ? 204 : (row.version == 1 ? 201 : 200)
            var response = JSONObject([
                JSONMember("status", .string(HTTPStatusText.line(status))), JSONMember("etag", .string("W/\"\(row.version)\"")),
            ])
            response["lastModified"] = .string(clock.instant(row.lastUpdated))
            let url = row.method == "POST" ? row.type : "\(row.type)/\(row.id)"
            bundle.addEntry(
                fullUrl: "\(base)/\(row.type)/\(row.id)",
                resource: row.body,
                members: [
                    JSONMember("request", ["method": .string(row.method), "url": .string(url)]),
                    JSONMember("response", .object(response)),
                ]
            )
        }
        return FHIRResponse(status: 200, body: bundle.finish())
    }

    private func link(base: String, path: String, items: [QueryItem], cursor: PageCursor?) -> String {
        var all = items
        if let cursor { all.append(QueryItem(name: "_cursor", value: cursor.text)) }
        return all.isEmpty ? "\(base)/\(path)" : "\(base)/\(path)?\(QueryItem.encode(all))"
    }
}

/// A parsed `_history` request: `_since` (inclusive) and paging.
struct HistoryQuery: Sendable {
    var since: Int64?
    var paging = PagingOptions()
    var linkItems: [QueryItem] = []

    init(items: [QueryItem], lenient: Bool) throws(StoreError) {
        for item in items {
            if try paging.accept(item) {
                if item.name != "_cursor" { linkItems.append(item) }
            } else if item.name == "_since" {
                guard let range = DateRange(item.value) else {
                    throw StoreError.invalid("_since must be an instant such as 2025-04-01T09:30:00Z", expression: ["_since"])
                }
                since = range.lowerBound
                linkItems.append(item)
            } else if !lenient {
                throw StoreError(
                    400,
                    "not-supported",
                    "parameter \(item.name) is not supported on _history (supported: _since, _count)",
                    expression: [item.name]
                )
            }
        }
        if paging.count == 0 { paging.count = PagingOptions.defaultCount }
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
