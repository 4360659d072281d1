public import Logging

/// Masks patient identifiers before a line is written: any run of ten digits (also written 3-3-4 with
/// spaces or dashes) — an NHS number, valid or not — keeps only its last three digits, and the values of
/// metadata keys that name patient fields (`name`, `given`, `family`, `birthDate`, `nhsNumber`,
/// `address`, `telecom`, …) are replaced entirely. Names cannot be recognised in free text, so they must
/// only ever travel in such fields.
///
/// A ten-digit number that is not an NHS number (an epoch time in seconds) is masked too: over-masking a
/// log line is the safe failure.
public struct PatientDataRedactor: Sendable {
    /// Metadata keys whose values are patient data, compared without case, `-` or `_`.
    public static let patientFieldKeys: Set<String> = [
        "patient", "patientname", "name", "names", "given", "family", "prefix", "suffix", "fullname", "text",
        "birthdate", "dateofbirth", "dob", "nhsnumber", "nhsno", "nhs", "address", "postcode", "postalcode",
        "telecom", "phone", "telephone", "email", "contact",
    ]

    /// The replacement for a patient field's value.
    public static let redacted = "<redacted>"

    /// A new instance.
    public init() {}

    /// `text` with every NHS-number-shaped run masked.
    public func mask(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count >= 10 else { return text }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        var changed = false
        while index < bytes.count {
            if (index == 0 || !Self.isDigit(bytes[index - 1])), let length = Self.nhsNumberLength(in: bytes, at: index) {
                let digits = bytes[index..<(index + length)].filter(Self.isDigit)
                output += Array("*******".utf8) + digits.suffix(3)
                index += length
                changed = true
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return changed ? String(decoding: output, as: UTF8.self) : text
    }

    /// Whether the value of metadata `key` is a patient field.
    public func isPatientField(_ key: String) -> Bool {
        let normalised = key.lowercased().filter { $0 != "_" && $0 != "-" }
        let lastComponent = normalised.split(separator: ".").last.map(String.init) ?? normalised
        return Self.patientFieldKeys.contains(lastComponent)
    }

    /// `value` for metadata `key`, with patient data removed (recursively for lists and dictionaries).
    public func redact(_ value: Logger.MetadataValue, key: String) -> Logger.MetadataValue {
        if isPatientField(key) { return .string(Self.redacted) }
        switch value {
        case .string(let text): return .string(mask(text))
        case .stringConvertible(let convertible): return .string(mask(convertible.description))
        case .array(let items): return .array(items.map { redact($0, key: key) })
        case .dictionary(let dictionary):
            return .dictionary(dictionary.reduce(into: [:]) { result, entry in result[entry.key] = redact(entry.value, key: entry.key) })
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// The length of an NHS-number-shaped run starting at `start` (10 digits, or 3-3-4 with one space or
    /// dash between groups) not followed by another digit, or `nil`.
    private static func nhsNumberLength(in bytes: [UInt8], at start: Int) -> Int? {
        func digits(_ from: Int, _ count: Int) -> Bool {
            from + count <= bytes.count && bytes[from..<(from + count)].allSatisfy(isDigit)
        }
        func endsThere(_ end: Int) -> Bool { end == bytes.count || !isDigit(bytes[end]) }
        if digits(start, 10), endsThere(start + 10) { return 10 }
        guard digits(start, 3), start + 12 <= bytes.count else { return nil }
        let separator = bytes[start + 3]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else { return nil }
        guard digits(start + 4, 3), bytes[start + 7] == separator, digits(start + 8, 4), endsThere(start + 12) else { return nil }
        return 12
    }
}
