import CaresyncHTTP
import FHIRJSON
import FHIRModel

/// The harness's own reads and writes at a FHIR peer (never through caresync): seeding, counting by
/// business identifier, fault settings. Reads are retried, so they work against a store injecting faults.
struct PeerAccess: Sendable {
    let http: HTTPClient
    let baseURL: String

    /// `GET` with retries on transport errors and 429/5xx (injected faults); returns the parsed body.
    func getJSON(_ url: String, attempts: Int = 40) async throws -> JSON {
        var lastProblem = ""
        for attempt in 0..<attempts {
            do {
                let response = try await http.send(HTTPRequest(url: url, timeouts: HTTPTimeouts(total: .seconds(60))))
                if response.status == 200 { return try JSON.parse(response.body, options: JSONParseOptions(maxDepth: 256)) }
                lastProblem = "HTTP \(response.status)"
                if response.status < 429 || response.status == 501 { break }
            } catch let error as HTTPError {
                lastProblem = error.description
            } catch {
                lastProblem = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(min(50 * (attempt + 1), 500)))
        }
        throw ReliabilityError("GET \(url) failed: \(lastProblem)")
    }

    /// Sends `body` and returns status and parsed body (no retries: writes are the test's to judge).
    func send(_ method: HTTPMethod, _ url: String, json body: JSON, headers: HTTPHeaders = [:]) async throws -> (Int, JSON?) {
        var allHeaders = headers
        allHeaders.replaceOrAdd(name: "Content-Type", value: "application/fhir+json")
        let response = try await http.send(HTTPRequest(method: method, url: url, headers: allHeaders, body: body.serialized()))
        return (response.status, try? JSON.parse(response.body))
    }

    /// Creates `resources` in transaction Bundles of `bundleSize`; returns the server ids in order.
    @discardableResult
    func seed(_ resources: [JSON], bundleSize: Int = 50) async throws -> [String] {
        var ids: [String] = []
        var start = 0
        while start < resources.count {
            let slice = resources[start..<min(start + bundleSize, resources.count)]
            let entries = slice.map { resource -> JSON in
                ["resource": resource, "request": ["method": "POST", "url": resource["resourceType"] ?? "CarePlan"]]
            }
            let bundle: JSON = ["resourceType": "Bundle", "type": "transaction", "entry": .array(Array(entries))]
            let (status, answer) = try await send(.post, baseURL, json: bundle)
            guard status == 200, let answers = answer?["entry"]?.arrayValue, answers.count == slice.count else {
                throw ReliabilityError("seeding \(baseURL) answered \(status): \(answer.map { String(decoding: $0.serialized(), as: UTF8.self).prefix(400) } ?? "")")
            }
            for entry in answers {
                let location = entry["response"]?["location"]?.stringValue ?? ""
                let parts = location.split(separator: "/")
                ids.append(parts.count >= 2 ? String(parts[1]) : "")
            }
            start += bundleSize
        }
        return ids
    }

    /// Creates one resource with a plain POST; returns its id.
    func create(_ resource: JSON) async throws -> String {
        let type = resource["resourceType"]?.stringValue ?? "CarePlan"
        let (status, answer) = try await send(.post, baseURL + "/" + type, json: resource)
        guard status == 201, let id = answer?["id"]?.stringValue else {
            throw ReliabilityError("creating a \(type) at \(baseURL) answered \(status): \(answer.map { String(decoding: $0.serialized(), as: UTF8.self).prefix(400) } ?? "")")
        }
        return id
    }

    /// How many current resources of `type` the peer holds.
    func total(_ type: ResourceType) async throws -> Int {
        let answer = try await getJSON(baseURL + "/" + type.rawValue + "?_count=0")
        guard let total = answer["total"]?.numberValue?.intValue else { throw ReliabilityError("no total from \(baseURL)") }
        return total
    }

    /// Total over the synchronised types.
    func totalAll() async throws -> Int {
        var sum = 0
        for type in ResourceType.synchronised { sum += try await total(type) }
        return sum
    }

    /// Every current resource of every synchronised type (all pages).
    func all() async throws -> [JSON] {
        var resources: [JSON] = []
        for type in ResourceType.synchronised {
            var url: String? = baseURL + "/" + type.rawValue + "?_count=1000"
            while let next = url {
                let page = try await getJSON(next)
                for entry in page["entry"]?.arrayValue ?? [] {
                    if let resource = entry["resource"] { resources.append(resource) }
                }
                url = page["link"]?.arrayValue?.first { $0["relation"]?.stringValue == "next" }?["url"]?.stringValue
            }
        }
        return resources
    }

    /// How many copies of each record the peer holds, by global key (type and first business identifier).
    func copiesByKey() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for resource in try await all() {
            let key = ResourceIdentity(resource)?.globalKey?.description ?? "no-identifier:\(resource["id"]?.stringValue ?? "?")"
            counts[key, default: 0] += 1
        }
        return counts
    }

    /// Replaces the store's fault settings (`POST /_admin/faults`, docs/caresync-store.md).
    func setFaults(rate: Double, faults: [String], seed: Int, retryAfter: Int = 1, slowDelayMs: Int = 2000) async throws {
        let admin = baseURL.replacingSuffix("/fhir", with: "/_admin/faults")
        let settings: JSON = [
            "rate": .number(JSONNumber(String(rate))!), "faults": .array(faults.map { .string($0) }), "seed": .number(JSONNumber(seed)),
            "retryAfter": .number(JSONNumber(retryAfter)), "slowDelayMs": .number(JSONNumber(slowDelayMs)),
        ]
        let response = try await http.send(
            HTTPRequest(method: .post, url: admin, headers: ["Content-Type": "application/json"], body: settings.serialized()))
        guard response.status == 200 else { throw ReliabilityError("setting faults at \(admin) answered \(response.status)") }
    }

    /// The faults injected so far, by kind.
    func injectedFaults() async throws -> [String: Int] {
        let answer = try await getJSON(baseURL.replacingSuffix("/fhir", with: "/_admin/faults"))
        var counts: [String: Int] = [:]
        for member in answer["injected"]?.objectValue?.members ?? [] {
            counts[member.key] = member.value.numberValue?.intValue ?? 0
        }
        return counts
    }
}

extension String {
    func replacingSuffix(_ suffix: String, with replacement: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + replacement : self
    }
}

extension PeerAccess {
    /// The current record of `type` with business identifier `token` (`system|value`), if any.
    func record(_ type: ResourceType, identifier token: String) async throws -> JSON? {
        let query = token.utf8.map { byte -> String in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                String(UnicodeScalar(byte))
            default:
                "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }.joined()
        let page = try await getJSON(baseURL + "/" + type.rawValue + "?identifier=" + query)
        return page["entry"]?.arrayValue?.first?["resource"]
    }

    /// Reads the record, applies `change` and writes it back with `If-Match`; returns the new version.
    @discardableResult
    func edit(_ type: ResourceType, identifier token: String, _ change: (inout JSON) -> Void) async throws -> String {
        guard var resource = try await record(type, identifier: token), let id = resource["id"]?.stringValue,
            let version = resource["meta"]?["versionId"]?.stringValue
        else { throw ReliabilityError("\(baseURL) has no \(type.rawValue) \(token)") }
        change(&resource)
        let (status, answer) = try await send(.put, baseURL + "/" + type.rawValue + "/" + id, json: resource, headers: ["If-Match": "W/\"\(version)\""])
        guard status == 200, let newVersion = answer?["meta"]?["versionId"]?.stringValue else {
            throw ReliabilityError("updating \(type.rawValue)/\(id) at \(baseURL) answered \(status)")
        }
        return newVersion
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
