/// A FHIR `date`, `dateTime` or `instant` value of any precision (`2025`, `2025-04`, `2025-04-01`,
/// `2025-04-01T09:30:00.5+01:00`), read as the span of time it covers.
struct PartialDateTime: Sendable, Hashable {
    /// How much of the value is written.
    enum Precision: Sendable, Hashable, Comparable {
        case year, month, day, time
    }

    let precision: Precision
    /// Start of the covered span, milliseconds since the epoch (UTC when a zone is given, else read as UTC).
    let lowerBound: Int64
    /// End of the covered span (exclusive).
    let upperBound: Int64
    /// Whether a time zone was written (only times carry one; FHIR requires it there).
    let hasZone: Bool

    /// Parses `YYYY(-MM(-DD(Thh:mm:ss(.f+)?(Z|(+|-)hh:mm))?)?)?` with the ranges of the R4 regular
    /// expressions (year 0001–9999, seconds up to 60, zones up to ±14:00) and real calendar days.
    init?(_ text: String) {
        var text = text
        guard let value = text.withUTF8({ PartialDateTime(bytes: $0) }) else { return nil }
        self = value
    }

    private init?(bytes b: UnsafeBufferPointer<UInt8>) {
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var value = 0
            for i in start..<start + count {
                guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(b[i] - UInt8(ascii: "0"))
            }
            return value
        }
        func byte(_ i: Int, _ ascii: Unicode.Scalar) -> Bool { i < b.count && b[i] == UInt8(ascii: ascii) }

        guard let year = digits(0, 4), year >= 1 else { return nil }
        var month = 1
        var day = 1
        var precision = Precision.year
        var index = 4
        if byte(4, "-") {
            guard let value = digits(5, 2), (1...12).contains(value) else { return nil }
            month = value
            precision = .month
            index = 7
            if byte(7, "-") {
                guard let value = digits(8, 2), (1...FHIRInstant.daysIn(month: month, year: year)).contains(value) else {
                    return nil
                }
                day = value
                precision = .day
                index = 10
            }
        }
        let days = Int64(FHIRInstant.daysFromCivil(year: year, month: month, day: day))
        var lower = days * 86_400_000
        var upper: Int64
        var hasZone = false
        if byte(index, "T") {
            guard precision == .day, let time = TimeOfDay(b, from: index + 1) else { return nil }
            index = time.end
            guard let zone = PartialDateTime.zoneOffsetMinutes(b, &index) else { return nil }
            hasZone = true
            precision = .time
            lower += time.milliseconds - Int64(zone) * 60_000
            upper = lower + 1
        } else {
            switch precision {
            case .year:
                upper = Int64(FHIRInstant.daysFromCivil(year: year + 1, month: 1, day: 1)) * 86_400_000
            case .month:
                let next = month == 12 ? (year + 1, 1) : (year, month + 1)
                upper = Int64(FHIRInstant.daysFromCivil(year: next.0, month: next.1, day: 1)) * 86_400_000
            case .day, .time:
                upper = lower + 86_400_000
            }
        }
        guard index == b.count else { return nil }
        self.precision = precision
        self.lowerBound = lower
        self.upperBound = upper
        self.hasZone = hasZone
    }

    /// Whether every moment this value can mean lies before every moment `other` can mean. A value
    /// without a zone compared with one that has a zone is widened by 14 hours each way (its zone is unknown).
    func isWhollyBefore(_ other: PartialDateTime) -> Bool {
        let widen: Int64 = 14 * 3_600_000
        var end = upperBound
        var start = other.lowerBound
        if hasZone != other.hasZone {
            if !hasZone { end += widen } else { start -= widen }
        }
        return end <= start
    }

    /// `Z` or `(+|-)hh:mm` with hh 00–13 and mm 00–59, or exactly 14:00; advances `index`.
    static func zoneOffsetMinutes(_ b: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> Int? {
        guard index < b.count else { return nil }
        if b[index] == UInt8(ascii: "Z") {
            index += 1
            return 0
        }
        guard b[index] == UInt8(ascii: "+") || b[index] == UInt8(ascii: "-"), index + 6 <= b.count,
            b[index + 3] == UInt8(ascii: ":")
        else { return nil }
        let sign = b[index] == UInt8(ascii: "-") ? -1 : 1
        func two(_ i: Int) -> Int? {
            let d0 = Int(b[i]) - 48
            let d1 = Int(b[i + 1]) - 48
            guard (0...9).contains(d0), (0...9).contains(d1) else { return nil }
            return d0 * 10 + d1
        }
        guard let hours = two(index + 1), let minutes = two(index + 4) else { return nil }
        guard (hours <= 13 && minutes <= 59) || (hours == 14 && minutes == 0) else { return nil }
        index += 6
        return sign * (hours * 60 + minutes)
    }
}

/// `hh:mm:ss(.f+)?` with hours 00–23, minutes 00–59 and seconds 00–60 (a leap second), as FHIR writes times.
struct TimeOfDay: Sendable {
    /// Milliseconds since midnight (fraction truncated to milliseconds).
    let milliseconds: Int64
    /// Index just after the time.
    let end: Int

    init?(_ b: UnsafeBufferPointer<UInt8>, from start: Int) {
        func two(_ i: Int) -> Int? {
            guard i + 2 <= b.count else { return nil }
            let d0 = Int(b[i]) - 48
            let d1 = Int(b[i + 1]) - 48
            guard (0...9).contains(d0), (0...9).contains(d1) else { return nil }
            return d0 * 10 + d1
        }
        guard let hour = two(start), hour <= 23, start + 2 < b.count, b[start + 2] == UInt8(ascii: ":"),
            let minute = two(start + 3), minute <= 59, start + 5 < b.count, b[start + 5] == UInt8(ascii: ":"),
            let second = two(start + 6), second <= 60
        else { return nil }
        var index = start + 8
        var millis = 0
        if index < b.count, b[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            while index < b.count, b[index] >= UInt8(ascii: "0"), b[index] <= UInt8(ascii: "9") {
                if index - fractionStart < 3 { millis = millis * 10 + Int(b[index] - UInt8(ascii: "0")) }
                index += 1
            }
            let written = index - fractionStart
            guard written > 0 else { return nil }
            if written < 3 {
                for _ in written..<3 { millis *= 10 }
            }
        }
        milliseconds = Int64(((hour * 60 + minute) * 60 + second) * 1000 + millis)
        end = index
    }

    /// A whole `time` value: the time and nothing after it.
    static func isValid(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            guard let time = TimeOfDay(bytes, from: 0) else { return false }
            return time.end == bytes.count
        }
    }
}
