/// A FHIR `instant`: a full date and time with seconds and a zone, e.g. `2025-04-01T09:30:00.123+01:00`.
///
/// Kept as the text the server sent (for round-tripping into query strings) plus the number of
/// milliseconds since 1970-01-01T00:00:00Z (for ordering and cursor arithmetic).
public struct FHIRInstant: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The text as written.
    public let text: String
    /// Milliseconds since the Unix epoch, UTC.
    public let millisecondsSinceEpoch: Int64

    /// Parses a full instant; `nil` when the text lacks seconds or a zone, or a field is out of range.
    public init?(_ text: String) {
        guard let millis = FHIRInstant.parse(Array(text.utf8)) else { return nil }
        self.text = text
        self.millisecondsSinceEpoch = millis
    }

    /// The instant `milliseconds` after the epoch, written in UTC with millisecond precision.
    public init(millisecondsSinceEpoch milliseconds: Int64) {
        self.millisecondsSinceEpoch = milliseconds
        self.text = FHIRInstant.format(milliseconds)
    }

    /// This instant moved by `milliseconds` (negative moves back), written in UTC.
    public func adding(milliseconds: Int64) -> FHIRInstant {
        FHIRInstant(millisecondsSinceEpoch: millisecondsSinceEpoch + milliseconds)
    }

    public var description: String { text }

    public static func < (lhs: FHIRInstant, rhs: FHIRInstant) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public static func == (lhs: FHIRInstant, rhs: FHIRInstant) -> Bool {
        lhs.millisecondsSinceEpoch == rhs.millisecondsSinceEpoch
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(millisecondsSinceEpoch)
    }

    // MARK: Parsing and formatting

    /// `YYYY-MM-DDThh:mm:ss(.f{1,9})?(Z|(+|-)hh:mm)`
    private static func parse(_ b: [UInt8]) -> Int64? {
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var value = 0
            for i in range {
                guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(b[i] - UInt8(ascii: "0"))
            }
            return value
        }
        func byte(_ i: Int, _ c: Character) -> Bool { i < b.count && b[i] == c.asciiValue! }
        guard let year = number(0..<4), byte(4, "-"), let month = number(5..<7), byte(7, "-"),
            let day = number(8..<10), byte(10, "T"), let hour = number(11..<13), byte(13, ":"),
            let minute = number(14..<16), byte(16, ":"), let second = number(17..<19)
        else { return nil }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
            hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var fractionMillis = 0
        if byte(index, ".") {
            index += 1
            let start = index
            while index < b.count, b[index] >= UInt8(ascii: "0"), b[index] <= UInt8(ascii: "9") { index += 1 }
            let digits = index - start
            guard (1...9).contains(digits) else { return nil }
            var millis = 0
            for position in 0..<3 {
                millis = millis * 10 + (position < digits ? Int(b[start + position] - UInt8(ascii: "0")) : 0)
            }
            fractionMillis = millis
        }
        var offsetMinutes = 0
        if byte(index, "Z") {
            index += 1
        } else if byte(index, "+") || byte(index, "-") {
            let sign = byte(index, "-") ? -1 : 1
            guard let offsetHour = number(index + 1..<index + 3), byte(index + 3, ":"),
                let offsetMinute = number(index + 4..<index + 6), offsetHour <= 14, offsetMinute < 60
            else { return nil }
            offsetMinutes = sign * (offsetHour * 60 + offsetMinute)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        return seconds * 1000 + Int64(fractionMillis)
    }

    private static func format(_ milliseconds: Int64) -> String {
        let millis = Int(((milliseconds % 1000) + 1000) % 1000)
        let totalSeconds = (milliseconds - Int64(millis)) / 1000
        let days = Int((totalSeconds - ((totalSeconds % 86_400) + 86_400) % 86_400) / 86_400)
        let secondOfDay = Int(totalSeconds - Int64(days) * 86_400)
        let (year, month, day) = civilFromDays(days)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(millis, 3))Z"
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
