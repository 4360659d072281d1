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

    /// The byte the scanner stands at, `nil` at the end.
    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// The range of the string starting at `index` (quotes included), skipping it.
    mutating func skipString() throws(Failure) -> Range<Int> {
        let start = index
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        guard let end = bytes.withUnsafeBufferPointer({ Self.stringEnd($0, from: start) }) else {
            index = bytes.count
            throw fail("unterminated string")
        }
        index = end
        return start..<end
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
            let (stop, problem) = bytes.withUnsafeBufferPointer { Self.containerEnd($0, from: start) }
            index = stop
            if let problem { throw fail(problem) }
        default:
            while index < bytes.count, !"\t\n\r ,]}".utf8.contains(bytes[index]) { index += 1 }
            guard index > start else { throw fail("expected a value") }
        }
        return start..<index
    }

    /// Just past the string whose opening quote is at `start`; `nil` when it is not terminated.
    private static func stringEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return nil
    }

    /// Just past the object or array opening at `start`, or where it stops being one and why.
    private static func containerEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> (Int, String?) {
        var depth = 0
        var index = start
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                guard let end = stringEnd(bytes, from: index) else { return (bytes.count, "unterminated string") }
                index = end
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > 256 { return (index, "nested too deeply") }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return (index + 1, nil) }
            default:
                break
            }
            index += 1
        }
        return (index, "unterminated object or array")
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

    /// Calls `body` with each member's key of the object starting at `index`, the scanner standing at
    /// the member's value: `body` reads exactly that value (``skipValue()``, or a scan of its own).
    mutating func members(_ body: (String, inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
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
            skipWhitespace()
            try body(key, &self)
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

    /// Calls `body` for each element of the array starting at `index`, the scanner standing at the
    /// element: `body` reads exactly that element.
    mutating func elements(_ body: (inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        try expect(UInt8(ascii: "["))
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try body(&self)
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

    /// The string value at `range`, or `nil` when it is not a string.
    func stringValue(_ range: Range<Int>) -> String? {
        guard bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        return try? string(range)
    }
}

extension RawResource {
    /// Reads the resource object the scanner stands at, with its identity fields, in one pass; the
    /// scanner ends just past it.
    init(scanning scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        let start = scanner.index
        var type: String?
        var id: String?
        var version: String?
        var updated: String?
        try scanner.members { key, value throws(JSONScanner.Failure) in
            switch key {
            case "resourceType": type = value.stringValue(try value.skipValue())
            case "id": id = value.stringValue(try value.skipValue())
            case "meta" where value.current == UInt8(ascii: "{"):
                try value.members { key, field throws(JSONScanner.Failure) in
                    let range = try field.skipValue()
                    if key == "versionId" { version = field.stringValue(range) }
                    if key == "lastUpdated" { updated = field.stringValue(range) }
                }
            default: _ = try value.skipValue()
            }
        }
        bytes = Array(scanner.bytes[start..<scanner.index])
        resourceType = type
        self.id = id
        versionID = version
        lastUpdated = updated
    }
}
