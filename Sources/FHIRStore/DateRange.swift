/// The span of time a FHIR date search value stands for: `2025` is the whole year, `2025-04-01T10:00Z`
/// the whole minute, `2025-04-01T10:00:00.123Z` one millisecond. Times without a zone are read as UTC.
struct DateRange: Sendable, Hashable {
    /// First millisecond inside the range.
    var lowerBound: Int64
    /// First millisecond after the range.
    var upperBound: Int64

    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]`.
    init?(_ text: String) {
        let b = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var value = 0
            for i in range {
                guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(b[i] - UInt8(ascii: "0"))
            }
            return value
        }
        func byte(_ i: Int, _ c: UInt8) -> Bool { i < b.count && b[i] == c }

        guard let year = number(0..<4) else { return nil }
        if b.count == 4 {
            self.init(days: CivilTime.days(year: year, month: 1, day: 1), untilDays: CivilTime.days(year: year + 1, month: 1, day: 1))
            return
        }
        guard byte(4, UInt8(ascii: "-")), let month = number(5..<7), (1...12).contains(month) else { return nil }
        if b.count == 7 {
            let next = month == 12 ? (year + 1, 1) : (year, month + 1)
            self.init(days: CivilTime.days(year: year, month: month, day: 1), untilDays: CivilTime.days(year: next.0, month: next.1, day: 1))
            return
        }
        guard byte(7, UInt8(ascii: "-")), let day = number(8..<10), (1...31).contains(day) else { return nil }
        let days = CivilTime.days(year: year, month: month, day: day)
        guard CivilTime(Int64(days) * 86_400_000).day == day else { return nil }  // e.g. 2025-02-30
        if b.count == 10 {
            self.init(days: days, untilDays: days + 1)
            return
        }
        guard byte(10, UInt8(ascii: "T")), let hour = number(11..<13), hour < 24, byte(13, UInt8(ascii: ":")),
            let minute = number(14..<16), minute < 60
        else { return nil }
        var index = 16
        var second = 0
        var fraction = 0
        var width: Int64 = 60_000
        if byte(index, UInt8(ascii: ":")) {
            guard let parsed = number(index + 1..<index + 3), parsed < 60 else { return nil }
            second = parsed
            width = 1000
            index += 3
            if byte(index, UInt8(ascii: ".")) {
                index += 1
                let start = index
                while index < b.count, b[index] >= UInt8(ascii: "0"), b[index] <= UInt8(ascii: "9") { index += 1 }
                let digits = index - start
                guard digits >= 1 else { return nil }
                for position in 0..<3 {
                    fraction = fraction * 10 + (position < digits ? Int(b[start + position] - UInt8(ascii: "0")) : 0)
                }
                width = digits == 1 ? 100 : digits == 2 ? 10 : 1
            }
        }
        var offsetMinutes = 0
        if byte(index, UInt8(ascii: "Z")) {
            index += 1
        } else if byte(index, UInt8(ascii: "+")) || byte(index, UInt8(ascii: "-")) {
            let sign = byte(index, UInt8(ascii: "-")) ? -1 : 1
            guard let offsetHour = number(index + 1..<index + 3), byte(index + 3, UInt8(ascii: ":")),
                let offsetMinute = number(index + 4..<index + 6), offsetHour <= 14, offsetMinute < 60
            else { return nil }
            offsetMinutes = sign * (offsetHour * 60 + offsetMinute)
            index += 6
        }
        guard index == b.count else { return nil }
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        let lower = seconds * 1000 + Int64(fraction)
        self.init(lowerBound: lower, upperBound: lower + width)
    }

    private init(days: Int, untilDays: Int) {
        self.init(lowerBound: Int64(days) * 86_400_000, upperBound: Int64(untilDays) * 86_400_000)
    }

    private init(lowerBound: Int64, upperBound: Int64) {
        self.lowerBound = lowerBound
        self.upperBound = upperBound
    }
}
