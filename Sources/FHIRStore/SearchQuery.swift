import GRDB

/// Where a page starts: after (or, newest first, before) the version with this `(lastUpdated, seq)`.
struct PageCursor: Sendable, Hashable {
    var lastUpdated: Int64
    var seq: Int64

    /// The `_cursor` parameter value, `<lastUpdated>-<seq>`. Clients treat it as opaque.
    var text: String { "\(lastUpdated)-\(seq)" }

    init(lastUpdated: Int64, seq: Int64) {
        self.lastUpdated = lastUpdated
        self.seq = seq
    }

    init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let lastUpdated = Int64(parts[0]), let seq = Int64(parts[1]) else { return nil }
        self.init(lastUpdated: lastUpdated, seq: seq)
    }
}

/// Paging and format parameters that search and history share.
struct PagingOptions: Sendable {
    /// Default page size when `_count` is absent.
    static let defaultCount = 100
    /// Largest page; a bigger `_count` is reduced to it.
    static let maximumCount = 1000

    var count = PagingOptions.defaultCount
    var cursor: PageCursor?

    /// Handles `_count`, `_cursor`, `_format` and `_pretty`; `false` when `item` is none of these.
    mutating func accept(_ item: QueryItem) throws(StoreError) -> Bool {
        switch item.name {
        case "_count":
            guard let value = Int(item.value), value >= 0 else {
                throw StoreError.invalid("_count must be a whole number of 0 or more", expression: ["_count"])
            }
            count = min(value, PagingOptions.maximumCount)
        case "_cursor":
            guard let cursor = PageCursor(item.value) else {
                throw StoreError.invalid("_cursor is not a paging position this server issued", expression: ["_cursor"])
            }
            self.cursor = cursor
        case "_format":
            let json = ["json", "application/json", "application/fhir+json"]
            guard json.contains(where: { item.value.hasPrefix($0) }) else {
                throw StoreError(406, "not-supported", "this server speaks JSON only (_format=\(item.value))", expression: ["_format"])
            }
        case "_pretty":
            break  // accepted; responses are always compact
        default:
            return false
        }
        return true
    }
}

/// A parsed type-level search: filters (ANDed), order, page size, and the parameters echoed in links.
struct SearchQuery: Sendable {
    enum Comparison: String, Sendable { case eq, gt, ge, lt, le }

    enum Clause: Sendable {
        /// `_lastUpdated` against a range.
        case lastUpdated(Comparison, DateRange)
        /// `_id` (any of).
        case ids([String])
        /// An indexed token parameter (any of the values).
        case tokens(param: String, [TokenValue])
    }

    var type: String
    var clauses: [Clause] = []
    var paging = PagingOptions()
    var descending = false
    /// `_summary=count` or `_count=0`: the total only.
    var countOnly = false
    /// `_total=accurate|estimate`: include `Bundle.total` on every page.
    var includeTotal = false
    /// The parameters the search used, for the `self` and `next` links (never `_cursor`).
    var linkItems: [QueryItem] = []

    /// Parses `items` as a search on `type`. Unknown parameters are a 400 unless `lenient`, when they are
    /// left out (and out of the `self` link). With `filtersOnly` (If-None-Exist), only filters are allowed.
    init(type: String, items: [QueryItem], lenient: Bool, filtersOnly: Bool = false) throws(StoreError) {
        self.type = type
        let references = SearchParameters.references(of: type)
        for item in items {
            let (name, modifier) = SearchQuery.split(item.name)
            if !filtersOnly, modifier == nil {
                if try paging.accept(item) {
                    if item.name != "_cursor" { linkItems.append(item) }
                    continue
                }
                if try acceptResultParameter(item, lenient: lenient) { continue }
            }
            if name == "_lastUpdated", modifier == nil {
                clauses.append(try SearchQuery.dateClause(item))
            } else if name == "_id", modifier == nil {
                let ids = item.value.split(separator: ",").map(String.init)
                guard !ids.isEmpty else { throw StoreError.invalid("_id needs a value", expression: ["_id"]) }
                clauses.append(.ids(ids))
            } else if name == "identifier", modifier == nil {
                clauses.append(.tokens(param: "identifier", try SearchQuery.tokenValues(item)))
            } else if let reference = references.first(where: { $0.name == name }),
                modifier == nil || modifier == "identifier" || modifier.map(reference.targets.contains) == true
            {
                if modifier == "identifier" {
                    clauses.append(.tokens(param: name + ":identifier", try SearchQuery.tokenValues(item)))
                } else {
                    let targets = modifier.map { [$0] } ?? reference.targets
                    clauses.append(.tokens(param: name, try SearchQuery.referenceValues(item, targets: targets)))
                }
            } else if lenient {
                continue
            } else {
                throw StoreError(
                    400,
                    "not-supported",
                    "search parameter \(item.name) is not supported for \(type) by this server "
                        + "(send Prefer: handling=lenient to ignore it); see /metadata",
                    expression: [item.name]
                )
            }
            linkItems.append(item)
        }
        if paging.count == 0 { countOnly = true }
    }

    /// `_sort`, `_summary`, `_total`: `true` when handled, `false` when `item` is another parameter.
    private mutating func acceptResultParameter(_ item: QueryItem, lenient: Bool) throws(StoreError) -> Bool {
        var supported = true
        switch item.name {
        case "_sort":
            switch item.value {
            case "_lastUpdated": descending = false
            case "-_lastUpdated": descending = true
            default: supported = false
            }
        case "_summary":
            switch item.value {
            case "count": countOnly = true
            case "false": break
            default: supported = false
            }
        case "_total":
            switch item.value {
            case "accurate", "estimate": includeTotal = true
            case "none": includeTotal = false
            default: supported = false
            }
        default:
            return false
        }
        if supported {
            linkItems.append(item)
        } else if !lenient {
            throw StoreError(
                400,
                "not-supported",
                "\(item.name)=\(item.value) is not supported (supported: _sort=_lastUpdated|-_lastUpdated, "
                    + "_summary=count|false, _total=none|estimate|accurate)",
                expression: [item.name]
            )
        }
        return true
    }

    private static func split(_ name: String) -> (String, String?) {
        guard let colon = name.firstIndex(of: ":") else { return (name, nil) }
        return (String(name[..<colon]), String(name[name.index(after: colon)...]))
    }

    static func dateClause(_ item: QueryItem) throws(StoreError) -> Clause {
        var text = Substring(item.value)
        var comparison = Comparison.eq
        if text.count > 2, let prefix = Comparison(rawValue: String(text.prefix(2))) {
            comparison = prefix
            text = text.dropFirst(2)
        } else if let first = text.first, first.isLetter {
            throw StoreError.invalid(
                "\(item.name) supports the prefixes eq, gt, ge, lt and le only",
                expression: [item.name]
            )
        }
        guard let range = DateRange(String(text)) else {
            throw StoreError.invalid(
                "\(item.name) value is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm])",
                expression: [item.name]
            )
        }
        return .lastUpdated(comparison, range)
    }

    private static func tokenValues(_ item: QueryItem) throws(StoreError) -> [TokenValue] {
        let values = item.value.split(separator: ",").map { TokenValue(String($0)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
            throw StoreError.invalid("\(item.name) needs a token: value, system|value, |value or system|", expression: [item.name])
        }
        return values.compactMap { $0 }
    }

    private static func referenceValues(_ item: QueryItem, targets: [String]) throws(StoreError) -> [TokenValue] {
        var values: [TokenValue] = []
        for piece in item.value.split(separator: ",").map(String.init) {
            if let literal = SearchParameters.literalReference(piece) {
                guard targets.contains(literal.type) else {
                    throw StoreError.invalid("\(item.name) refers to \(targets.joined(separator: " or ")), not \(literal.type)", expression: [item.name])
                }
                values.append(TokenValue(system: nil, value: "\(literal.type)/\(literal.id)"))
            } else if ResourceCheck.isValidID(piece) {
                values += targets.map { TokenValue(system: nil, value: "\($0)/\(piece)") }
            } else {
                throw StoreError.invalid("\(item.name) needs a reference such as Patient/123 or an id", expression: [item.name])
            }
        }
        guard !values.isEmpty else { throw StoreError.invalid("\(item.name) needs a value", expression: [item.name]) }
        return values
    }

    // MARK: SQL

    /// The `WHERE` conditions of the filters, on the `resource` table aliased `r`.
    func filterSQL() -> (sql: String, arguments: [any DatabaseValueConvertible]) {
        // With an id or token (identifier, patient) filter, the few matching ids drive the query through the
        // primary key; `+` keeps SQLite from scanning every resource of the type by `resource_by_time`
        // instead (which made each If-None-Exist and identifier search cost O(resources of the type)).
        let selective = clauses.contains { clause in
            switch clause {
            case .ids, .tokens: true
            default: false
            }
        }
        var conditions = ["r.type = ?", selective ? "+r.deleted = 0" : "r.deleted = 0"]
        var arguments: [any DatabaseValueConvertible] = [type]
        for clause in clauses {
            switch clause {
            case .lastUpdated(let comparison, let range):
                switch comparison {
                case .eq:
                    conditions.append("r.last_updated >= ? AND r.last_updated < ?")
                    arguments += [range.lowerBound, range.upperBound]
                case .gt:
                    conditions.append("r.last_updated >= ?")
                    arguments.append(range.upperBound)
                case .ge:
                    conditions.append("r.last_updated >= ?")
                    arguments.append(range.lowerBound)
                case .lt:
                    conditions.append("r.last_updated < ?")
                    arguments.append(range.lowerBound)
                case .le:
                    conditions.append("r.last_updated < ?")
                    arguments.append(range.upperBound)
                }
            case .ids(let ids):
                conditions.append("r.id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))")
                arguments += ids
            case .tokens(let param, let values):
                var alternatives: [String] = []
                var tokenArguments: [any DatabaseValueConvertible] = [type, param]
                for value in values {
                    var parts: [String] = []
                    if let system = value.system {
                        parts.append("system = ?")
                        tokenArguments.append(system)
                    }
                    if let text = value.value {
                        parts.append("value = ?")
                        tokenArguments.append(text)
                    }
                    alternatives.append("(" + parts.joined(separator: " AND ") + ")")
                }
                conditions.append(
                    "r.id IN (SELECT id FROM search_token WHERE type = ? AND param = ? AND ("
                        + alternatives.joined(separator: " OR ") + "))"
                )
                arguments += tokenArguments
            }
        }
        return (conditions.joined(separator: " AND "), arguments)
    }
}
