import FHIRJSON
public import FHIRModel

/// A resource of a search page kept as the bytes the server sent, with the few fields a pull needs read
/// out of them without building a tree: what the inbox stores (exactly as received) and parses once, when
/// the row is merged.
public struct RawResource: Sendable {
    /// The resource's JSON, exactly as in the answer.
    public var bytes: [UInt8]
    /// `resourceType`, `id`, `meta.versionId`, `meta.lastUpdated` when present as strings.
    public var resourceType: String?
    public var id: String?
    public var versionID: String?
    public var lastUpdated: String?
}

/// One page of a search as raw resources: see ``FHIRClient/searchPage(_:_:)``.
public struct RawBundlePage: Sendable {
    public var resources: [RawResource]
    /// `Bundle.meta.lastUpdated`, else the `Date` header.
    public var serverTime: FHIRInstant?
    /// The `next` link, checked to lie under the peer's base.
    public var next: String?
}

/// Walks JSON bytes without building values: finds members and the byte ranges of values. Strings are
/// decoded only where asked (keys and the few fields read).
struct JSONScanner {
    let bytes: [UInt8]
    var index = 0

    struct Failure: Error {
        let offset: Int
        let message: String
    }

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    func fail(_ message: String) -> Failure { Failure(offset: index, message: message) }

    mutating func expect(_ byte: UInt8) throws(Failure) {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { throw fail("expected '\(Character(UnicodeScalar(byte)))'") }
        index += 1
    }

    /// The range of the string starting at `index` (quotes included), skipping it.
    mutating func skipString() throws(Failure) -> Range<Int> {
        let start = index
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                index += 2
            } else if byte == UInt8(ascii: "\"") {
                index += 1
                return start..<index
            } else {
                index += 1
            }
        }
        throw fail("unterminated string")
    }

    /// Skips one value and returns its byte range.
    mutating func skipValue() throws(Failure) -> Range<Int> {
        skipWhitespace()
        guard index < bytes.count else { throw fail("expected a value") }
        let start = index
        switch bytes[index] {
        case UInt8(ascii: "\""):
            _ = try skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    _ = try skipString()
                    continue
                }
                if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    depth += 1
                    if depth > 256 { throw fail("nested too deeply") }
                } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return start..<index
                    }
                }
                index += 1
            }
            throw fail("unterminated object or array")
        default:
            while index < bytes.count, !"\t\n\r ,]}".utf8.contains(bytes[index]) { index += 1 }
            guard index > start else { throw fail("expected a value") }
        }
        return start..<index
    }

    /// The decoded text of a string value's range (quotes included).
    func string(_ range: Range<Int>) throws(Failure) -> String {
        let inner = bytes[(range.lowerBound + 1)..<(range.upperBound - 1)]
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        do {
            guard let text = try JSON.parse(Array(bytes[range])).stringValue else { throw fail("not a string") }
            return text
        } catch {
            throw fail("a string with a bad escape")
        }
    }

    /// Calls `body` with each member's key and value range of the object starting at `index`.
    mutating func members(_ body: (String, Range<Int>) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let key = try string(try skipString())
            try expect(UInt8(ascii: ":"))
            let value = try skipValue()
            try body(key, value)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return
            } else {
                throw fail("expected ',' or '}'")
            }
        }
    }

    /// Calls `body` with each element's range of the array starting at `index`.
    mutating func elements(_ body: (Range<Int>) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "["))
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            let value = try skipValue()
            try body(value)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
            } else if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return
            } else {
                throw fail("expected ',' or ']'")
            }
        }
    }

    /// A scanner over the sub-range `range` of the same bytes.
    func scanner(at range: Range<Int>) -> JSONScanner {
        var scanner = JSONScanner(bytes)
        scanner.index = range.lowerBound
        return scanner
    }

    /// The string value at `range`, or `nil` when it is not a string.
    func stringValue(_ range: Range<Int>) -> String? {
        guard bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        return try? string(range)
    }
}

extension RawResource {
    /// Reads a resource's identity fields from its bytes.
    init(bytes: [UInt8]) throws(JSONScanner.Failure) {
        self.bytes = bytes
        var scanner = JSONScanner(bytes)
        let reader = JSONScanner(bytes)
        var type: String?
        var id: String?
        var version: String?
        var updated: String?
        try scanner.members { key, value throws(JSONScanner.Failure) in
            switch key {
            case "resourceType": type = reader.stringValue(value)
            case "id": id = reader.stringValue(value)
            case "meta":
                guard bytes[value.lowerBound] == UInt8(ascii: "{") else { return }
                var meta = reader.scanner(at: value)
                try meta.members { key, value throws(JSONScanner.Failure) in
                    if key == "versionId" { version = reader.stringValue(value) }
                    if key == "lastUpdated" { updated = reader.stringValue(value) }
                }
            default: break
            }
        }
        resourceType = type
        self.id = id
        versionID = version
        lastUpdated = updated
    }
}
