import FHIRJSON

/// A FHIR interaction request as the store sees it, whether it came over HTTP or from a Bundle entry.
struct FHIRRequest: Sendable {
    /// `GET`, `POST`, `PUT` or `DELETE` (upper case).
    var method: String
    /// Path segments below the FHIR base, e.g. `["CarePlan", "123", "_history", "2"]`.
    var path: [String]
    /// The query parameters, decoded, in request order.
    var query: [QueryItem]
    /// `If-Match`.
    var ifMatch: String?
    /// `If-None-Exist` (a query string such as `identifier=system|value`).
    var ifNoneExist: String?
    /// `Prefer: handling=lenient` was sent.
    var lenient: Bool = false
    /// `Prefer: return=…`: what write answers carry. Without it, single writes return the resource and
    /// batch/transaction entries return only their `response` (status, location, etag, lastModified).
    var returnPreference: ReturnPreference?

    enum ReturnPreference: Sendable {
        case minimal
        case representation
    }
    /// The body, if any.
    var body: Body = .none

    enum Body: Sendable {
        case none
        /// Bytes still to be parsed (an HTTP request body).
        case bytes([UInt8])
        /// An already parsed resource (a Bundle entry's `resource`).
        case json(JSON)
    }
}

/// A FHIR interaction response: status, the values behind the standard headers, and a JSON body.
struct FHIRResponse: Sendable {
    var status: Int
    /// `Type/id/_history/n`, relative to the FHIR base (made absolute for the `Location` header).
    var location: String?
    /// The version for `ETag: W/"n"`.
    var versionId: Int?
    /// Milliseconds since the epoch for `Last-Modified`.
    var lastModified: Int64?
    /// The JSON body (a resource, a Bundle or an OperationOutcome).
    var body: [UInt8]?
    /// Whether ``body`` is the stored resource that a write produced or found (dropped for `return=minimal`).
    var bodyIsWrittenResource = false
    /// Seconds for `Retry-After`.
    var retryAfter: Int?

    /// A failure as a response carrying its OperationOutcome.
    init(error: StoreError) {
        status = error.status
        body = error.outcome.serialized()
        retryAfter = error.retryAfter
    }

    init(status: Int, body: [UInt8]? = nil) {
        self.status = status
        self.body = body
    }
}

/// One decoded `name=value` pair of a query string.
struct QueryItem: Sendable, Hashable {
    var name: String
    var value: String

    /// Parses `a=1&b=x%7Cy` (form encoding: `+` is a space); empty pieces are skipped.
    static func parse(_ query: some StringProtocol) -> [QueryItem] {
        var items: [QueryItem] = []
        for piece in query.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = piece.firstIndex(of: "=") {
                items.append(
                    QueryItem(
                        name: percentDecode(piece[piece.startIndex..<equals]),
                        value: percentDecode(piece[piece.index(after: equals)...])
                    )
                )
            } else {
                items.append(QueryItem(name: percentDecode(piece), value: ""))
            }
        }
        return items
    }

    /// Writes items back as a query string, escaping what must be escaped.
    static func encode(_ items: [QueryItem]) -> String {
        items.map { "\(percentEncode($0.name))=\(percentEncode($0.value))" }.joined(separator: "&")
    }

    /// Decodes `%XX` escapes and `+`; malformed escapes are kept as written.
    static func percentDecode(_ text: some StringProtocol) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "%")) || bytes.contains(UInt8(ascii: "+")) else { return String(text) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Escapes everything but the unreserved characters of RFC 3986 (`A-Z a-z 0-9 - . _ ~`), so links
    /// carry `|` as `%7C` and `:` as `%3A`, as most FHIR servers write them.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(byte & 0x0F)]))
            }
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// UUIDs in lower case, for server-assigned ids and Bundle ids.
enum UUIDText {
    /// A version-7 UUID: 48 bits of Unix milliseconds, then random bits. Ids minted one after another sort
    /// (roughly) in time order, so new rows land at the end of the SQLite indexes instead of all over them.
    static func timeOrdered(milliseconds: Int64) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = generator.next()
        let high = UInt64(truncatingIfNeeded: milliseconds) << 16 | 0x7000 | (random >> 52)
        let low = (random & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return format(high: high, low: low)
    }

    /// A random version-4 UUID.
    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = (generator.next() & ~0xF000) | 0x4000
        let low = (generator.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return format(high: high, low: low)
    }

    private static func format(high: UInt64, low: UInt64) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (half, value) in [high, low].enumerated() {
            for nibble in 0..<16 {
                let position = half * 16 + nibble
                if position == 8 || position == 12 || position == 16 || position == 20 { out.append(UInt8(ascii: "-")) }
                out.append(digits[Int((value >> UInt64(60 - 4 * nibble)) & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
