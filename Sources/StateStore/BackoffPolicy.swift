import Glibc

/// When a failed push is tried again: exponential backoff with jitter, and `Retry-After` wins.
///
/// The nominal delay after the n-th failed attempt is `initial × multiplier^(n−1)`, capped at `maximum`
/// (defaults: 0.25 s doubling to 5 min). Jitter shortens it by a random fraction of at most `jitter`,
/// so the delay lies in `[nominal × (1 − jitter), nominal]` and never exceeds the cap; this spreads
/// retries of many items that failed together without ever retrying sooner than half the nominal delay.
/// A server's `Retry-After` replaces the computed delay exactly (no jitter), bounded by
/// `retryAfterLimit` so that a nonsense header cannot park an item for years.
///
/// A pure value: the random unit and the current time come from the caller.
public struct BackoffPolicy: Sendable, Hashable {
    public var initialMilliseconds: Int64
    public var multiplier: Double
    public var maximumMilliseconds: Int64
    /// Fraction of the nominal delay that jitter may remove, in `0...1`.
    public var jitter: Double
    public var retryAfterLimitMilliseconds: Int64

    /// 0.25 s doubling to 5 min, jitter 0.5, `Retry-After` honoured up to 24 h.
    public static let standard = BackoffPolicy(
        initialMilliseconds: 250,
        multiplier: 2,
        maximumMilliseconds: 300_000,
        jitter: 0.5,
        retryAfterLimitMilliseconds: 86_400_000
    )

    public init(
        initialMilliseconds: Int64,
        multiplier: Double,
        maximumMilliseconds: Int64,
        jitter: Double,
        retryAfterLimitMilliseconds: Int64
    ) {
        self.initialMilliseconds = initialMilliseconds
        self.multiplier = multiplier
        self.maximumMilliseconds = maximumMilliseconds
        self.jitter = min(max(jitter, 0), 1)
        self.retryAfterLimitMilliseconds = retryAfterLimitMilliseconds
    }

    /// The delay before the next attempt, without jitter, after `failedAttempts` (≥ 1) failures.
    public func nominalDelayMilliseconds(failedAttempts: Int) -> Int64 {
        let exponent = Double(max(failedAttempts, 1) - 1)
        let nominal = Double(initialMilliseconds) * Glibc.pow(multiplier, exponent)
        return nominal >= Double(maximumMilliseconds) ? maximumMilliseconds : Int64(nominal.rounded())
    }

    /// The delay before the next attempt after `failedAttempts` failures. `retryAfterMilliseconds`,
    /// when the server sent one, wins; otherwise `randomUnit` (in `0..<1`) picks the jitter.
    public func delayMilliseconds(failedAttempts: Int, retryAfterMilliseconds: Int64?, randomUnit: Double) -> Int64 {
        if let retryAfterMilliseconds {
            return min(max(retryAfterMilliseconds, 0), retryAfterLimitMilliseconds)
        }
        let nominal = Double(nominalDelayMilliseconds(failedAttempts: failedAttempts))
        let unit = min(max(randomUnit, 0), 1)
        return Int64((nominal * (1 - jitter * unit)).rounded())
    }

    /// The time of the next attempt: `now` plus ``delayMilliseconds(failedAttempts:retryAfterMilliseconds:randomUnit:)``.
    public func nextAttemptMilliseconds(
        failedAttempts: Int,
        retryAfterMilliseconds: Int64?,
        now: some WallClock,
        random: some RandomSource
    ) -> Int64 {
        now.nowMilliseconds()
            + delayMilliseconds(
                failedAttempts: failedAttempts,
                retryAfterMilliseconds: retryAfterMilliseconds,
                randomUnit: random.nextUnit()
            )
    }
}
