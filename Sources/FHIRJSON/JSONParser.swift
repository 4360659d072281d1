/// Why a byte sequence is not acceptable JSON, and where.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as a stable machine-readable code.
    public enum Code: String, Sendable, Hashable {
        case invalidUTF8 = "invalid-utf8"
        case unexpectedEnd = "unexpected-end"
        case unexpectedCharacter = "unexpected-character"
        case invalidNumber = "invalid-number"
        case invalidEscape = "invalid-escape"
        case controlCharacter = "control-character"
        case duplicateKey = "duplicate-key"
        case tooDeep = "too-deep"
        case trailingContent = "trailing-content"
    }

    public let code: Code
    /// Byte offset of the problem in the input.
    public let offset: Int
    /// 1-based line and column of the problem.
    public let line: Int
    public let column: Int
    /// A sentence for people.
    public let message: String

    public var description: String { "\(message) (line \(line), column \(column))" }
}

/// Limits the parser enforces while reading.
public struct JSONParseOptions: Sendable {
    /// Deepest nesting of arrays and objects accepted.
    public var maxDepth: Int

    /// - Parameter maxDepth: deepest nesting accepted (FHIR resources rarely pass 15).
    public init(maxDepth: Int = 64) {
        self.maxDepth = maxDepth
    }
}

extension JSON {
    /// Parses UTF-8 JSON text. Rejects invalid UTF-8, duplicate object keys, nesting deeper than
    /// `options.maxDepth` and anything after the top-level value except whitespace.
    public static func parse(_ bytes: [UInt8], options: JSONParseOptions = JSONParseOptions()) throws(JSONParseError) -> JSON {
        let result: Result<JSON, JSONParseError> = bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONByteParser(bytes: buffer, maxDepth: options.maxDepth)
            return Result { () throws(JSONParseError) -> JSON in try parser.parseDocument() }
        }
        return try result.get()
    }

    /// Parses JSON text held in a `String`.
    public static func parse(_ text: String, options: JSONParseOptions = JSONParseOptions()) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8), options: options)
    }
}

/// A recursive-descent parser over raw bytes. Strings without escapes are validated and copied in one
/// step; numbers keep their literal text.
private struct JSONByteParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0
    var depth = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(JSONParseError) -> JSON {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if index != bytes.count {
            throw error(.trailingContent, "unexpected content after the JSON value")
        }
        return value
    }

    mutating func parseValue() throws(JSONParseError) -> JSON {
        guard index < bytes.count else { throw error(.unexpectedEnd, "unexpected end of input, a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error(.unexpectedCharacter, "unexpected character \(describe(bytes[index])), a value was expected")
        }
    }

    mutating func parseObject() throws(JSONParseError) -> JSON {
        try enter()
        index += 1  // {
        var members: [JSONMember] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(JSONObject(uniqueMembers: members))
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else {
                throw error(index < bytes.count ? .unexpectedCharacter : .unexpectedEnd, "an object key (a string) was expected")
            }
            let keyOffset = index
            let key = try parseString()
            for member in members where member.key == key {
                index = keyOffset
                throw error(.duplicateKey, "duplicate key \"\(key)\" in one object")
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw error(.unexpectedCharacter, "':' was expected after a key") }
            index += 1
            skipWhitespace()
            let value = try parseValue()
            members.append(JSONMember(key, value))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return .object(JSONObject(uniqueMembers: members))
            case nil:
                throw error(.unexpectedEnd, "unexpected end of input inside an object")
            default:
                throw error(.unexpectedCharacter, "',' or '}' was expected in an object")
            }
        }
    }

    mutating func parseArray() throws(JSONParseError) -> JSON {
        try enter()
        index += 1  // [
        var elements: [JSON] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return .array(elements)
            case nil:
                throw error(.unexpectedEnd, "unexpected end of input inside an array")
            default:
                throw error(.unexpectedCharacter, "',' or ']' was expected in an array")
            }
        }
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > maxDepth {
            throw error(.tooDeep, "nesting deeper than \(maxDepth) levels")
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = index
        guard JSONNumber.scanLiteral(bytes, &index) else {
            throw error(.invalidNumber, "malformed number")
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        return JSONNumber(uncheckedText: text)
    }

    /// Parses a string starting at its opening quote.
    mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        var hasEscape = false
        var isASCII = true
        while true {
            guard index < bytes.count else { throw error(.unexpectedEnd, "unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                hasEscape = true
                index += 2
                continue
            }
            if byte < 0x20 { throw error(.controlCharacter, "unescaped control character in a string") }
            if byte >= 0x80 { isASCII = false }
            index += 1
        }
        let end = index
        index += 1  // closing quote
        let raw = UnsafeBufferPointer(rebasing: bytes[start..<end])
        if !hasEscape {
            if isASCII { return String(decoding: raw, as: UTF8.self) }
            guard let text = String(validating: raw, as: UTF8.self) else {
                index = start
                throw error(.invalidUTF8, "a string is not valid UTF-8")
            }
            return text
        }
        return try unescape(raw, startOffset: start)
    }

    /// Decodes a string body that contains backslash escapes.
    mutating func unescape(_ raw: UnsafeBufferPointer<UInt8>, startOffset: Int) throws(JSONParseError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func fail(_ code: JSONParseError.Code, _ message: String, at offset: Int) -> JSONParseError {
            index = startOffset + offset
            return error(code, message)
        }
        while i < raw.count {
            let byte = raw[i]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                i += 1
                continue
            }
            guard i + 1 < raw.count else { throw fail(.invalidEscape, "a string ends in a lone backslash", at: i) }
            let escaped = raw[i + 1]
            i += 2
            switch escaped {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard let unit = hex4(raw, i) else { throw fail(.invalidEscape, "\\u must be followed by four hex digits", at: i - 2) }
                i += 4
                var scalarValue = UInt32(unit)
                if (0xD800...0xDBFF).contains(unit) {
                    guard i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u"),
                        let low = hex4(raw, i + 2), (0xDC00...0xDFFF).contains(low)
                    else { throw fail(.invalidEscape, "a high surrogate escape is not followed by a low one", at: i - 6) }
                    i += 6
                    scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(unit) {
                    throw fail(.invalidEscape, "a lone low surrogate escape", at: i - 6)
                }
                guard let scalar = Unicode.Scalar(scalarValue) else {
                    throw fail(.invalidEscape, "escape is not a Unicode scalar", at: i - 6)
                }
                out.append(contentsOf: UTF8.encode(scalar)!)
            default:
                throw fail(.invalidEscape, "unknown escape \\\(describe(escaped))", at: i - 2)
            }
        }
        guard let text = String(validating: out, as: UTF8.self) else {
            throw fail(.invalidUTF8, "a string is not valid UTF-8", at: 0)
        }
        return text
    }

    func hex4(_ raw: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt16? {
        guard at + 4 <= raw.count else { return nil }
        var value: UInt16 = 0
        for offset in 0..<4 {
            let byte = raw[at + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt16(digit)
        }
        return value
    }

    mutating func expectWord(_ word: StaticString) throws(JSONParseError) {
        let length = word.utf8CodeUnitCount
        guard index + length <= bytes.count else { throw error(.unexpectedEnd, "unexpected end of input in a literal") }
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: length)
        for offset in 0..<length where bytes[index + offset] != expected[offset] {
            index += offset
            throw error(.unexpectedCharacter, "unexpected character \(describe(bytes[index])) in a literal")
        }
        index += length
    }

    func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(byte, radix: 16))"
    }

    func error(_ code: JSONParseError.Code, _ message: String) -> JSONParseError {
        let offset = min(index, bytes.count)
        var line = 1
        var lineStart = 0
        for position in 0..<offset where bytes[position] == 0x0A {
            line += 1
            lineStart = position + 1
        }
        return JSONParseError(code: code, offset: offset, line: line, column: offset - lineStart + 1, message: message)
    }
}
