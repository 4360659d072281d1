import FHIRJSON
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns HTTP requests into ``FHIRRequest``s and ``FHIRResponse``s back into HTTP, adding the headers
/// every answer carries (`Date`, `Content-Type`, `X-Request-ID`), injecting faults, and serving the
/// `/_admin` endpoints.
struct HTTPFrontEnd: Sendable {
    let service: FHIRService
    let faults: FaultInjector
    let logger: Logger
    /// `host:port` to use in links when a request has no `Host` header.
    let listenAuthority: @Sendable () -> String

    private static let fhirJSON = "application/fhir+json; charset=utf-8"
    private static let requestIDField = HTTPField.Name("X-Request-ID")!
    private static let retryAfterField = HTTPField.Name("Retry-After")!
    private static let preferField = HTTPField.Name("Prefer")!
    private static let ifNoneExistField = HTTPField.Name("If-None-Exist")!

    func respond(to request: Request, writer: consuming ResponseWriter, channel: any Channel) async throws {
        var request = request
        let requestID = request.headers[Self.requestIDField]
        let segments = request.uri.path.split(separator: "/").map { QueryItem.percentDecode($0) }
        let base = "http://\(request.head.authority ?? listenAuthority())/fhir"

        guard segments.first == "fhir" else {
            let response = segments.first == "_admin" ? try await admin(&request, Array(segments.dropFirst())) : Self.unknownRoute(request.uri.path)
            try await write(response, base: base, requestID: requestID, to: writer)
            return
        }
        let path = Array(segments.dropFirst())
        let fault = path == ["metadata"] ? nil : faults.draw()
        switch fault {
        case .reset?:
            await Self.abort(channel)
            return
        case .tooManyRequests?:
            let error = StoreError(429, "throttled", "injected fault: too many requests", retryAfter: faults.settings.retryAfterSeconds)
            try await write(FHIRResponse(error: error), base: base, requestID: requestID, to: writer)
            return
        case .serviceUnavailable?:
            let error = StoreError(503, "transient", "injected fault: service unavailable", retryAfter: faults.settings.retryAfterSeconds)
            try await write(FHIRResponse(error: error), base: base, requestID: requestID, to: writer)
            return
        case .slow?:
            try await Task.sleep(for: .milliseconds(faults.settings.slowDelayMilliseconds))
        case .dropAfterCommit?, nil:
            break
        }

        let response: FHIRResponse
        var returnMinimal = false
        switch try await readFHIRRequest(&request, path: path, writer: writer) {
        case .failure(let error):
            response = FHIRResponse(error: error)
        case .success(let fhirRequest):
            returnMinimal = fhirRequest.returnPreference == .minimal
            response = await service.handle(fhirRequest, base: base)
        }
        if fault == .dropAfterCommit {
            await Self.abort(channel)
            return
        }
        if response.status >= 500 {
            // Method and path only: queries and bodies may hold NHS numbers.
            logger.error("\(request.method.rawValue) \(request.uri.path) failed with \(response.status)")
        }
        var answer = response
        if returnMinimal && answer.bodyIsWrittenResource { answer.body = nil }
        try await write(answer, base: base, requestID: requestID, to: writer)
    }

    /// Reads headers and body into a ``FHIRRequest``; a `failure` is an answer to send (406, 413, 415).
    private func readFHIRRequest(_ request: inout Request, path: [String], writer: borrowing ResponseWriter) async throws -> Result<FHIRRequest, StoreError> {
        if let accept = request.headers[.accept], !Self.acceptsJSON(accept) {
            return .failure(StoreError(406, "not-supported", "this server answers application/fhir+json only (Accept: \(accept))"))
        }
        let rawQuery = request.uri.query ?? ""
        var fhirRequest = FHIRRequest(
            method: request.method.rawValue,
            path: path,
            query: QueryItem.parse(rawQuery),
            ifMatch: request.headers[.ifMatch],
            ifNoneExist: request.headers[Self.ifNoneExistField]
        )
        for preference in request.headers[values: Self.preferField].flatMap({ $0.split(separator: ",") }) {
            switch preference.trimmingCharacters(in: " \t") {
            case "handling=lenient": fhirRequest.lenient = true
            case "return=minimal": fhirRequest.returnPreference = .minimal
            case "return=representation": fhirRequest.returnPreference = .representation
            default: break
            }
        }
        guard request.method == .post || request.method == .put else { return .success(fhirRequest) }
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let isForm = contentType.hasPrefix("application/x-www-form-urlencoded") && path.last == "_search"
        guard isForm || contentType.hasPrefix("application/fhir+json") || contentType.hasPrefix("application/json") else {
            let shown = contentType.isEmpty ? "none" : contentType
            return .failure(StoreError(415, "not-supported", "the body must be application/fhir+json (Content-Type: \(shown))"))
        }
        if request.headers[.expect]?.lowercased() == "100-continue" {
            try await writer.writeInformationalHead(HTTPResponse(status: .continue))
        }
        do {
            let buffer = try await request.collectBody(upTo: service.configuration.maxBodyBytes)
            fhirRequest.body = .bytes(Array(buffer.readableBytesView))
        } catch is NIOTooManyBytesError {
            return .failure(StoreError(413, "too-costly", "the body is larger than \(service.configuration.maxBodyBytes) bytes"))
        }
        return .success(fhirRequest)
    }

    private static func acceptsJSON(_ accept: String) -> Bool {
        accept.split(separator: ",").contains { range in
            let type = range.split(separator: ";").first.map { $0.trimmingCharacters(in: " \t").lowercased() } ?? ""
            return ["*/*", "application/*", "application/fhir+json", "application/json", "application/json+fhir"].contains(type)
        }
    }

    private static func unknownRoute(_ path: String) -> FHIRResponse {
        FHIRResponse(error: StoreError.notFound("no endpoint at \(path); the FHIR base is /fhir (see /fhir/metadata)"))
    }

    private func write(_ response: FHIRResponse, base: String, requestID: String?, to writer: consuming ResponseWriter) async throws {
        var fields = HTTPFields()
        fields[.date] = TimeFormat.httpDate(service.clock.now())
        if let requestID { fields[Self.requestIDField] = requestID }
        if let version = response.versionId { fields[.eTag] = "W/\"\(version)\"" }
        if let location = response.location { fields[.location] = "\(base)/\(location)" }
        if let lastModified = response.lastModified { fields[.lastModified] = TimeFormat.httpDate(lastModified) }
        if let retryAfter = response.retryAfter { fields[Self.retryAfterField] = String(retryAfter) }
        let head: HTTPResponse
        if let body = response.body {
            fields[.contentType] = Self.fhirJSON
            fields[.contentLength] = String(body.count)
            head = HTTPResponse(status: .init(code: response.status, reasonPhrase: HTTPStatusText.reason(response.status)), headerFields: fields)
            try await writer.write(response: head, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        } else {
            if response.status != 204 && response.status != 304 { fields[.contentLength] = "0" }
            head = HTTPResponse(status: .init(code: response.status, reasonPhrase: HTTPStatusText.reason(response.status)), headerFields: fields)
            try await writer.write(response: head, body: ResponseBody())
        }
    }

    /// Closes the connection at once with a TCP reset, answering nothing.
    private static func abort(_ channel: any Channel) async {
        if let provider = channel as? any SocketOptionProvider {
            try? await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        }
        try? await channel.close().get()
    }

    // MARK: /_admin

    /// `GET /_admin/faults` shows the fault settings and counters; `POST /_admin/faults` replaces the settings
    /// (`{"rate":0.2,"faults":["429","reset"],"seed":7,"retryAfter":1,"slowDelayMs":2000}`) and restarts the
    /// random sequence and the counters.
    private func admin(_ request: inout Request, _ path: [String]) async throws -> FHIRResponse {
        guard path == ["faults"] else { return Self.unknownRoute(request.uri.path) }
        switch request.method {
        case .get:
            break
        case .post:
            let buffer = try await request.collectBody(upTo: 64 * 1024)
            let json: JSON
            do {
                json = try JSON.parse(Array(buffer.readableBytesView))
            } catch {
                return FHIRResponse(error: StoreError(400, "structure", "the body is not valid JSON: \(error.description)"))
            }
            var settings = FaultSettings()
            settings.rate = json["rate"]?.numberValue?.doubleValue ?? 0
            settings.seed = json["seed"]?.numberValue.flatMap { UInt64($0.text) } ?? 0
            settings.retryAfterSeconds = json["retryAfter"]?.numberValue?.intValue ?? 1
            settings.slowDelayMilliseconds = json["slowDelayMs"]?.numberValue?.intValue ?? 2000
            var kinds: [FaultKind] = []
            for name in json["faults"]?.arrayValue ?? [] {
                guard let text = name.stringValue, let kind = FaultKind(rawValue: text) else {
                    let known = FaultKind.allCases.map(\.rawValue).joined(separator: ", ")
                    return FHIRResponse(error: StoreError(400, "value", "unknown fault \(name.text()); known: \(known)", expression: ["faults"]))
                }
                kinds.append(kind)
            }
            guard (0...1).contains(settings.rate) else {
                return FHIRResponse(error: StoreError(400, "value", "rate must be between 0 and 1", expression: ["rate"]))
            }
            settings.kinds = kinds
            faults.reconfigure(settings)
        default:
            return FHIRResponse(error: StoreError(405, "not-supported", "\(request.method.rawValue) is not supported on /_admin/faults; allowed: GET, POST"))
        }
        let settings = faults.settings
        let counters = faults.counters
        var injected = JSONObject()
        for kind in FaultKind.allCases { injected[kind.rawValue] = .number(JSONNumber(counters.injected[kind] ?? 0)) }
        let state: JSON = [
            "rate": .number(JSONNumber(String(settings.rate))!),
            "faults": .array(settings.kinds.map { .string($0.rawValue) }),
            "seed": .number(JSONNumber(String(settings.seed))!),
            "retryAfter": .number(JSONNumber(settings.retryAfterSeconds)),
            "slowDelayMs": .number(JSONNumber(settings.slowDelayMilliseconds)),
            "eligibleRequests": .number(JSONNumber(counters.eligible)),
            "injected": .object(injected),
        ]
        return FHIRResponse(status: 200, body: state.serialized())
    }
}

extension StringProtocol {
    /// The text without leading and trailing characters from `set`.
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
