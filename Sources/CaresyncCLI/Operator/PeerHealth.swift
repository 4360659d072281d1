import FHIRJSON
import Foundation
import FHIRModel
import StateStore

/// What `caresync status` says about one peer, derived from its ``PeerStatus`` alone (no I/O).
struct PeerHealth {
    /// The peer's state as operators read it.
    enum State: String, CaseIterable {
        /// Pulling, merging or pushing now.
        case syncing
        /// In step (or not contacted yet); waiting for the next cycle.
        case idle
        /// The last contact failed in a way that may pass; retrying with backoff.
        case backingOff = "backing-off"
        /// Cannot be reached (connection, DNS, TLS).
        case unreachable
        /// Refused: not FHIR R4, credentials rejected, or its store went backwards.
        case refused

        /// As shown in tables: `backing off`.
        var label: String { rawValue.replacingOccurrences(of: "-", with: " ") }
    }

    let status: PeerStatus
    let state: State
    /// Why the peer is in that state, when known.
    let detail: String?
    /// How far behind the hub is (or this peer, for the hub), when the daemon measured it.
    let lagMilliseconds: Int64?
    let oldestAgeMilliseconds: Int64?

    init(_ status: PeerStatus, now: Int64) {
        self.status = status
        state = Self.state(of: status.syncState)
        if let detail = status.syncStateDetail {
            self.detail = detail
        } else if status.syncStateAt == nil && status.lastSuccessAt == nil && status.lastErrorAt == nil {
            self.detail = "not contacted yet"
        } else {
            self.detail = nil
        }
        lagMilliseconds = status.lagMilliseconds
        oldestAgeMilliseconds = status.oldestEnqueuedAt.map { max(0, now - $0) }
    }

    /// The engine records what it is doing with each peer (``PeerSyncState``); these are the same states
    /// in the operator's words.
    private static func state(of syncState: PeerSyncState) -> State {
        switch syncState {
        case .syncing: .syncing
        case .idle: .idle
        case .backingOff: .backingOff
        case .unreachable: .unreachable
        case .refused: .refused
        }
    }

    /// The cursor furthest behind across resource types (the one a resync would start from).
    var earliestCursor: String? {
        let times = status.cursors.values.map(\.serverTime)
        return times.min { (FHIRInstant($0)?.millisecondsSinceEpoch ?? .min) < (FHIRInstant($1)?.millisecondsSinceEpoch ?? .min) }
    }

    var role: String { status.peer.mode == .hub ? "hub" : "provider" }
}

/// One thing in `caresync status` that needs an operator.
struct Attention {
    /// `dead-letters`, `open-conflicts`, `unreachable`, `refused`, `queue-stale`, `no-peers`.
    let code: String
    let peer: String?
    let message: String

    /// Everything that needs attention, peer by peer in order.
    static func find(in peers: [PeerHealth], maximumQueueAge: Int64) -> [Attention] {
        guard !peers.isEmpty else {
            return [Attention(code: "no-peers", peer: nil, message: "no peers in the state database: has the daemon started with this state directory?")]
        }
        var found: [Attention] = []
        for peer in peers {
            let name = peer.status.peer.name
            switch peer.state {
            case .unreachable:
                found.append(Attention(code: "unreachable", peer: name, message: "unreachable" + (peer.detail.map { ": \($0)" } ?? "") + " (caresync peers probe \(name))"))
            case .refused:
                found.append(Attention(code: "refused", peer: name, message: "refused" + (peer.detail.map { ": \($0)" } ?? "") + " (caresync peers probe \(name))"))
            case .syncing, .idle, .backingOff:
                break
            }
            if peer.status.deadLetters > 0 {
                found.append(
                    Attention(
                        code: "dead-letters", peer: name,
                        message: "\(Format.plural(peer.status.deadLetters, "dead letter")) (caresync queue --dead --peer \(name))"))
            }
            if peer.status.openConflicts > 0 {
                found.append(
                    Attention(
                        code: "open-conflicts", peer: name,
                        message: "\(Format.plural(peer.status.openConflicts, "open conflict")) (caresync conflicts list)"))
            }
            if let age = peer.oldestAgeMilliseconds, age > maximumQueueAge {
                found.append(
                    Attention(
                        code: "queue-stale", peer: name,
                        message: "the oldest queued push has waited \(Format.duration(milliseconds: age)) (limit \(Format.duration(milliseconds: maximumQueueAge))) (caresync queue --peer \(name))"))
            }
        }
        return found
    }

    var json: JSON {
        ["code": .string(code), "peer": peer.map(JSON.string) ?? .null, "message": .string(message)]
    }
}
