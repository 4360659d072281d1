/// One header field as sent or received. Values are kept as received; a received byte that is not
/// UTF-8 is read as ISO-8859-1, so no byte is lost.
public struct HTTPField: Sendable, Hashable {
    /// The field name, spelled as sent or received.
    public var name: String
    /// The field value without surrounding whitespace.
    public var value: String

    /// A field `name: value`.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// An ordered list of header fields with case-insensitive lookup. A name may occur more than once
/// (`values(for:)` returns every occurrence in order).
public struct HTTPHeaders: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// The fields in order.
    public private(set) var fields: [HTTPField]

    /// No fields.
    public init() {
        fields = []
    }

    /// The given fields in order.
    public init(_ fields: [HTTPField]) {
        self.fields = fields
    }

    /// `["Accept": "application/fhir+json", …]`, in literal order.
    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { HTTPField(name: $0.0, value: $0.1) }
    }

    /// The first value of `name` (case-insensitive), or `nil`.
    public subscript(name: String) -> String? {
        fields.first { Self.sameName($0.name, name) }?.value
    }

    /// Every value of `name` (case-insensitive), in order.
    public func values(for name: String) -> [String] {
        fields.filter { Self.sameName($0.name, name) }.map(\.value)
    }

    /// Whether a field called `name` (case-insensitive) is present.
    public func contains(_ name: String) -> Bool {
        fields.contains { Self.sameName($0.name, name) }
    }

    /// Appends a field, keeping any existing fields of the same name.
    public mutating func add(name: String, value: String) {
        fields.append(HTTPField(name: name, value: value))
    }

    /// Removes every field called `name` and appends one with `value`.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        add(name: name, value: value)
    }

    /// Removes every field called `name` (case-insensitive).
    public mutating func remove(name: String) {
        fields.removeAll { Self.sameName($0.name, name) }
    }

    /// The number of fields.
    public var count: Int { fields.count }

    /// Iterates the fields in order.
    public func makeIterator() -> IndexingIterator<[HTTPField]> {
        fields.makeIterator()
    }

    /// Parses a received header block: a status line, then `name: value` lines, each ending in CRLF
    /// (or LF), up to an empty line. Obsolete folded lines are joined to the field before them.
    init(headerBlock bytes: [UInt8]) {
        var fields: [HTTPField] = []
        bytes.withUnsafeBufferPointer { block in
            var start = 0
            var isStatusLine = true
            while start < block.count {
                var end = start
                while end < block.count, block[end] != 0x0A { end += 1 }
                var line = block[start..<end]
                start = end + 1
                if line.last == 0x0D { line = line.dropLast() }
                if isStatusLine {
                    isStatusLine = false
                } else if let first = line.first, first == 0x20 || first == 0x09 {
                    if !fields.isEmpty { fields[fields.count - 1].value += " " + Self.text(Self.trimmed(line)) }
                } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                    fields.append(
                        HTTPField(name: Self.text(line[..<colon]), value: Self.text(Self.trimmed(line[(colon + 1)...]))))
                }
            }
        }
        self.fields = fields
    }

    private static func trimmed(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
        var bytes = bytes
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
        return bytes
    }

    /// UTF-8 when valid, else ISO-8859-1 (every byte one scalar), so no byte is lost.
    private static func text(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        let buffer = UnsafeBufferPointer(rebasing: bytes)
        if buffer.allSatisfy({ $0 < 0x80 }) || String(validating: buffer, as: UTF8.self) != nil {
            return String(decoding: buffer, as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: buffer.map { Unicode.Scalar($0) })
        return String(scalars)
    }

    /// ASCII case-insensitive comparison of header names (names are tokens: ASCII only).
    static func sameName(_ lhs: String, _ rhs: String) -> Bool {
        var left = lhs.utf8.makeIterator()
        var right = rhs.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil):
                return true
            case let (l?, r?):
                if l == r { continue }
                if asciiLowercase(l) != asciiLowercase(r) { return false }
            default:
                return false
            }
        }
    }

    private static func asciiLowercase(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }
}
