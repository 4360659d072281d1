import Glibc

/// The source of "now" for the store: lease expiry, retry times, audit timestamps, queue ages.
/// Injected so tests can move time by hand.
public protocol WallClock: Sendable {
    /// Milliseconds since the Unix epoch, UTC.
    func nowMilliseconds() -> Int64
}

/// The system's real-time clock (`CLOCK_REALTIME`).
public struct SystemWallClock: WallClock {
    public init() {}

    public func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// Randomness for backoff jitter, injected so tests can pin it.
public protocol RandomSource: Sendable {
    /// A value in `0 ..< 1`.
    func nextUnit() -> Double
}

/// Randomness from the system generator.
public struct SystemRandomSource: RandomSource {
    public init() {}

    public func nextUnit() -> Double {
        var generator = SystemRandomNumberGenerator()
        return Double.random(in: 0..<1, using: &generator)
    }
}
