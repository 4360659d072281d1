import CCurl
import COpenSSL
import Synchronization

/// Whether a transfer's Swift task has handed it to the engine, or was cancelled first. Shared by the
/// task (submit, cancellation handler) and nothing else, so it alone needs a lock.
final class TransferTicket: Sendable {
    enum State {
        /// Built, not yet handed to the engine.
        case created
        /// In the engine's inbox or running; a cancellation must go through the engine.
        case submitted
        /// Cancelled before submission: submitting resumes with `.cancelled` at once.
        case cancelled
    }

    let id: UInt64
    let state = Mutex(State.created)

    init(id: UInt64) {
        self.id = id
    }
}

/// One request: its configured easy handle and what the callbacks collect. Built by the calling task,
/// then owned by the engine thread from submission until it resumes `continuation`; the two never
/// touch it at the same time (the inbox lock orders the hand-over), hence `@unchecked Sendable`.
final class Transfer: @unchecked Sendable {
    typealias Outcome = Result<CompletedTransfer, HTTPError>

    let ticket: TransferTicket
    /// The `CURL *` easy handle.
    let easy: UnsafeMutableRawPointer
    /// The URL safe for errors and logs.
    var redactedURL: String { url.redacted }
    var continuation: CheckedContinuation<Outcome, Never>?

    private let url: RequestURL
    private let pool: EasyHandlePool
    private let timeouts: HTTPTimeouts
    private let maximumResponseBytes: Int
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    /// The header block of the latest response so far, as received (status line first).
    private var rawHeaders: [UInt8] = []
    private var responseBody: [UInt8] = []
    private var tlsVersion: TLSVersion?
    private var tlsProbed = false
    private var exceededResponseLimit = false

    private init(
        ticket: TransferTicket, easy: UnsafeMutableRawPointer, pool: EasyHandlePool, url: RequestURL, request: HTTPRequest
    ) {
        self.ticket = ticket
        self.easy = easy
        self.pool = pool
        self.url = url
        self.timeouts = request.timeouts
        self.maximumResponseBytes = request.maximumResponseBytes
        errorBuffer = .allocate(capacity: ccurl_error_size)
        errorBuffer.initialize(repeating: 0, count: ccurl_error_size)
    }

    deinit {
        pool.recycle(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Validates `request` and builds its easy handle; nothing touches the network yet.
    static func make(
        _ request: HTTPRequest, id: UInt64, userAgent: String, pool: EasyHandlePool
    ) throws(HTTPError) -> Transfer {
        let url = try RequestURL.parse(request.url)
        try validate(request, url: url)
        guard let easy = pool.take() else {
            throw HTTPError(code: .internalError, message: "curl_easy_init failed (out of memory)", url: url.redacted)
        }
        let transfer = Transfer(ticket: TransferTicket(id: id), easy: easy, pool: pool, url: url, request: request)
        try transfer.configure(request, userAgent: userAgent)
        return transfer
    }

    /// Resumes the waiting task once; later calls do nothing.
    func resume(_ outcome: Outcome) {
        guard let continuation else { return }
        self.continuation = nil
        continuation.resume(returning: outcome)
    }

    // MARK: Configuration

    private static func validate(_ request: HTTPRequest, url requestURL: RequestURL) throws(HTTPError) {
        var url: String { requestURL.redacted }
        guard isToken(request.method.rawValue) else {
            throw HTTPError(code: .invalidRequest, message: "method '\(request.method)' is not an HTTP token", url: url)
        }
        for field in request.headers {
            guard isToken(field.name) else {
                throw HTTPError(code: .invalidRequest, message: "header name '\(field.name)' is not an HTTP token", url: url)
            }
            guard !field.value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw HTTPError(
                    code: .invalidRequest, message: "header '\(field.name)' has a line break or NUL in its value", url: url)
            }
        }
        guard request.maximumResponseBytes >= 0 else {
            throw HTTPError(code: .invalidRequest, message: "maximumResponseBytes must not be negative", url: url)
        }
    }

    /// RFC 9110 `token`: one or more of ALPHA / DIGIT / ``!#$%&'*+-.^_`|~``.
    private static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    true
                default:
                    "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }

    private func configure(_ request: HTTPRequest, userAgent: String) throws(HTTPError) {
        let this = Unmanaged.passUnretained(self).toOpaque()
        try set(CURLOPT_CURLU, pointer: UnsafeRawPointer(url.handle))
        try set(CURLOPT_PRIVATE, pointer: this)
        try set(CURLOPT_ERRORBUFFER, pointer: errorBuffer)
        try set(CURLOPT_NOSIGNAL, 1)
        try set(CURLOPT_PROTOCOLS_STR, "http,https")
        try set(CURLOPT_FOLLOWLOCATION, 0)
        try set(CURLOPT_TCP_KEEPALIVE, 1)
        try set(CURLOPT_USERAGENT, userAgent)
        try set(CURLOPT_ACCEPT_ENCODING, "gzip")
        try set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        try set(CURLOPT_PIPEWAIT, 1)
        if url.scheme == "http" {
            // Loopback only: never hand plain HTTP to a proxy from the environment.
            try set(CURLOPT_PROXY, "")
        }

        // Body and callbacks.
        try setCallback(CURLOPT_WRITEFUNCTION, writeCallback)
        try set(CURLOPT_WRITEDATA, pointer: this)
        try setCallback(CURLOPT_HEADERFUNCTION, headerCallback)
        try set(CURLOPT_HEADERDATA, pointer: this)
        if request.maximumResponseBytes < Int.max {
            try set(CURLOPT_MAXFILESIZE_LARGE, offset: curl_off_t(request.maximumResponseBytes))
        }

        // Timeouts.
        try set(CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.timeouts.connect))
        try set(CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeouts.total))
        try set(CURLOPT_LOW_SPEED_LIMIT, max(1, request.timeouts.minimumSpeed))
        try set(CURLOPT_LOW_SPEED_TIME, max(1, (Self.milliseconds(request.timeouts.stallTime) + 999) / 1000))

        // TLS: verification is always on.
        try set(CURLOPT_SSL_VERIFYPEER, 1)
        try set(CURLOPT_SSL_VERIFYHOST, 2)
        let minimum = request.tls.minimumVersion == .v1_3 ? CURL_SSLVERSION_TLSv1_3 : CURL_SSLVERSION_TLSv1_2
        try set(CURLOPT_SSLVERSION, Int(minimum))
        if let caFile = request.tls.caFile { try set(CURLOPT_CAINFO, caFile) }
        if let certificate = request.tls.clientCertificateFile {
            try set(CURLOPT_SSLCERT, certificate)
            try set(CURLOPT_SSLCERTTYPE, "PEM")
        }
        if let key = request.tls.clientKeyFile {
            try set(CURLOPT_SSLKEY, key)
            try set(CURLOPT_SSLKEYTYPE, "PEM")
        }
        if let pin = request.tls.pinnedPublicKey { try set(CURLOPT_PINNEDPUBLICKEY, pin) }

        // Method and body.
        var headers = request.headers
        headers.remove(name: "Accept-Encoding")  // set above, so libcurl also decodes
        let method = request.method
        let sendsBody = request.body != nil || method == .post || method == .put || method == .patch
        if sendsBody {
            if method != .post { try set(CURLOPT_CUSTOMREQUEST, method.rawValue) }
            try set(CURLOPT_POST, 1)
            let body = request.body ?? []
            try set(CURLOPT_POSTFIELDSIZE_LARGE, offset: curl_off_t(body.count))
            // libcurl copies the body; an empty body still needs a non-NULL pointer.
            let status = body.withUnsafeBytes { bytes in
                ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(errorBuffer))
            }
            try check(status, CURLOPT_COPYPOSTFIELDS)
            // Without this libcurl labels the body application/x-www-form-urlencoded.
            if !headers.contains("Content-Type") { try appendHeaderLine("Content-Type:") }
        } else if method == .head {
            try set(CURLOPT_NOBODY, 1)
        } else if method != .get {
            try set(CURLOPT_CUSTOMREQUEST, method.rawValue)
        }
        // An empty Expect: stops libcurl's "Expect: 100-continue", which stalls uploads to servers
        // that never answer it (Hummingbird waits, then libcurl sends after 1 s).
        headers.remove(name: "Expect")
        try appendHeaderLine("Expect:")
        for field in headers {
            // "Name;" is libcurl's spelling for a header with an empty value ("Name:" would remove it).
            try appendHeaderLine(field.value.isEmpty ? "\(field.name);" : "\(field.name): \(field.value)")
        }
        try set(CURLOPT_HTTPHEADER, pointer: headerList)
    }

    private func appendHeaderLine(_ line: String) throws(HTTPError) {
        guard let list = curl_slist_append(headerList, line) else {
            throw HTTPError(code: .internalError, message: "curl_slist_append failed (out of memory)", url: redactedURL)
        }
        headerList = list
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let total = seconds.multipliedReportingOverflow(by: 1000)
        guard !total.overflow else { return Int.max }
        return max(0, Int(total.partialValue) + Int(attoseconds / 1_000_000_000_000_000))
    }

    private func set(_ option: CURLoption, _ value: Int) throws(HTTPError) {
        try check(ccurl_easy_setopt_long(easy, option, value), option)
    }

    private func set(_ option: CURLoption, offset value: curl_off_t) throws(HTTPError) {
        try check(ccurl_easy_setopt_off_t(easy, option, value), option)
    }

    private func set(_ option: CURLoption, _ value: String) throws(HTTPError) {
        try check(ccurl_easy_setopt_string(easy, option, value), option)
    }

    private func set(_ option: CURLoption, pointer value: UnsafeRawPointer?) throws(HTTPError) {
        try check(ccurl_easy_setopt_pointer(easy, option, value), option)
    }

    private func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer?) throws(HTTPError) {
        try check(ccurl_easy_setopt_pointer(easy, option, value), option)
    }

    private func set<T>(_ option: CURLoption, pointer value: UnsafeMutablePointer<T>?) throws(HTTPError) {
        try check(ccurl_easy_setopt_pointer(easy, option, value), option)
    }

    private func setCallback(_ option: CURLoption, _ callback: ccurl_data_callback) throws(HTTPError) {
        try check(ccurl_easy_setopt_data_callback(easy, option, callback), option)
    }

    private func check(_ status: CURLcode, _ option: CURLoption) throws(HTTPError) {
        guard status != CURLE_OK else { return }
        let text = String(cString: curl_easy_strerror(status))
        let code: HTTPError.Code =
            switch option {
            case CURLOPT_SSLCERT, CURLOPT_SSLKEY, CURLOPT_CAINFO, CURLOPT_PINNEDPUBLICKEY: .localCredentialsInvalid
            default: .internalError
            }
        throw HTTPError(
            code: code, message: "libcurl refused option \(option.rawValue)", url: redactedURL,
            curlCode: Int32(status.rawValue), curlMessage: text)
    }

    // MARK: Callbacks (engine thread)

    fileprivate func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        if responseBody.count + bytes.count > maximumResponseBytes {
            exceededResponseLimit = true
            return 0  // libcurl aborts with CURLE_WRITE_ERROR
        }
        if responseBody.isEmpty {
            var expected: curl_off_t = -1
            if ccurl_easy_getinfo_off_t(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected) == CURLE_OK, expected > 0 {
                responseBody.reserveCapacity(min(Int(expected), maximumResponseBytes))
            }
        }
        responseBody.append(contentsOf: bytes)
        return bytes.count
    }

    /// Keeps the raw header block; it is parsed by the awaiting task, off the engine thread.
    fileprivate func receiveHeaderLine(_ bytes: UnsafeRawBufferPointer) -> Int {
        if bytes.starts(with: "HTTP/".utf8) {
            // A status line starts a new header block (after a 1xx, the final response's).
            rawHeaders.removeAll(keepingCapacity: true)
            probeTLSVersion()
        }
        rawHeaders.append(contentsOf: bytes)
        return bytes.count
    }

    /// Reads the negotiated TLS version while the connection is certainly alive (at the status line).
    private func probeTLSVersion() {
        guard !tlsProbed, url.scheme == "https" else { return }
        tlsProbed = true
        var info: UnsafeMutablePointer<curl_tlssessioninfo>?
        guard ccurl_easy_getinfo_tls_session(easy, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK,
            let info, info.pointee.backend == CURLSSLBACKEND_OPENSSL, let ssl = info.pointee.internals,
            let version = copenssl_ssl_version(ssl)
        else { return }
        tlsVersion = TLSVersion(rawValue: String(cString: version))
    }

    // MARK: Completion (engine thread, after the handle left the multi handle)

    /// The response, or the error, for a transfer libcurl finished with `status`.
    func outcome(_ status: CURLcode) -> Outcome {
        guard status == CURLE_OK else { return .failure(error(for: status)) }
        var code = 0
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        var version = 0
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version)
        var connects = 0
        _ = ccurl_easy_getinfo_long(easy, CURLINFO_NUM_CONNECTS, &connects)
        let httpVersion: HTTPVersion =
            switch version {
            case Int(CURL_HTTP_VERSION_1_0): .http1_0
            case Int(CURL_HTTP_VERSION_2_0): .http2
            case Int(CURL_HTTP_VERSION_3): .http3
            default: .http1_1
            }
        var body: [UInt8] = []
        swap(&body, &responseBody)
        var headers: [UInt8] = []
        swap(&headers, &rawHeaders)
        return .success(
            CompletedTransfer(
                status: code, rawHeaders: headers, body: body, httpVersion: httpVersion,
                tlsVersion: tlsVersion, timings: timings(), newConnections: connects))
    }

    private func timings() -> HTTPTimings {
        func time(_ info: CURLINFO) -> Duration {
            var microseconds: curl_off_t = 0
            _ = ccurl_easy_getinfo_off_t(easy, info, &microseconds)
            return .microseconds(microseconds)
        }
        return HTTPTimings(
            nameLookup: time(CURLINFO_NAMELOOKUP_TIME_T), connect: time(CURLINFO_CONNECT_TIME_T),
            tlsHandshake: time(CURLINFO_APPCONNECT_TIME_T), firstByte: time(CURLINFO_STARTTRANSFER_TIME_T),
            total: time(CURLINFO_TOTAL_TIME_T))
    }

    func error(for status: CURLcode) -> HTTPError {
        let detail = String(cString: errorBuffer)
        let curlMessage = detail.isEmpty ? String(cString: curl_easy_strerror(status)) : detail
        let lowered = curlMessage.lowercased()
        let (code, message): (HTTPError.Code, String) =
            switch status {
            case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
                (.invalidURL, "libcurl cannot use this URL")
            case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
                (.dnsFailure, "the host name did not resolve")
            case CURLE_COULDNT_CONNECT:
                (.cannotConnect, "could not connect")
            case CURLE_OPERATION_TIMEDOUT:
                timeoutKind(lowered)
            case CURLE_PEER_FAILED_VERIFICATION:
                (.certificateUntrusted, "the server's certificate is not trusted or does not match the host name")
            case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                (.pinnedKeyMismatch, "the server's public key does not match the pinned key")
            case CURLE_SSL_CERTPROBLEM, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CRL_BADFILE:
                (.localCredentialsInvalid, "our CA file, client certificate or key cannot be used")
            case CURLE_SSL_CONNECT_ERROR where Self.isClientCertificateRejection(lowered),
                CURLE_RECV_ERROR where Self.isClientCertificateRejection(lowered),
                CURLE_SEND_ERROR where Self.isClientCertificateRejection(lowered):
                (.clientCertificateRejected, "the server refused our client certificate (or our lack of one)")
            case CURLE_SSL_CONNECT_ERROR:
                (.tlsHandshakeFailed, "the TLS handshake failed")
            case CURLE_SEND_ERROR:
                (.sendFailed, "sending the request failed")
            case CURLE_RECV_ERROR:
                (.receiveFailed, "receiving the response failed")
            case CURLE_WRITE_ERROR where exceededResponseLimit, CURLE_FILESIZE_EXCEEDED:
                (.responseTooLarge, "the response is larger than \(maximumResponseBytes) bytes")
            case CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2, CURLE_HTTP2_STREAM,
                CURLE_BAD_CONTENT_ENCODING, CURLE_HTTP3, CURLE_RANGE_ERROR:
                (.protocolError, "the server's reply broke the HTTP protocol")
            default:
                (.internalError, "libcurl failed")
            }
        return HTTPError(
            code: code, message: message, url: redactedURL, curlCode: Int32(status.rawValue), curlMessage: curlMessage)
    }

    /// libcurl reports all three timeouts as CURLE_OPERATION_TIMEDOUT; its message and the timings tell
    /// them apart.
    private func timeoutKind(_ lowered: String) -> (HTTPError.Code, String) {
        if lowered.contains("too slow") {
            return (
                .transferStalled,
                "the transfer stalled below \(timeouts.minimumSpeed) bytes/s for \(timeouts.stallTime)"
            )
        }
        if lowered.hasPrefix("operation timed out") || timings().total >= timeouts.total {
            return (.totalTimeout, "the request took longer than \(timeouts.total)")
        }
        return (.connectTimeout, "connecting took longer than \(timeouts.connect)")
    }

    /// OpenSSL's texts for a server's alert about our certificate (TLS 1.3 reports it after the
    /// handshake, at the first read).
    private static func isClientCertificateRejection(_ lowered: String) -> Bool {
        ["alert certificate required", "alert bad certificate", "alert unknown ca", "alert certificate unknown"]
            .contains { lowered.contains($0) }
    }
}

/// A finished transfer whose header block is still raw bytes.
struct CompletedTransfer: Sendable {
    var status: Int
    var rawHeaders: [UInt8]
    var body: [UInt8]
    var httpVersion: HTTPVersion
    var tlsVersion: TLSVersion?
    var timings: HTTPTimings
    var newConnections: Int

    /// The response, with the header block parsed.
    var response: HTTPResponse {
        HTTPResponse(
            status: status, headers: HTTPHeaders(headerBlock: rawHeaders), body: body, httpVersion: httpVersion,
            tlsVersion: tlsVersion, timings: timings, newConnections: newConnections)
    }
}

// MARK: C callbacks: non-capturing, reaching the transfer through the user-data pointer.

private let writeCallback: ccurl_data_callback = { data, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.receiveBody(UnsafeRawBufferPointer(start: data, count: size * count))
}

private let headerCallback: ccurl_data_callback = { data, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.receiveHeaderLine(UnsafeRawBufferPointer(start: data, count: size * count))
}
