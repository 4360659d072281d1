import FHIRJSON

/// The JSON kind and lexical form of each FHIR R4 primitive type (`http://hl7.org/fhir/R4/datatypes.html`).
enum PrimitiveRules {
    /// Why a primitive value is not acceptable.
    enum Problem: Sendable, Equatable {
        /// The JSON kind is wrong; the payload names the kind that belongs (`string`, `number`, `boolean`).
        case wrongJSONType(expected: String)
        /// `""`: FHIR JSON leaves out elements that have no value.
        case empty
        /// The text breaks the type's form; the payload is the rule as a sentence fragment.
        case invalid(rule: String)
    }

    /// Longest string FHIR allows (1 MB of characters).
    static let maxStringLength = 1_048_576

    /// Checks `value` against the primitive `type`; `nil` when it conforms.
    static func check(_ value: JSON, as type: FHIRType) -> Problem? {
        switch type {
        case .boolean:
            guard case .bool = value else { return .wrongJSONType(expected: "boolean") }
            return nil
        case .integer:
            return checkInteger(value, range: -2_147_483_648...2_147_483_647, rule: "an integer is a whole number from -2147483648 to 2147483647")
        case .unsignedInt:
            return checkInteger(value, range: 0...2_147_483_647, rule: "an unsignedInt is a whole number from 0 to 2147483647")
        case .positiveInt:
            return checkInteger(value, range: 1...2_147_483_647, rule: "a positiveInt is a whole number from 1 to 2147483647")
        case .decimal:
            // The JSON number grammar is exactly the R4 decimal grammar, and the parser enforced it.
            guard case .number = value else { return .wrongJSONType(expected: "number") }
            return nil
        default:
            guard case .string(let text) = value else { return .wrongJSONType(expected: "string") }
            if text.isEmpty { return .empty }
            return checkText(text, as: type)
        }
    }

    /// Whether a problem's message may quote the value: only for structural tokens, never for free text,
    /// dates or identifier values (they can identify a patient).
    static func mayQuote(_ type: FHIRType) -> Bool {
        switch type {
        case .code, .id, .uri, .url, .canonical, .oid, .uuid: true
        default: false
        }
    }

    private static func checkInteger(_ value: JSON, range: ClosedRange<Int>, rule: String) -> Problem? {
        guard case .number(let number) = value else { return .wrongJSONType(expected: "number") }
        let text = number.text
        let isWholeLiteral = !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
        guard isWholeLiteral, let integer = Int(text), range.contains(integer) else { return .invalid(rule: rule) }
        return nil
    }

    private static func checkText(_ text: String, as type: FHIRType) -> Problem? {
        switch type {
        case .string, .markdown:
            // UTF-16 units never outnumber UTF-8 bytes: only long text needs counting.
            if text.utf8.count > maxStringLength, text.utf16.count > maxStringLength {
                return .invalid(rule: "a string holds at most 1,048,576 characters")
            }
            if hasForbiddenControl(text) {
                return .invalid(rule: "a string holds no control characters other than tab, carriage return and line feed")
            }
            return nil
        case .code:
            return isCode(text) ? nil : .invalid(rule: "a code has no leading, trailing or repeated whitespace")
        case .id:
            return isID(text) ? nil : .invalid(rule: "an id is 1 to 64 characters from A-Z, a-z, 0-9, '-' and '.'")
        case .uri, .url, .canonical:
            return text.unicodeScalars.contains(where: isWhitespace)
                ? .invalid(rule: "a \(type.rawValue) contains no whitespace") : nil
        case .oid:
            return isOID(text) ? nil : .invalid(rule: "an oid is urn:oid: followed by dotted numbers, e.g. urn:oid:1.2.3")
        case .uuid:
            return isUUID(text) ? nil : .invalid(rule: "a uuid is urn:uuid: followed by a lower-case UUID")
        case .base64Binary:
            return isBase64(text) ? nil : .invalid(rule: "base64Binary is base64 text (A-Z, a-z, 0-9, '+', '/', '=' padding)")
        case .date:
            guard let value = PartialDateTime(text), value.precision != .time else {
                return .invalid(rule: "a date is YYYY, YYYY-MM or YYYY-MM-DD with a real month and day")
            }
            return nil
        case .dateTime:
            return PartialDateTime(text) == nil
                ? .invalid(
                    rule: "a dateTime is YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss(.sss) with a time zone (Z or +hh:mm)")
                : nil
        case .instant:
            guard let value = PartialDateTime(text), value.precision == .time else {
                return .invalid(rule: "an instant is a full date and time with seconds and a time zone, e.g. 2025-04-01T09:30:00Z")
            }
            return nil
        case .time:
            return TimeOfDay.isValid(text) ? nil : .invalid(rule: "a time is hh:mm:ss(.sss) without a time zone")
        case .xhtml:
            return isNarrativeDiv(text)
                ? nil : .invalid(rule: "narrative is an XHTML <div> element in the namespace http://www.w3.org/1999/xhtml")
        default:
            return nil
        }
    }

    /// Whether `text` holds a control character other than tab, CR and LF (R4 string: `[ \r\n\t\S]+`).
    /// All of them are ASCII, and in UTF-8 an ASCII byte is always that character, so the bytes are
    /// checked without decoding.
    private static func hasForbiddenControl(_ text: String) -> Bool {
        let isForbidden = { (byte: UInt8) in
            (byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D) || byte == 0x7F
        }
        return text.utf8.withContiguousStorageIfAvailable { $0.contains(where: isForbidden) }
            ?? text.utf8.contains(where: isForbidden)
    }

    /// Unicode whitespace, with a fast path for ASCII (space, tab, LF, VT, FF, CR).
    private static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return scalar == " " || (0x09...0x0D).contains(scalar.value) }
        return scalar.properties.isWhitespace
    }

    /// `[^\s]+(\s[^\s]+)*`
    static func isCode(_ text: String) -> Bool {
        var previousWasSpace = true  // so a leading space fails
        for scalar in text.unicodeScalars {
            let isSpace = isWhitespace(scalar)
            if isSpace && previousWasSpace { return false }
            previousWasSpace = isSpace
        }
        return !previousWasSpace
    }

    /// `[A-Za-z0-9\-\.]{1,64}`
    static func isID(_ text: String) -> Bool {
        let bytes = text.utf8
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."):
                true
            default: false
            }
        }
    }

    /// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`
    private static func isOID(_ text: String) -> Bool {
        guard text.hasPrefix("urn:oid:") else { return false }
        let arcs = text.dropFirst(8).split(separator: ".", omittingEmptySubsequences: false)
        guard arcs.count >= 2, let first = arcs.first, ["0", "1", "2"].contains(first) else { return false }
        return arcs.dropFirst().allSatisfy { arc in
            !arc.isEmpty && arc.allSatisfy(\.isASCIIDigit) && (arc == "0" || arc.first != "0")
        }
    }

    /// `urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
    private static func isUUID(_ text: String) -> Bool {
        guard text.hasPrefix("urn:uuid:") else { return false }
        let groups = text.dropFirst(9).split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return false }
        return groups.allSatisfy { group in group.allSatisfy { $0.isASCIIDigit || ("a"..."f").contains($0) } }
    }

    /// Base64 with optional whitespace between quads and `=` padding only at the end.
    private static func isBase64(_ text: String) -> Bool {
        var count = 0
        var padding = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                continue
            case UInt8(ascii: "="):
                padding += 1
                guard padding <= 2 else { return false }
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                guard padding == 0 else { return false }
            default:
                return false
            }
            count += 1
        }
        return count % 4 == 0
    }

    /// R4 txt-1/txt-3 in short: the narrative is a `<div>` in the XHTML namespace with some content.
    private static func isNarrativeDiv(_ text: String) -> Bool {
        let trimmed = text.unicodeScalars.drop(while: isWhitespace)
        guard trimmed.starts(with: "<div".unicodeScalars), let afterName = trimmed.dropFirst(4).first,
            afterName == ">" || isWhitespace(afterName)
        else { return false }
        let openingTag = String(String.UnicodeScalarView(trimmed.prefix { $0 != ">" }))
        return openingTag.contains("xmlns=\"http://www.w3.org/1999/xhtml\"")
            || openingTag.contains("xmlns='http://www.w3.org/1999/xhtml'")
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
