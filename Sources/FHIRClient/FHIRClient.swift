public import CaresyncHTTP
public import FHIRJSON
public import FHIRModel
import Synchronization

/// Supplies the `Authorization` header for requests to one peer.
public protocol FHIRAuthorization: Sendable {
    /// The header value (`Bearer …`), or `nil` when the peer takes none.
    func authorizationHeader() async throws(FHIRClientError) -> String?
    /// Forgets a cached credential (the peer answered 401), so the next call obtains a new one.
    func invalidate() async
}

/// One HTTP exchange with a peer, for metrics.
public struct FHIRExchange: Sendable {
    public var peer: String
    public var method: String
    /// `nil` when no response arrived.
    public var status: Int?
    public var duration: Duration
}

/// A peer's FHIR endpoint: where it is and how to reach it.
public struct FHIREndpoint: Sendable, Hashable {
    /// The peer's short name (logs, metrics).
    public var name: String
    /// The FHIR base, e.g. `https://hub.example.nhs.uk/fhir` (a trailing `/` is dropped).
    public var baseURL: String
    public var tls: TLSConfiguration
    public var timeouts: HTTPTimeouts
    /// The largest response accepted (a whole search page).
    public var maximumResponseBytes: Int

    public init(
        name: String, baseURL: String, tls: TLSConfiguration = .default, timeouts: HTTPTimeouts = HTTPTimeouts(),
        maximumResponseBytes: Int = 64 << 20
    ) {
        self.name = name
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.tls = tls
        self.timeouts = timeouts
        self.maximumResponseBytes = maximumResponseBytes
    }
}

/// What a peer's `GET [base]/metadata` said.
public struct PeerCapabilities: Sendable, Hashable {
    /// `CapabilityStatement.fhirVersion`.
    public var fhirVersion: String?
    /// `CapabilityStatement.software.name`, when given.
    public var software: String?
    /// Whether the peer declares `batch` at system level.
    public var supportsBatch: Bool
}

/// A resource read from a peer.
public struct FetchedResource: Sendable {
    public var resource: JSON
    /// `meta.versionId`, else the ETag's version.
    public var versionID: String?
}

/// What a read of one resource found.
public enum ReadOutcome: Sendable {
    /// The current version.
    case found(FetchedResource)
    /// `404`: the peer does not know the id.
    case notFound
    /// `410`: the peer deleted it.
    case gone
}

/// One page of a search or history: the resources, the server's time and the next link.
public struct BundlePage: Sendable {
    /// The entries' resources in order (history deletions, which carry none, are left out).
    public var resources: [JSON]
    /// `Bundle.meta.lastUpdated`, else the `Date` header: the server's time of the answer.
    public var serverTime: FHIRInstant?
    /// The `next` link, checked to lie under the peer's base.
    public var next: String?
}

/// How a write ended.
public struct WriteResult: Sendable, Hashable {
    /// 200 or 201.
    public var status: Int
    /// The resource's id at the peer (from `Location`).
    public var localID: String
    /// The version the peer now holds (from `ETag` or `Location`).
    public var versionID: String?
}

/// One entry of a `batch` Bundle.
public struct BatchEntry: Sendable, Hashable {
    public enum Method: String, Sendable, Hashable {
        case post = "POST"
        case put = "PUT"
    }

    /// Goes into `fullUrl` as `urn:uuid:<requestID>`: a stable name for the queued push.
    public var requestID: String
    public var method: Method
    public var resourceType: ResourceType
    /// The target id for PUT.
    public var localID: String?
    /// `request.ifMatch` as `W/"<version>"`.
    public var ifMatchVersion: String?
    /// `request.ifNoneExist`, e.g. `identifier=system|value`.
    public var ifNoneExist: String?
    /// The resource, compact JSON.
    public var body: [UInt8]

    public init(
        requestID: String, method: Method, resourceType: ResourceType, localID: String?, ifMatchVersion: String?,
        ifNoneExist: String?, body: [UInt8]
    ) {
        self.requestID = requestID
        self.method = method
        self.resourceType = resourceType
        self.localID = localID
        self.ifMatchVersion = ifMatchVersion
        self.ifNoneExist = ifNoneExist
        self.body = body
    }
}

/// The outcome of one batch entry.
public struct BatchEntryResult: Sendable, Hashable {
    /// The entry's HTTP status.
    public var status: Int
    public var localID: String?
    public var versionID: String?
    /// The entry's OperationOutcome diagnostics, when it failed.
    public var outcome: String?
}

/// A FHIR R4 REST client for one peer, over the shared ``HTTPClient``: capability check, read, vread,
/// search and history with paging, conditional create, update with `If-Match`, and `batch` Bundles.
///
/// Every request carries `X-Request-ID` (the caller's for writes, so a retried push names itself the
/// same way each time) and `Accept: application/fhir+json`. A `next` link is followed exactly as given,
/// but only under the peer's own base: another scheme, host, port or path is refused (bad input).
/// Answers are checked: JSON content type, parseable JSON, ETag `W/"n"`, Bundle shape.
public struct FHIRClient: Sendable {
    public let endpoint: FHIREndpoint
    private let http: HTTPClient
    private let authorization: (any FHIRAuthorization)?
    private let observe: (@Sendable (FHIRExchange) -> Void)?
    private let base: URLParts

    /// - Parameters:
    ///   - endpoint: the peer.
    ///   - http: the process's HTTP client.
    ///   - authorization: the peer's `Authorization` source; `nil` for none.
    ///   - observe: told about every exchange (metrics).
    public init(
        endpoint: FHIREndpoint, http: HTTPClient, authorization: (any FHIRAuthorization)? = nil,
        observe: (@Sendable (FHIRExchange) -> Void)? = nil
    ) throws(FHIRClientError) {
        guard let base = URLParts(endpoint.baseURL), base.scheme == "http" || base.scheme == "https" else {
            throw FHIRClientError(.invalidRequest, "the base URL is not an absolute http(s) URL", url: endpoint.baseURL)
        }
        self.endpoint = endpoint
        self.http = http
        self.authorization = authorization
        self.observe = observe
        self.base = base
    }

    // MARK: Capabilities

    /// `GET [base]/metadata`.
    public func capabilities() async throws(FHIRClientError) -> PeerCapabilities {
        let url = endpoint.baseURL + "/metadata"
        let response = try await exchange(.get, url: url, requestID: RequestIdentifier.make())
        let document = try jsonBody(response, url: url)
        guard document["resourceType"]?.stringValue == "CapabilityStatement" else {
            throw FHIRClientError(.malformedResponse, "metadata did not answer a CapabilityStatement", url: url)
        }
        let interactions = document["rest"]?.arrayValue?.flatMap { $0["interaction"]?.arrayValue ?? [] } ?? []
        return PeerCapabilities(
            fhirVersion: document["fhirVersion"]?.stringValue,
            software: document["software"]?["name"]?.stringValue,
            supportsBatch: interactions.contains { $0["code"]?.stringValue == "batch" })
    }

    /// ``capabilities()``, refusing a peer that is not FHIR 4.0.1 (``FHIRClientError/Code/unsupportedVersion``).
    @discardableResult
    public func requireR4() async throws(FHIRClientError) -> PeerCapabilities {
        let capabilities = try await capabilities()
        guard capabilities.fhirVersion == "4.0.1" else {
            throw FHIRClientError(
                .unsupportedVersion,
                "the peer declares fhirVersion \(capabilities.fhirVersion.map { "\"\($0)\"" } ?? "(none)"); caresync speaks FHIR R4 (4.0.1) only",
                url: endpoint.baseURL + "/metadata")
        }
        return capabilities
    }

    // MARK: Reads

    /// `GET [base]/[type]/[id]`; `nil` when the peer answers 404 or 410.
    public func read(_ type: ResourceType, id: String) async throws(FHIRClientError) -> FetchedResource? {
        if case .found(let fetched) = try await readCurrent(type, id: id) { return fetched }
        return nil
    }

    /// `GET [base]/[type]/[id]`, telling apart an id the peer does not know (404) from one it deleted (410).
    public func readCurrent(_ type: ResourceType, id: String) async throws(FHIRClientError) -> ReadOutcome {
        let url = try resourceURL(type, id: id)
        let response = try await exchange(.get, url: url, requestID: RequestIdentifier.make(), allowedStatuses: [404, 410])
        if response.status == 404 { return .notFound }
        if response.status == 410 { return .gone }
        let resource = try jsonBody(response, url: url)
        let tagged = try etagVersion(response, url: url)
        let version = resource["meta"]?["versionId"]?.stringValue ?? tagged
        return .found(FetchedResource(resource: resource, versionID: version))
    }

    /// `GET [base]/[type]/[id]/_history/[version]`; `nil` on 404 or 410.
    public func vread(_ type: ResourceType, id: String, version: String) async throws(FHIRClientError) -> FetchedResource? {
        guard Self.isID(version) else {
            throw FHIRClientError(.invalidRequest, "version \"\(version)\" is not a FHIR id", url: endpoint.baseURL)
        }
        let url = try resourceURL(type, id: id) + "/_history/" + version
        let response = try await exchange(.get, url: url, requestID: RequestIdentifier.make(), allowedStatuses: [404, 410])
        if response.status == 404 || response.status == 410 { return nil }
        let resource = try jsonBody(response, url: url)
        return FetchedResource(resource: resource, versionID: resource["meta"]?["versionId"]?.stringValue ?? version)
    }

    /// `GET [base]/[type]?parameters` (first page).
    public func search(_ type: ResourceType, _ parameters: [(String, String)]) async throws(FHIRClientError) -> BundlePage {
        let query = parameters.map { Self.percentEncode($0.0) + "=" + Self.percentEncode($0.1) }.joined(separator: "&")
        return try await page(at: endpoint.baseURL + "/" + type.rawValue + (query.isEmpty ? "" : "?" + query), expecting: "searchset")
    }

    /// `GET [base]/[type]/_history?_since=…&_count=…` (first page, newest first).
    public func history(_ type: ResourceType, since: FHIRInstant?, count: Int) async throws(FHIRClientError) -> BundlePage {
        var parameters: [(String, String)] = [("_count", String(count))]
        if let since { parameters.append(("_since", since.text)) }
        let query = parameters.map { Self.percentEncode($0.0) + "=" + Self.percentEncode($0.1) }.joined(separator: "&")
        return try await page(at: endpoint.baseURL + "/" + type.rawValue + "/_history?" + query, expecting: "history")
    }

    /// `GET [base]/[type]?parameters` (first page), its resources kept as the bytes received.
    public func searchPage(_ type: ResourceType, _ parameters: [(String, String)]) async throws(FHIRClientError) -> RawBundlePage {
        let query = parameters.map { Self.percentEncode($0.0) + "=" + Self.percentEncode($0.1) }.joined(separator: "&")
        return try await rawPage(at: endpoint.baseURL + "/" + type.rawValue + (query.isEmpty ? "" : "?" + query))
    }

    /// The search page a `next` link names, raw; refuses a link outside the peer's base.
    public func nextPage(_ link: String) async throws(FHIRClientError) -> RawBundlePage {
        try await rawPage(at: link)
    }

    /// A searchset page read with ``JSONScanner``: the Bundle's shape is checked and each entry's
    /// `resource` is cut out as it was sent, without building a tree of the whole page.
    private func rawPage(at url: String) async throws(FHIRClientError) -> RawBundlePage {
        let response = try await exchange(.get, url: url, requestID: RequestIdentifier.make())
        let shown = Self.withoutQuery(url)
        try Self.requireJSONContentType(response, url: shown)
        let body = response.body
        var page = RawBundlePage(resources: [], serverTime: nil, next: nil)
        var resourceType: String?
        var bundleType: String?
        var links: JSON?
        do throws(JSONScanner.Failure) {
            var scanner = JSONScanner(body)
            try scanner.members { key, value throws(JSONScanner.Failure) in
                switch key {
                case "resourceType": resourceType = value.stringValue(try value.skipValue())
                case "type": bundleType = value.stringValue(try value.skipValue())
                case "meta" where value.current == UInt8(ascii: "{"):
                    try value.members { key, field throws(JSONScanner.Failure) in
                        let range = try field.skipValue()
                        if key == "lastUpdated" { page.serverTime = field.stringValue(range).flatMap(FHIRInstant.init) }
                    }
                case "link":
                    links = try? JSON.parse(Array(body[try value.skipValue()]))
                case "entry":
                    guard value.current == UInt8(ascii: "[") else { throw value.fail("Bundle.entry is not an array") }
                    try value.elements { entry throws(JSONScanner.Failure) in
                        guard entry.current == UInt8(ascii: "{") else { throw entry.fail("a Bundle entry is not an object") }
                        var found = false
                        try entry.members { key, member throws(JSONScanner.Failure) in
                            guard key == "resource" else {
                                _ = try member.skipValue()
                                return
                            }
                            found = true
                            page.resources.append(try RawResource(scanning: &member))
                        }
                        if !found { throw entry.fail("a Bundle entry has no resource") }
                    }
                default: _ = try value.skipValue()
                }
            }
            scanner.skipWhitespace()
            if scanner.index != body.count { throw scanner.fail("trailing bytes after the Bundle") }
        } catch {
            throw FHIRClientError(.malformedResponse, "the answer is not a valid Bundle: \(error.message) at byte \(error.offset)", url: shown)
        }
        guard resourceType == "Bundle" else { throw FHIRClientError(.malformedResponse, "the answer is not a Bundle", url: shown) }
        guard bundleType == "searchset" else {
            throw FHIRClientError(.malformedResponse, "Bundle.type is \(bundleType ?? "absent"), not searchset", url: shown)
        }
        for link in links?.arrayValue ?? [] where link["relation"]?.stringValue == "next" {
            guard let target = link["url"]?.stringValue else {
                throw FHIRClientError(.malformedResponse, "Bundle.link[next] has no url", url: shown)
            }
            try checkUnderBase(target)
            page.next = target
        }
        if page.serverTime == nil { page.serverTime = response.headers["Date"].flatMap(HTTPDate.parse) }
        return page
    }

    /// The page a `next` link names; refuses a link outside the peer's base.
    public func next(_ link: String, expecting bundleType: String = "searchset") async throws(FHIRClientError) -> BundlePage {
        try await page(at: link, expecting: bundleType)
    }

    private func page(at url: String, expecting bundleType: String) async throws(FHIRClientError) -> BundlePage {
        let response = try await exchange(.get, url: url, requestID: RequestIdentifier.make())
        let bundle = try jsonBody(response, url: url)
        let shown = Self.withoutQuery(url)
        guard bundle["resourceType"]?.stringValue == "Bundle" else {
            throw FHIRClientError(.malformedResponse, "the answer is not a Bundle", url: shown)
        }
        guard bundle["type"]?.stringValue == bundleType else {
            throw FHIRClientError(
                .malformedResponse, "Bundle.type is \(bundle["type"]?.stringValue ?? "absent"), not \(bundleType)", url: shown)
        }
        var resources: [JSON] = []
        if let entries = bundle["entry"] {
            guard let list = entries.arrayValue else {
                throw FHIRClientError(.malformedResponse, "Bundle.entry is not an array", url: shown)
            }
            resources.reserveCapacity(list.count)
            for (index, entry) in list.enumerated() {
                guard entry.objectValue != nil else {
                    throw FHIRClientError(.malformedResponse, "Bundle.entry[\(index)] is not an object", url: shown)
                }
                if let resource = entry["resource"] {
                    resources.append(resource)
                } else if bundleType != "history" {
                    throw FHIRClientError(.malformedResponse, "Bundle.entry[\(index)] has no resource", url: shown)
                }
            }
        }
        var next: String?
        for link in bundle["link"]?.arrayValue ?? [] where link["relation"]?.stringValue == "next" {
            guard let target = link["url"]?.stringValue else {
                throw FHIRClientError(.malformedResponse, "Bundle.link[next] has no url", url: shown)
            }
            try checkUnderBase(target)
            next = target
        }
        let serverTime =
            bundle["meta"]?["lastUpdated"]?.stringValue.flatMap(FHIRInstant.init)
            ?? response.headers["Date"].flatMap(HTTPDate.parse)
        return BundlePage(resources: resources, serverTime: serverTime, next: next)
    }

    // MARK: Writes

    /// `POST [base]/[type]`, conditional with `If-None-Exist` when given: 201 created, 200 already there.
    public func create(
        _ type: ResourceType, body: [UInt8], ifNoneExist: String?, requestID: String
    ) async throws(FHIRClientError) -> WriteResult {
        let url = endpoint.baseURL + "/" + type.rawValue
        var headers: HTTPHeaders = ["Content-Type": "application/fhir+json; charset=utf-8", "Prefer": "return=minimal"]
        if let ifNoneExist { headers.add(name: "If-None-Exist", value: ifNoneExist) }
        let response = try await exchange(.post, url: url, requestID: requestID, headers: headers, body: body)
        return try writeResult(response, url: url, type: type, id: nil)
    }

    /// `PUT [base]/[type]/[id]` with `If-Match: W/"version"` when given.
    public func update(
        _ type: ResourceType, id: String, body: [UInt8], ifMatchVersion: String?, requestID: String
    ) async throws(FHIRClientError) -> WriteResult {
        let url = try resourceURL(type, id: id)
        var headers: HTTPHeaders = ["Content-Type": "application/fhir+json; charset=utf-8", "Prefer": "return=minimal"]
        if let ifMatchVersion { headers.add(name: "If-Match", value: "W/\"\(ifMatchVersion)\"") }
        let response = try await exchange(.put, url: url, requestID: requestID, headers: headers, body: body)
        return try writeResult(response, url: url, type: type, id: id)
    }

    /// `POST [base]` with a `batch` Bundle; one result per entry, in order. Each entry's `fullUrl` is
    /// `urn:uuid:<requestID>`.
    public func batch(_ entries: [BatchEntry], requestID: String) async throws(FHIRClientError) -> [BatchEntryResult] {
        try await bundle(entries, type: "batch", requestID: requestID)
    }

    /// `POST [base]` with a `transaction` Bundle: every entry or none. One result per entry, in order; a
    /// failing entry fails the whole request (``FHIRClientError/Code/httpStatus`` with the entry's status).
    public func transaction(_ entries: [BatchEntry], requestID: String) async throws(FHIRClientError) -> [BatchEntryResult] {
        try await bundle(entries, type: "transaction", requestID: requestID)
    }

    private func bundle(_ entries: [BatchEntry], type: String, requestID: String) async throws(FHIRClientError) -> [BatchEntryResult] {
        let url = endpoint.baseURL
        var body: [UInt8] = Array(#"{"resourceType":"Bundle","type":""#.utf8) + Array(type.utf8) + Array(#"","entry":["#.utf8)
        body.reserveCapacity(entries.reduce(64) { $0 + $1.body.count + 200 })
        for (index, entry) in entries.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body += Array(#"{"fullUrl":"#.utf8) + JSON.string("urn:uuid:" + entry.requestID).serialized()
            body += Array(#","resource":"#.utf8) + entry.body
            var request = JSONObject([JSONMember("method", .string(entry.method.rawValue))])
            switch entry.method {
            case .post: request["url"] = .string(entry.resourceType.rawValue)
            case .put:
                guard let localID = entry.localID, Self.isID(localID) else {
                    throw FHIRClientError(.invalidRequest, "batch entry \(index) updates without a valid id", url: url)
                }
                request["url"] = .string(entry.resourceType.rawValue + "/" + localID)
            }
            if let version = entry.ifMatchVersion { request["ifMatch"] = .string("W/\"\(version)\"") }
            if let condition = entry.ifNoneExist { request["ifNoneExist"] = .string(condition) }
            body += Array(#","request":"#.utf8) + JSON.object(request).serialized() + [UInt8(ascii: "}")]
        }
        body += Array("]}".utf8)
        let headers: HTTPHeaders = ["Content-Type": "application/fhir+json; charset=utf-8"]
        let response = try await exchange(.post, url: url, requestID: requestID, headers: headers, body: body)
        let bundle = try jsonBody(response, url: url)
        guard bundle["resourceType"]?.stringValue == "Bundle", bundle["type"]?.stringValue == type + "-response" else {
            throw FHIRClientError(.malformedResponse, "the answer to a \(type) is not a \(type)-response Bundle", url: url)
        }
        let answers = bundle["entry"]?.arrayValue ?? []
        guard answers.count == entries.count else {
            throw FHIRClientError(
                .malformedResponse, "the batch-response has \(answers.count) entries for \(entries.count) requests", url: url)
        }
        var results: [BatchEntryResult] = []
        results.reserveCapacity(answers.count)
        for (index, answer) in answers.enumerated() {
            guard let statusText = answer["response"]?["status"]?.stringValue,
                let status = Int(statusText.prefix { $0 != " " })
            else {
                throw FHIRClientError(.malformedResponse, "batch-response entry \(index) has no response.status", url: url)
            }
            var result = BatchEntryResult(status: status)
            if let location = answer["response"]?["location"]?.stringValue, let parsed = Self.location(location) {
                result.localID = parsed.id
                result.versionID = parsed.version
            }
            if let etag = answer["response"]?["etag"]?.stringValue {
                guard let version = Self.etagVersion(etag) else {
                    throw FHIRClientError(.malformedResponse, "batch-response entry \(index) has a malformed etag", url: url)
                }
                result.versionID = version
            }
            if let outcome = answer["response"]?["outcome"] { result.outcome = Self.diagnostics(outcome) }
            if (200...299).contains(status), result.localID == nil {
                if entries[index].method == .put { result.localID = entries[index].localID }
                guard result.localID != nil else {
                    throw FHIRClientError(.malformedResponse, "batch-response entry \(index) has no location", url: url)
                }
            }
            results.append(result)
        }
        return results
    }

    // MARK: HTTP

    private func exchange(
        _ method: HTTPMethod, url: String, requestID: String, headers extra: HTTPHeaders = HTTPHeaders(), body: [UInt8]? = nil,
        allowedStatuses: Set<Int> = []
    ) async throws(FHIRClientError) -> HTTPResponse {
        var headers = extra
        headers.add(name: "Accept", value: "application/fhir+json")
        headers.add(name: "X-Request-ID", value: requestID)
        if let authorization, let value = try await authorization.authorizationHeader() {
            headers.add(name: "Authorization", value: value)
        }
        let request = HTTPRequest(
            method: method, url: url, headers: headers, body: body, tls: endpoint.tls, timeouts: endpoint.timeouts,
            maximumResponseBytes: endpoint.maximumResponseBytes)
        let started = ContinuousClock.now
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch {
            observe?(FHIRExchange(peer: endpoint.name, method: method.rawValue, status: nil, duration: ContinuousClock.now - started))
            throw FHIRClientError(.transport, error.description, url: Self.withoutQuery(url), isRetriable: error.isRetriable)
        }
        observe?(FHIRExchange(peer: endpoint.name, method: method.rawValue, status: response.status, duration: ContinuousClock.now - started))
        if (200...299).contains(response.status) || allowedStatuses.contains(response.status) { return response }
        if response.status == 401 { await authorization?.invalidate() }
        throw statusError(response, method: method, url: url)
    }

    private func statusError(_ response: HTTPResponse, method: HTTPMethod, url: String) -> FHIRClientError {
        var outcome: String?
        if let document = try? JSON.parse(response.body), document["resourceType"]?.stringValue == "OperationOutcome" {
            outcome = Self.diagnostics(document)
        }
        return FHIRClientError(
            .httpStatus, "\(method.rawValue) answered HTTP \(response.status)", url: Self.withoutQuery(url), status: response.status,
            retryAfterMilliseconds: response.headers["Retry-After"].flatMap { Self.retryAfter($0, date: response.headers["Date"]) },
            outcome: outcome, isRetriable: FHIRClientError.isRetriable(status: response.status) || response.status == 401)
    }

    /// Refuses an answer whose `Content-Type` is not FHIR JSON (or plain JSON).
    private static func requireJSONContentType(_ response: HTTPResponse, url shown: String) throws(FHIRClientError) {
        guard let contentType = response.headers["Content-Type"]?.lowercased(),
            contentType.hasPrefix("application/fhir+json") || contentType.hasPrefix("application/json")
        else {
            throw FHIRClientError(
                .malformedResponse,
                "the answer's Content-Type is \(response.headers["Content-Type"].map { "\"\($0)\"" } ?? "absent"), not application/fhir+json",
                url: shown)
        }
    }

    private func jsonBody(_ response: HTTPResponse, url: String) throws(FHIRClientError) -> JSON {
        let shown = Self.withoutQuery(url)
        try Self.requireJSONContentType(response, url: shown)
        do {
            return try JSON.parse(response.body, options: JSONParseOptions(maxDepth: 128))
        } catch {
            throw FHIRClientError(.malformedResponse, "the answer is not valid JSON: \(error.description)", url: shown)
        }
    }

    private func writeResult(_ response: HTTPResponse, url: String, type: ResourceType, id: String?) throws(FHIRClientError)
        -> WriteResult
    {
        var localID = id
        var version: String?
        if let location = response.headers["Location"] ?? response.headers["Content-Location"] {
            guard let parsed = Self.location(location) else {
                throw FHIRClientError(.malformedResponse, "the Location header does not name [type]/[id]", url: url)
            }
            localID = parsed.id
            version = parsed.version
        }
        if let tagged = try etagVersion(response, url: url) { version = tagged }
        guard let localID else {
            throw FHIRClientError(.malformedResponse, "a create answered without a Location header", url: url)
        }
        return WriteResult(status: response.status, localID: localID, versionID: version)
    }

    private func etagVersion(_ response: HTTPResponse, url: String) throws(FHIRClientError) -> String? {
        guard let etag = response.headers["ETag"] else { return nil }
        guard let version = Self.etagVersion(etag) else {
            throw FHIRClientError(.malformedResponse, "the ETag header is not W/\"<version>\"", url: Self.withoutQuery(url))
        }
        return version
    }

    private func resourceURL(_ type: ResourceType, id: String) throws(FHIRClientError) -> String {
        guard Self.isID(id) else {
            throw FHIRClientError(.invalidRequest, "\"\(id.prefix(64))\" is not a FHIR id", url: endpoint.baseURL)
        }
        return endpoint.baseURL + "/" + type.rawValue + "/" + id
    }

    /// Refuses a link to another scheme, host or port, or outside the base path.
    private func checkUnderBase(_ link: String) throws(FHIRClientError) {
        guard let target = URLParts(link) else {
            throw FHIRClientError(.foreignLink, "Bundle.link[next] is not an absolute URL", url: endpoint.baseURL)
        }
        guard target.scheme == base.scheme, target.host == base.host, target.port == base.port,
            target.path == base.path || target.path.hasPrefix(base.path + "/")
        else {
            throw FHIRClientError(
                .foreignLink,
                "Bundle.link[next] points to \(target.scheme)://\(target.host):\(target.port)\(target.path), outside the peer's base "
                    + "\(base.scheme)://\(base.host):\(base.port)\(base.path); refusing to follow it",
                url: endpoint.baseURL)
        }
    }

    // MARK: Parsing helpers

    /// `W/"3"` or `"3"` → `3`.
    static func etagVersion(_ etag: String) -> String? {
        var text = Substring(etag.trimmingWhitespace())
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        guard text.count >= 3, text.first == "\"", text.last == "\"" else { return nil }
        let version = String(text.dropFirst().dropLast())
        return isID(version) ? version : nil
    }

    /// `…/Type/id/_history/n` or `Type/id` → (id, n).
    static func location(_ text: String) -> (id: String, version: String?)? {
        var path = Substring(text)
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        let parts = path.split(separator: "/").map(String.init)
        if parts.count >= 4, parts[parts.count - 2] == "_history", ResourceType(rawValue: parts[parts.count - 4]) != nil,
            isID(parts[parts.count - 3]), isID(parts[parts.count - 1])
        {
            return (parts[parts.count - 3], parts[parts.count - 1])
        }
        if parts.count >= 2, ResourceType(rawValue: parts[parts.count - 2]) != nil, isID(parts[parts.count - 1]) {
            return (parts[parts.count - 1], nil)
        }
        return nil
    }

    static func diagnostics(_ outcome: JSON) -> String {
        let issues = outcome["issue"]?.arrayValue ?? []
        let texts = issues.compactMap { issue -> String? in
            issue["diagnostics"]?.stringValue ?? issue["details"]?["text"]?.stringValue ?? issue["code"]?.stringValue
        }
        return texts.joined(separator: "; ")
    }

    static func retryAfter(_ value: String, date: String?) -> Int64? {
        let text = value.trimmingWhitespace()
        if let seconds = Int64(text), seconds >= 0 { return seconds * 1000 }
        guard let at = HTTPDate.parse(text) else { return nil }
        let now = date.flatMap(HTTPDate.parse)?.millisecondsSinceEpoch ?? at.millisecondsSinceEpoch
        return max(0, at.millisecondsSinceEpoch - now)
    }

    static func isID(_ text: String) -> Bool {
        let bytes = text.utf8
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    public static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func withoutQuery(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" })
    }
}

/// The parts of an absolute URL that decide where a request goes.
struct URLParts: Hashable {
    var scheme: String
    var host: String
    var port: Int
    var path: String

    init?(_ text: String) {
        let characters = Array(text)
        var schemeEndIndex: Int?
        for index in 0..<max(0, characters.count - 2) where characters[index] == ":" && characters[index + 1] == "/" && characters[index + 2] == "/" {
            schemeEndIndex = index
            break
        }
        guard let schemeEndIndex else { return nil }
        scheme = String(characters[0..<schemeEndIndex]).lowercased()
        let rest = Substring(String(characters[(schemeEndIndex + 3)...]))
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var hostPart = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[...close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { return nil }
        host = hostPart.lowercased()
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { return nil }
            port = value
        } else {
            switch scheme {
            case "http": port = 80
            case "https": port = 443
            default: return nil
            }
        }
        let pathAndQuery = rest[authorityEnd...]
        path = String(pathAndQuery.prefix { $0 != "?" && $0 != "#" })
        while path.hasSuffix("/") { path.removeLast() }
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form of the `Date` and `Retry-After` headers.
enum HTTPDate {
    static func parse(_ text: String) -> FHIRInstant? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT" else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let day = Int(parts[1]), let monthIndex = months.firstIndex(of: String(parts[2])), let year = Int(parts[3]) else {
            return nil
        }
        let time = parts[4]
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return FHIRInstant("\(year)-\(two(monthIndex + 1))-\(two(day))T\(time)Z")
    }
}

/// Random version-4 UUIDs for `X-Request-ID`.
public enum RequestIdentifier {
    /// A new lower-case UUID.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in stride(from: 0, to: 16, by: 8) {
            var word = generator.next()
            for offset in 0..<8 {
                bytes[index + offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
            }
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
