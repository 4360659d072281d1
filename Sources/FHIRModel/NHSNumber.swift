/// A 10-digit NHS number that passed the Modulus 11 check.
///
/// `description` is masked (only the last three digits show) so that string interpolation into a log
/// line never prints a patient identifier in clear; use ``digits`` where the full number is meant.
public struct NHSNumber: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The identifier system for NHS numbers in FHIR.
    public static let system = "https://fhir.nhs.uk/Id/nhs-number"

    /// The ten digits, no spaces.
    public let digits: String

    /// Why a text is not a valid NHS number.
    public enum Problem: String, Error, Sendable, Hashable {
        case containsSpaces = "nhs-number-spaces"
        case notDigits = "nhs-number-not-digits"
        case wrongLength = "nhs-number-length"
        case allSameDigits = "nhs-number-same-digits"
        case badCheckDigit = "nhs-number-check-digit"

        /// A sentence naming the rule that was broken.
        public var message: String {
            switch self {
            case .containsSpaces: "an NHS number is written as 10 digits without spaces"
            case .notDigits: "an NHS number contains only the digits 0-9"
            case .wrongLength: "an NHS number has exactly 10 digits"
            case .allSameDigits: "an NHS number of ten identical digits is not issued"
            case .badCheckDigit: "the NHS number fails the Modulus 11 check digit"
            }
        }
    }

    /// Checks `text` against the NHS number rules: 10 digits, no spaces, not all the same digit, and a
    /// Modulus 11 check digit (weights 10 down to 2; remainder 11 → 0; 10 → invalid).
    public init(validating text: String) throws(Problem) {
        let bytes = Array(text.utf8)
        if bytes.contains(UInt8(ascii: " ")) { throw .containsSpaces }
        guard bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { throw .notDigits }
        guard bytes.count == 10 else { throw .wrongLength }
        let values = bytes.map { Int($0 - UInt8(ascii: "0")) }
        guard Set(values).count > 1 else { throw .allSameDigits }
        guard NHSNumber.checkDigit(forFirstNine: values[0..<9]) == values[9] else { throw .badCheckDigit }
        self.digits = text
    }

    /// The Modulus 11 check digit for nine digits, or `nil` when the remainder makes it invalid (10).
    public static func checkDigit(forFirstNine digits: some Collection<Int>) -> Int? {
        var sum = 0
        for (position, digit) in digits.enumerated() {
            sum += digit * (10 - position)
        }
        let check = 11 - sum % 11
        switch check {
        case 11: return 0
        case 10: return nil
        default: return check
        }
    }

    /// Up to `count` valid NHS numbers of the synthetic test range 999 000 0000 – 999 999 9999 (never
    /// issued to people), from the nine leading digits `first` upward; candidates whose check digit would
    /// be 10 are skipped. Fewer than `count` when the range ends first. For sandboxes, tests and benchmarks.
    public static func testRange(count: Int, from first: Int = 999_000_000) -> [NHSNumber] {
        var numbers: [NHSNumber] = []
        var candidate = max(first, 999_000_000)
        while numbers.count < count, candidate <= 999_999_999 {
            let digits = String(candidate).compactMap(\.wholeNumberValue)
            if let check = checkDigit(forFirstNine: digits), let number = try? NHSNumber(validating: "\(candidate)\(check)") {
                numbers.append(number)
            }
            candidate += 1
        }
        return numbers
    }

    /// The number with the last three digits only, for logs and summaries.
    public var masked: String { "*******" + digits.suffix(3) }

    public var description: String { masked }

    public static func < (lhs: NHSNumber, rhs: NHSNumber) -> Bool { lhs.digits < rhs.digits }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(validating: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(digits)
    }
}
