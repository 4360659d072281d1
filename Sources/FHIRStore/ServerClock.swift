#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The store's time: the system clock shifted by `--clock-skew`, in whole seconds when a skew is set.
///
/// Write stamps never go backwards: each one is at least the previous one (several versions may share a
/// stamp), so ordering by `(lastUpdated, sequence)` is the order in which writes committed.
///
/// The clock also knows the stamp of the write in progress (there is one writer), so that the time a
/// search reports (``searchTime()``) is never later than a version that search could not see: a client
/// that asks next for `_lastUpdated=ge<that time>` misses nothing.
final class ServerClock: Sendable {
    /// Milliseconds added to the system clock.
    let skewMilliseconds: Int64
    /// Whether stamps are truncated to whole seconds (so several versions share one second).
    let wholeSeconds: Bool
    private struct Stamps {
        var lastIssued: Int64
        /// The first stamp of the write transaction in progress, until it commits or rolls back.
        var pending: Int64?
    }
    private let stamps: Mutex<Stamps>

    /// - Parameters:
    ///   - skewSeconds: shift applied to every timestamp; `nil` for none (millisecond precision).
    ///   - notBefore: the newest stamp already stored, so a restarted store never writes an older one.
    init(skewSeconds: Double?, notBefore: Int64 = 0) {
        skewMilliseconds = Int64(((skewSeconds ?? 0) * 1000).rounded())
        wholeSeconds = skewSeconds != nil
        stamps = Mutex(Stamps(lastIssued: notBefore))
    }

    /// The current server time in milliseconds since the epoch (skewed, truncated).
    func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let millis = Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000 + skewMilliseconds
        return wholeSeconds ? millis - ((millis % 1000) + 1000) % 1000 : millis
    }

    /// A stamp for a write: the current time, or the previous stamp when the clock has not moved past it.
    /// Call only inside a write transaction, and ``endWrite()`` once it has committed or rolled back.
    func stampForWrite() -> Int64 {
        let current = now()
        return stamps.withLock { stamps in
            stamps.lastIssued = max(stamps.lastIssued, current)
            if stamps.pending == nil { stamps.pending = stamps.lastIssued }
            return stamps.lastIssued
        }
    }

    /// The write transaction that took stamps has ended.
    func endWrite() {
        stamps.withLock { $0.pending = nil }
    }

    /// The time a search or history read reports as `Bundle.meta.lastUpdated`; take it before the read.
    ///
    /// It is the current time, or just before the stamp of a write still in flight, so every version the
    /// read cannot see carries a `lastUpdated` at or after it.
    func searchTime() -> Int64 {
        let current = now()
        return stamps.withLock { stamps in
            guard let pending = stamps.pending else { return current }
            return min(current, pending - 1)
        }
    }

    /// A FHIR `instant` for `milliseconds`, in UTC; without a fraction when stamps are whole seconds.
    func instant(_ milliseconds: Int64) -> String {
        TimeFormat.instant(milliseconds, fraction: !wholeSeconds)
    }
}

/// Formats for the two ways the store writes time.
enum TimeFormat {
    /// `2025-04-01T09:30:00.123Z` (or `…:00Z` without `fraction`).
    static func instant(_ milliseconds: Int64, fraction: Bool = true) -> String {
        let parts = CivilTime(milliseconds)
        var text = "\(pad(parts.year, 4))-\(pad(parts.month, 2))-\(pad(parts.day, 2))T"
            + "\(pad(parts.hour, 2)):\(pad(parts.minute, 2)):\(pad(parts.second, 2))"
        if fraction { text += ".\(pad(parts.millisecond, 3))" }
        return text + "Z"
    }

    /// The HTTP date form (RFC 9110 IMF-fixdate), e.g. `Tue, 01 Apr 2025 09:30:00 GMT`.
    static func httpDate(_ milliseconds: Int64) -> String {
        let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = CivilTime(milliseconds)
        let weekday = weekdays[((parts.daysSinceEpoch % 7) + 7) % 7]
        return "\(weekday), \(pad(parts.day, 2)) \(months[parts.month - 1]) \(pad(parts.year, 4)) "
            + "\(pad(parts.hour, 2)):\(pad(parts.minute, 2)):\(pad(parts.second, 2)) GMT"
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// A UTC calendar date and time split out of milliseconds since the epoch.
struct CivilTime {
    let daysSinceEpoch: Int
    let year: Int
    let month: Int
    let day: Int
    let hour: Int
    let minute: Int
    let second: Int
    let millisecond: Int

    init(_ milliseconds: Int64) {
        let millis = Int(((milliseconds % 1000) + 1000) % 1000)
        let totalSeconds = (milliseconds - Int64(millis)) / 1000
        let secondOfDay = Int(((totalSeconds % 86_400) + 86_400) % 86_400)
        let days = Int((totalSeconds - Int64(secondOfDay)) / 86_400)
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        daysSinceEpoch = days
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        self.month = month
        day = dayOfYear - (153 * mp + 2) / 5 + 1
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
        millisecond = millis
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
