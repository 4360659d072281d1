public import FHIRJSON
import FHIRModel
public import MergeCore
public import StateStore

/// What a peer answered to one push, as the engine needs it (from a single request or a batch entry).
public enum PushAnswer: Sendable, Hashable {
    /// 2xx with the id and version the peer now holds. `created` is false for a conditional create that
    /// found the record already there (200).
    case stored(status: Int, localID: String, versionID: String?)
    /// An error status, with the OperationOutcome text and `Retry-After`.
    case status(Int, outcome: String?, retryAfterMilliseconds: Int64?)
    /// No usable answer (transport failure or malformed response).
    case failed(message: String, retriable: Bool)
}

/// What to do with a push after its answer (pure).
public enum PushAction: Sendable, Hashable {
    /// Done: the peer holds it.
    case complete(PushCompletion)
    /// The record changed at the peer (409, 412 after `If-Match`) or already existed (conditional create
    /// answered 200): read the peer's current version at `localID` and merge again.
    case remerge(localID: String?)
    /// Try again later (network, 408, 429, 5xx).
    case retry(reason: String, retryAfterMilliseconds: Int64?)
    /// A failure retrying cannot fix (400, 401 after a retry, 403, 404, 410, 412 on create, 422, …).
    case deadLetter(status: Int?, reason: String)
}

/// Classifies push answers and re-merges lost races: no I/O.
public enum PushDecisions {
    /// The action for `answer` to `item`.
    public static func action(for answer: PushAnswer, item: OutboxItem) -> PushAction {
        switch answer {
        case .stored(let status, let localID, let versionID):
            if item.push.operation == .create && status == 200 {
                return .remerge(localID: localID)
            }
            return .complete(PushCompletion(localID: localID, versionID: versionID))
        case .status(let status, let outcome, let retryAfter):
            let detail = "HTTP \(status)" + (outcome.map { ": \($0)" } ?? "")
            switch status {
            case 409:
                return .remerge(localID: item.push.localID)
            case 412 where item.push.operation == .update:
                return .remerge(localID: item.push.localID)
            case 412:
                return .deadLetter(
                    status: status, reason: "the conditional create matched more than one record at the peer: \(detail)")
            case 401 where item.attempts < 2:
                // A token may have expired; the provider was told to forget it. One more try.
                return .retry(reason: detail, retryAfterMilliseconds: nil)
            case 404, 410:
                return .deadLetter(
                    status: status, reason: "the record is missing at the peer (deleted, or its store was restored): \(detail)")
            case 408, 429, 500...599:
                return .retry(reason: detail, retryAfterMilliseconds: retryAfter)
            default:
                return .deadLetter(status: status, reason: detail)
            }
        case .failed(let message, let retriable):
            // Nothing is ever discarded for a transport problem: even one retrying cannot fix by itself
            // (a TLS trust failure) is retried with backoff until the operator fixes it.
            return .retry(reason: retriable ? message : "\(message) (will keep retrying until fixed)", retryAfterMilliseconds: nil)
        }
    }

    /// The recovery for a push that lost a race, given what the target holds now (`current`, `nil` when it
    /// no longer has the record) and the record's hub name.
    ///
    /// - Hub target: merge(base: the push's merge base, ours: the hub's current, theirs: the push's body).
    ///   Conflicting paths keep the hub's value and are stored as a conflict; a result that differs from
    ///   the hub replaces the push (`If-Match` the current version); the hub's known content becomes the
    ///   current one.
    /// - Provider target: when it still holds the version last synced with it (`syncedVersion`: the race
    ///   was with our own earlier push), merge(base: the push's merge base, ours: the push's body, theirs: its
    ///   current) and replace the push with a clean result. Otherwise the push is withdrawn: the provider's
    ///   own change comes through its pull and is merged at the hub (where any conflict is stored), and the
    ///   hub's result reaches it again guarded by its new version.
    public static func recovery(
        for item: OutboxItem, current: FetchedVersion?, isHubTarget: Bool, syncedVersion: String? = nil, policy: MergePolicy,
        actor: String
    ) -> LostRaceRecovery? {
        guard let current else { return nil }
        let pushed = ResourceContent.parse(item.push.body)
        let mergeBase = ResourceContent.parse(item.push.mergeBase)
        let push = item.push
        let type = push.recordKey.resourceType.rawValue
        if isHubTarget {
            guard let pushed else { return nil }
            let outcome = merge(base: mergeBase, ours: current.resource, theirs: pushed, policy: policy)
            var recovery = LostRaceRecovery(
                replacement: nil, targetLocalID: current.localID, targetVersionID: current.versionID,
                targetContent: current.resource.serialized())
            switch outcome.status {
            case .refused:
                recovery.conflicts = [
                    NewConflict(
                        peer: push.peer, recordKey: push.recordKey, nhsNumber: push.nhsNumber, base: push.mergeBase,
                        ours: current.resource.serialized(), theirs: push.body,
                        paths: [ConflictPath(path: type, rule: outcome.errors.first?.rule ?? "safety-wrong-patient")])
                ]
                recovery.audit = [
                    AuditEvent(
                        actor: actor, action: "merge-refused", peer: push.peer, recordKey: push.recordKey, nhsNumber: push.nhsNumber,
                        requestID: item.requestID,
                        detail: outcome.errors.map(\.description).joined(separator: "; ") + "; the push was withdrawn and held for review")
                ]
            case .merged, .conflict:
                let result = outcome.result ?? current.resource
                if !ResourceContent.sameMeaning(result, current.resource) {
                    recovery.replacement = .init(
                        operation: .update, localID: current.localID, ifMatchVersion: current.versionID,
                        body: ResourceContent.body(result, targetID: current.localID),
                        mergeBase: ResourceContent.withoutServerFields(current.resource).serialized())
                }
                if outcome.status == .conflict {
                    recovery.conflicts = [
                        NewConflict(
                            peer: push.peer, recordKey: push.recordKey, nhsNumber: push.nhsNumber, base: push.mergeBase,
                            ours: current.resource.serialized(), theirs: push.body,
                            paths: outcome.conflicts.map { ConflictPath(path: $0.path, rule: $0.rule) })
                    ]
                }
                if !outcome.decisions.isEmpty || !outcome.conflicts.isEmpty {
                    var parts = outcome.decisions.prefix(20).map { "\($0.path) ← \($0.took.rawValue) (\($0.rule))" }
                    parts += outcome.conflicts.map { "\($0.path) held for review (\($0.rule))" }
                    recovery.audit = [
                        AuditEvent(
                            actor: actor, action: outcome.status == .conflict ? "merge-conflict" : "merged", peer: push.peer,
                            recordKey: push.recordKey, nhsNumber: push.nhsNumber, requestID: item.requestID,
                            detail: "\(type)/\(current.localID) merged again with the hub's version \(current.versionID ?? "?"): "
                                + parts.joined(separator: "; "))
                    ]
                }
            }
            return recovery
        }
        // A provider target. When what it holds is the version we last synced with it (the race was with
        // our own earlier push), merge again against it. Otherwise it changed the record itself: its change
        // comes through its pull and is merged at the hub first, and the hub's result then reaches it again
        // guarded by its new version; pushing a merge straight to it here would leave its change out of the hub.
        guard let pushed, push.operation == .update, let syncedVersion, current.versionID == syncedVersion else {
            return LostRaceRecovery(replacement: nil)
        }
        let outcome = merge(base: mergeBase, ours: pushed, theirs: current.resource, policy: policy)
        guard outcome.status == .merged, let result = outcome.result, !ResourceContent.sameMeaning(result, current.resource) else {
            return LostRaceRecovery(replacement: nil)
        }
        return LostRaceRecovery(
            replacement: .init(
                operation: .update, localID: current.localID, ifMatchVersion: current.versionID,
                body: ResourceContent.body(result, targetID: current.localID),
                mergeBase: ResourceContent.withoutServerFields(current.resource).serialized()))
    }
}

/// A peer's current version of a record, as read after a lost race.
public struct FetchedVersion: Sendable, Hashable {
    public var localID: String
    public var versionID: String?
    public var resource: JSON

    public init(localID: String, versionID: String?, resource: JSON) {
        self.localID = localID
        self.versionID = versionID
        self.resource = resource
    }
}
