import FHIRJSON
import GRDB

/// `batch` and `transaction` Bundles POSTed to the FHIR base.
///
/// - batch: every entry runs on its own (its own SQLite transaction for writes) and gets its own status;
///   a failing entry carries `response.outcome`, the Bundle answers 200.
/// - transaction: all entries in ONE SQLite transaction, in FHIR's order (DELETE, POST, PUT, GET);
///   `urn:uuid:` fullUrls of created resources become `Type/<new id>` and every `reference` to them is
///   rewritten; `request.ifMatch` / `request.ifNoneExist` apply per entry. Any failing entry rolls back
///   everything and the answer is that entry's status with an OperationOutcome naming `Bundle.entry[i]`.
extension FHIRService {
    /// One entry, read and prepared.
    private struct Entry: Sendable {
        var index: Int
        var label: String
        var fullUrl: String?
        var prepared: Result<Operation, StoreError>
    }

    func processBundle(_ bundle: JSONObject, kind: String, request: FHIRRequest, base: String) async throws -> FHIRResponse {
        let entries = try readEntries(bundle, request: request)
        let responses: [FHIRResponse]
        if kind == "transaction" {
            responses = try await runTransaction(entries, base: base)
        } else {
            responses = await runBatch(entries, base: base)
        }
        var writer = BundleWriter(type: kind + "-response", lastUpdated: clock.instant(clock.now()))
        for response in responses {
            var members: [JSONMember] = []
            var outcome = JSONObject([JSONMember("status", .string(HTTPStatusText.line(response.status)))])
            if let location = response.location { outcome["location"] = .string(location) }
            if let version = response.versionId { outcome["etag"] = .string("W/\"\(version)\"") }
            if let lastModified = response.lastModified { outcome["lastModified"] = .string(clock.instant(lastModified)) }
            var resource = response.body
            if response.status >= 400, let body = response.body, let parsed = try? JSON.parse(body) {
                outcome["outcome"] = parsed
                resource = nil
            } else if request.returnPreference != .representation && response.bodyIsWrittenResource {
                resource = nil
            }
            members.append(JSONMember("response", .object(outcome)))
            let fullUrl = response.location.map { location in
                "\(base)/" + location.split(separator: "/").prefix(2).joined(separator: "/")
            }
            writer.addEntry(fullUrl: resource == nil ? nil : fullUrl, resource: resource, members: members)
        }
        return FHIRResponse(status: 200, body: writer.finish())
    }

    private func readEntries(_ bundle: JSONObject, request: FHIRRequest) throws(StoreError) -> [Entry] {
        let values: [JSON]
        switch bundle["entry"] {
        case nil: values = []
        case .array(let array)?: values = array
        case let other?: throw StoreError(400, "structure", "Bundle.entry must be an array, not \(other.kindName)", expression: ["Bundle.entry"])
        }
        return values.enumerated().map { index, value in
            let method = value["request"]?["method"]?.stringValue
            let url = value["request"]?["url"]?.stringValue
            let label = "Bundle.entry[\(index)]" + (method.map { " (\($0) \(url ?? "?"))" } ?? "")
            return Entry(
                index: index,
                label: label,
                fullUrl: value["fullUrl"]?.stringValue,
                prepared: Result { () throws(StoreError) in try prepareEntry(value, index: index, outer: request) }
            )
        }
    }

    private func prepareEntry(_ entry: JSON, index: Int, outer: FHIRRequest) throws(StoreError) -> Operation {
        let path = "Bundle.entry[\(index)].request"
        guard let request = entry["request"]?.objectValue else {
            throw StoreError(400, "required", "the entry has no request", expression: [path])
        }
        guard let method = request["method"]?.stringValue, ["GET", "POST", "PUT", "DELETE"].contains(method) else {
            throw StoreError(400, "value", "request.method must be GET, POST, PUT or DELETE", expression: [path + ".method"])
        }
        guard let url = request["url"]?.stringValue, !url.isEmpty else {
            throw StoreError(400, "required", "request.url is missing", expression: [path + ".url"])
        }
        var relative = Substring(url)
        if url.hasPrefix("http://") || url.hasPrefix("https://") {
            // An absolute URL: keep what follows the FHIR base (`…/fhir/`).
            let marker = Array("/fhir/".utf8)
            let bytes = Array(url.utf8)
            guard let start = (0...(bytes.count - marker.count)).first(where: { bytes[$0..<$0 + marker.count].elementsEqual(marker) }) else {
                throw StoreError(400, "value", "request.url \(url) is not under this server's FHIR base", expression: [path + ".url"])
            }
            relative = Substring(String(decoding: bytes[(start + marker.count)...], as: UTF8.self))
        }
        while relative.first == "/" { relative = relative.dropFirst() }
        let pathPart = relative.firstIndex(of: "?").map { relative[..<$0] } ?? relative
        let queryPart = relative.firstIndex(of: "?").map { relative[relative.index(after: $0)...] } ?? ""
        var body = FHIRRequest.Body.none
        if let resource = entry["resource"] { body = .json(resource) }
        let entryRequest = FHIRRequest(
            method: method,
            path: pathPart.split(separator: "/").map { QueryItem.percentDecode($0) },
            query: QueryItem.parse(queryPart),
            ifMatch: request["ifMatch"]?.stringValue,
            ifNoneExist: request["ifNoneExist"]?.stringValue,
            lenient: outer.lenient,
            body: body
        )
        guard !entryRequest.path.isEmpty else {
            throw StoreError(400, "not-supported", "request.url must name a resource type; Bundles do not nest", expression: [path + ".url"])
        }
        do {
            return try prepare(entryRequest)
        } catch {
            if error.status == 422 {
                var error = error
                error.issues = error.issues.map { issue in
                    var issue = issue
                    issue.expression = issue.expression.map { expression in
                        // `CarePlan.id` becomes `Bundle.entry[2].resource.id`.
                        let type = entryRequest.path[0] + "."
                        let field = expression.hasPrefix(type) ? String(expression.dropFirst(type.count)) : expression
                        return "Bundle.entry[\(index)].resource.\(field)"
                    }
                    return issue
                }
                throw error
            }
            throw error
        }
    }

    // MARK: batch

    private func runBatch(_ entries: [Entry], base: String) async -> [FHIRResponse] {
        var responses: [FHIRResponse] = []
        for entry in entries {
            do {
                let operation = try entry.prepared.get()
                if operation.isWrite {
                    responses.append(try await write { db in try self.execute(operation, in: db, base: base) })
                } else {
                    let time = clock.searchTime()
                    responses.append(try await database.pool.read { db in try self.execute(operation, in: db, base: base, time: time) })
                }
            } catch let error as StoreError {
                responses.append(FHIRResponse(error: error))
            } catch {
                responses.append(FHIRResponse(error: StoreError(500, "exception", "the store failed on this entry: \(error)")))
            }
        }
        return responses
    }

    // MARK: transaction

    private func runTransaction(_ entries: [Entry], base: String) async throws -> [FHIRResponse] {
        var prepared: [Operation] = []
        var touched: [String: Int] = [:]
        for entry in entries {
            let operation: Operation
            do {
                operation = try entry.prepared.get()
            } catch {
                throw Self.named(error, entry.label)
            }
            switch operation {
            case .update(let type, let id, _, _), .delete(let type, let id, _):
                if let earlier = touched["\(type)/\(id)"] {
                    throw StoreError(
                        400,
                        "duplicate",
                        "\(entry.label): \(type)/\(id) is also changed by Bundle.entry[\(earlier)]; a transaction changes a resource once",
                        expression: ["Bundle.entry[\(entry.index)]"]
                    )
                }
                touched["\(type)/\(id)"] = entry.index
            default: break
            }
            prepared.append(operation)
        }
        let operations = prepared
        let order = Self.processingOrder(operations)

        // Ids for the creates are chosen now, so references to `urn:uuid:` placeholders are rewritten (and
        // the resources serialised) before the write transaction; only a conditional create that finds an
        // existing resource behind a placeholder makes the writer redo that.
        var assigned: [Int: String] = [:]
        var placeholders: [String: String] = [:]
        for (index, operation) in operations.enumerated() {
            let placeholder = entries[index].fullUrl.flatMap { $0.hasPrefix("urn:") ? $0 : nil }
            switch operation {
            case .create(let type, _, _):
                let id = UUIDText.timeOrdered(milliseconds: clock.now())
                assigned[index] = id
                if let placeholder { placeholders[placeholder] = "\(type)/\(id)" }
            case .update(let type, let id, _, _):
                if let placeholder { placeholders[placeholder] = "\(type)/\(id)" }
            default: break
            }
        }
        let rewritten = try Self.rewritingReferences(operations, entries: entries, placeholders: placeholders)
        let (ids, declared) = (assigned, placeholders)
        return try await write { db in
            var planned = rewritten
            var existing: [Int: String] = [:]
            var adjusted = declared
            for index in order {
                guard case .create(let type, _, let condition?) = planned[index] else { continue }
                let matches: [String]
                do { matches = try self.matches(db, condition, limit: 2) } catch { throw Self.named(error, entries[index].label) }
                if matches.count > 1 {
                    throw Self.named(
                        StoreError(412, "multiple-matches", "ifNoneExist matches more than one \(type)", expression: ["If-None-Exist"]),
                        entries[index].label
                    )
                }
                if let match = matches.first {
                    existing[index] = match
                    if let placeholder = entries[index].fullUrl, adjusted[placeholder] != nil { adjusted[placeholder] = "\(type)/\(match)" }
                }
            }
            if adjusted != declared {
                planned = try Self.rewritingReferences(operations, entries: entries, placeholders: adjusted)
            }
            var responses = [FHIRResponse?](repeating: nil, count: entries.count)
            for index in order {
                do {
                    switch planned[index] {
                    case .create(let type, let resource, _):
                        if let id = existing[index] {
                            var response = try self.read(db, type: type, id: id)
                            response.location = "\(type)/\(id)/_history/\(response.versionId ?? 1)"
                            response.bodyIsWrittenResource = true
                            responses[index] = response
                        } else {
                            responses[index] = try self.store(
                                db,
                                type: type,
                                id: ids[index]!,
                                resource: resource,
                                version: 1,
                                method: "POST",
                                status: 201,
                                replacing: false
                            )
                        }
                    case .update(let type, let id, let resource, let ifMatch):
                        responses[index] = try self.update(db, type: type, id: id, resource: resource, ifMatch: ifMatch)
                    default:
                        responses[index] = try self.execute(planned[index], in: db, base: base)
                    }
                } catch {
                    throw Self.named(error, entries[index].label)
                }
            }
            return responses.map { $0! }
        }
    }

    /// `operations` with the references to placeholders in their resources replaced; resources without
    /// such references are kept as prepared.
    private static func rewritingReferences(_ operations: [Operation], entries: [Entry], placeholders: [String: String]) throws -> [Operation] {
        try operations.enumerated().map { index, operation in
            do {
                switch operation {
                case .create(let type, let resource, let condition):
                    guard let changed = try rewriteReferences(resource.resource, placeholders) else { return operation }
                    return .create(type: type, resource: PreparedResource(changed, type: type), ifNoneExist: condition)
                case .update(let type, let id, let resource, let ifMatch):
                    guard let changed = try rewriteReferences(resource.resource, placeholders) else { return operation }
                    return .update(type: type, id: id, resource: PreparedResource(changed, type: type), ifMatch: ifMatch)
                default:
                    return operation
                }
            } catch {
                throw named(error, entries[index].label)
            }
        }
    }

    /// FHIR's transaction order: DELETE, then POST, then PUT, then GET; request order within each.
    private static func processingOrder(_ operations: [Operation]) -> [Int] {
        func rank(_ operation: Operation) -> Int {
            switch operation {
            case .delete: 0
            case .create: 1
            case .update: 2
            default: 3
            }
        }
        return operations.indices.sorted { (rank(operations[$0]), $0) < (rank(operations[$1]), $1) }
    }

    /// `resource` with every `reference` to a placeholder (`urn:uuid:…`) replaced by `Type/id`; `nil` when
    /// nothing changed. A `urn:` reference that no entry declares is a 400.
    static func rewriteReferences(_ resource: JSONObject, _ placeholders: [String: String]) throws(StoreError) -> JSONObject? {
        var dangling: String?
        func rewrite(_ value: JSON) -> JSON? {
            switch value {
            case .object(let object):
                var result: JSONObject?
                for member in object.members {
                    var replacement: JSON?
                    if member.key == "reference", case .string(let target) = member.value, target.hasPrefix("urn:") {
                        guard let resolved = placeholders[target] else {
                            dangling = dangling ?? target
                            continue
                        }
                        replacement = .string(resolved)
                    } else if case .object = member.value {
                        replacement = rewrite(member.value)
                    } else if case .array = member.value {
                        replacement = rewrite(member.value)
                    }
                    if let replacement {
                        if result == nil { result = object }
                        result![member.key] = replacement
                    }
                }
                return result.map { .object($0) }
            case .array(let elements):
                var result: [JSON]?
                for (position, element) in elements.enumerated() {
                    if let replacement = rewrite(element) {
                        if result == nil { result = elements }
                        result![position] = replacement
                    }
                }
                return result.map { .array($0) }
            default:
                return nil
            }
        }
        let rewritten = rewrite(.object(resource))?.objectValue
        if let dangling {
            let type = resource["resourceType"]?.stringValue ?? "Resource"
            throw StoreError(
                400,
                "not-found",
                "\(type) refers to \(dangling), which is not the fullUrl of any entry in this transaction",
                expression: [type]
            )
        }
        return rewritten
    }

    /// `error` as a StoreError whose diagnostics name the failing entry.
    private static func named(_ error: any Error, _ label: String) -> StoreError {
        let storeError = (error as? StoreError) ?? StoreError(500, "exception", "the store failed: \(error)")
        return storeError.prefixed("\(label): ")
    }
}
