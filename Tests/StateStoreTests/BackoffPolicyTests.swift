import CaresyncTestSupport
import StateStore
import Testing

@Suite("Backoff policy")
struct BackoffPolicyTests {
    let policy = BackoffPolicy.standard

    @Test("nominal delays: 0.25 s doubling, capped at 5 minutes")
    func nominal() {
        let delays = (1...14).map { policy.nominalDelayMilliseconds(failedAttempts: $0) }
        #expect(delays == [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000, 300_000])
        #expect(policy.nominalDelayMilliseconds(failedAttempts: 10_000) == 300_000)
    }

    @Test("jitter keeps every delay within [nominal × (1 − jitter), nominal]", arguments: [0.0, 0.25, 0.5, 0.999])
    func jitterBounds(unit: Double) {
        for attempt in 1...20 {
            let nominal = policy.nominalDelayMilliseconds(failedAttempts: attempt)
            let delay = policy.delayMilliseconds(failedAttempts: attempt, retryAfterMilliseconds: nil, randomUnit: unit)
            #expect(delay <= nominal)
            #expect(Double(delay) >= (Double(nominal) * (1 - policy.jitter)).rounded(.down))
            #expect(delay <= 300_000)
        }
        #expect(policy.delayMilliseconds(failedAttempts: 1, retryAfterMilliseconds: nil, randomUnit: 0.5) == 188)
    }

    @Test("Retry-After wins over the computed delay, without jitter, bounded by the limit")
    func retryAfter() {
        #expect(policy.delayMilliseconds(failedAttempts: 1, retryAfterMilliseconds: 120_000, randomUnit: 0.9) == 120_000)
        #expect(policy.delayMilliseconds(failedAttempts: 12, retryAfterMilliseconds: 1_000, randomUnit: 0.9) == 1_000)
        #expect(policy.delayMilliseconds(failedAttempts: 3, retryAfterMilliseconds: -5, randomUnit: 0) == 0)
        #expect(policy.delayMilliseconds(failedAttempts: 3, retryAfterMilliseconds: 10 * 86_400_000, randomUnit: 0) == 86_400_000)
    }

    @Test("the next attempt time comes from the injected clock and random source")
    func nextAttempt() {
        let clock = ManualClock()
        let start = clock.nowMilliseconds()
        let next = policy.nextAttemptMilliseconds(failedAttempts: 3, retryAfterMilliseconds: nil, now: clock, random: FixedRandom(unit: 0.5))
        #expect(next == start + 750)
    }
}
