import CCurl
import Glibc

/// A request URL as libcurl's own parser reads it, so that what we check (scheme, host) is exactly
/// what libcurl will connect to. The parsed handle is handed to the transfer with `CURLOPT_CURLU`.
final class RequestURL {
    /// The `CURLU *` handle; valid for the life of this object.
    let handle: OpaquePointer
    /// `http` or `https`.
    let scheme: String

    private init(handle: OpaquePointer, scheme: String) {
        self.handle = handle
        self.scheme = scheme
    }

    /// The URL without user info, query or fragment, safe to log and to put in errors.
    var redacted: String {
        var redacted = "\(scheme)://\(Self.part(handle, CURLUPART_HOST) ?? "")"
        if let port = Self.part(handle, CURLUPART_PORT) { redacted += ":\(port)" }
        return redacted + (Self.part(handle, CURLUPART_PATH) ?? "/")
    }

    /// Parses `text` and applies the scheme rule: `https`, or `http` to a loopback host only.
    static func parse(_ text: String) throws(HTTPError) -> RequestURL {
        guard let handle = curl_url() else {
            throw HTTPError(code: .internalError, message: "out of memory", url: redactWithoutParsing(text))
        }
        let status = curl_url_set(handle, CURLUPART_URL, text, 0)
        guard status == CURLUE_OK else {
            let reason = String(cString: curl_url_strerror(status))
            curl_url_cleanup(handle)
            throw HTTPError(
                code: .invalidURL, message: "the URL cannot be parsed: \(reason)", url: redactWithoutParsing(text))
        }
        let scheme = (part(handle, CURLUPART_SCHEME) ?? "").lowercased()
        // From here on the object owns the handle and frees it however we leave.
        let url = RequestURL(handle: handle, scheme: scheme)
        if scheme == "https" { return url }
        let host = part(handle, CURLUPART_HOST) ?? ""

        switch scheme {
        case "http":
            guard isLoopback(host: host) else {
                throw HTTPError(
                    code: .insecureURLRefused,
                    message: "plain http:// is refused for \(host): use https://, or a loopback address for local testing",
                    url: url.redacted)
            }
            return url
        default:
            throw HTTPError(code: .invalidURL, message: "scheme '\(scheme)' is not http or https", url: url.redacted)
        }
    }

    deinit {
        curl_url_cleanup(handle)
    }

    /// Whether `host` (as libcurl's URL parser returns it: IPv4 normalised, IPv6 in brackets) is a
    /// loopback address: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104, or the name `localhost`, which
    /// libcurl resolves to loopback itself without asking DNS or /etc/hosts.
    static func isLoopback(host: String) -> Bool {
        var name = host.lowercased()
        if name == "localhost" || name == "localhost." { return true }
        if name.hasPrefix("["), name.hasSuffix("]") {
            name = String(name.dropFirst().dropLast())
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, name, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            let isIPv6Loopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
            let isMappedIPv4Loopback =
                bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
            return isIPv6Loopback || isMappedIPv4Loopback
        }
        return false
    }

    private static func part(_ handle: OpaquePointer, _ part: CURLUPart) -> String? {
        var value: UnsafeMutablePointer<CChar>?
        guard curl_url_get(handle, part, &value, 0) == CURLUE_OK, let value else { return nil }
        defer { curl_free(value) }
        return String(cString: value)
    }

    /// For a URL libcurl could not parse: everything before any query or fragment, without user info.
    private static func redactWithoutParsing(_ text: String) -> String {
        var kept = String(text.prefix { $0 != "?" && $0 != "#" })
        let authorityStart = kept.utf8.indices.first { kept.utf8[$0...].starts(with: "://".utf8) }
        if let authorityStart {
            let start = kept.utf8.index(authorityStart, offsetBy: 3)
            let authority = kept[start...].prefix { $0 != "/" }
            if let at = authority.lastIndex(of: "@") { kept.removeSubrange(start...at) }
        }
        return kept.count > 200 ? String(kept.prefix(200)) + "…" : kept
    }
}
