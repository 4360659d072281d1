import Synchronization

/// A fault the store can inject into a FHIR request.
public enum FaultKind: String, Sendable, Hashable, CaseIterable {
    /// Answer `429 Too Many Requests` with `Retry-After`, doing nothing.
    case tooManyRequests = "429"
    /// Answer `503 Service Unavailable` with `Retry-After`, doing nothing.
    case serviceUnavailable = "503"
    /// Close the connection (TCP reset) before reading the body or doing anything.
    case reset
    /// Do the request (a write commits), then close the connection without answering.
    case dropAfterCommit = "drop-after-commit"
    /// Wait ``FaultSettings/slowDelayMilliseconds`` before doing the request.
    case slow
}

/// How often and which faults the store injects.
public struct FaultSettings: Sendable, Hashable {
    /// Probability (0...1) that an eligible request gets a fault.
    public var rate: Double
    /// The faults to choose from (uniformly) when one is due.
    public var kinds: [FaultKind]
    /// Seed of the random sequence: the same seed and the same order of requests give the same faults.
    public var seed: UInt64
    /// `Retry-After` seconds on 429 and 503.
    public var retryAfterSeconds: Int
    /// Delay of a `slow` fault.
    public var slowDelayMilliseconds: Int

    public init(rate: Double = 0, kinds: [FaultKind] = [], seed: UInt64 = 0, retryAfterSeconds: Int = 1, slowDelayMilliseconds: Int = 2000) {
        self.rate = rate
        self.kinds = kinds
        self.seed = seed
        self.retryAfterSeconds = retryAfterSeconds
        self.slowDelayMilliseconds = slowDelayMilliseconds
    }

    /// Whether any fault can happen.
    public var isActive: Bool { rate > 0 && !kinds.isEmpty }
}

/// Draws faults from a seeded generator; one draw per eligible request, in arrival order.
final class FaultInjector: Sendable {
    private struct State {
        var settings: FaultSettings
        var generator: SplitMix64
        var eligible = 0
        var injected: [FaultKind: Int] = [:]
    }

    private let state: Mutex<State>

    init(_ settings: FaultSettings) {
        state = Mutex(State(settings: settings, generator: SplitMix64(seed: settings.seed)))
    }

    /// The fault for the next eligible request, or `nil`.
    func draw() -> FaultKind? {
        state.withLock { state in
            state.eligible += 1
            guard state.settings.isActive else { return nil }
            let roll = Double(state.generator.next() >> 11) / Double(1 << 53)
            let choice = Int(state.generator.next() % UInt64(state.settings.kinds.count))
            guard roll < state.settings.rate else { return nil }
            let kind = state.settings.kinds[choice]
            state.injected[kind, default: 0] += 1
            return kind
        }
    }

    var settings: FaultSettings { state.withLock { $0.settings } }

    /// Replaces the settings and restarts the sequence and the counters.
    func reconfigure(_ settings: FaultSettings) {
        state.withLock { $0 = State(settings: settings, generator: SplitMix64(seed: settings.seed)) }
    }

    /// Eligible requests seen and faults injected by kind since the last (re)configuration.
    var counters: (eligible: Int, injected: [FaultKind: Int]) {
        state.withLock { ($0.eligible, $0.injected) }
    }
}

/// SplitMix64: a small, fast, well-mixed generator whose whole sequence follows from its seed.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
