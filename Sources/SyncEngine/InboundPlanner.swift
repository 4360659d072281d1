public import FHIRJSON
public import FHIRModel
public import MergeCore
public import StateStore

/// A pulled version, parsed and checked: the first step of merging an inbox row.
public struct PreparedVersion: Sendable {
    public var item: InboxItem
    /// The parsed resource; `nil` when it is not acceptable JSON.
    public var resource: JSON?
    public var identity: ResourceIdentity?
    /// Why the version is quarantined (bad input), or `nil` when it may be merged.
    public var quarantineReason: String?
}

/// What merging one inbox row decided, before anything is written: the ``MergeCommit`` to store and a
/// summary for counters and logs.
public struct InboundPlan: Sendable {
    /// What kind of decision it was.
    public enum Kind: String, Sendable, Hashable {
        /// Bad input: quarantined with its reason.
        case quarantined
        /// Nothing to do: our own push coming back, a version already synced, or an older copy.
        case unchanged
        /// A record new to the hub: created there.
        case created
        /// Merged automatically (pushes queued where the content differs).
        case merged
        /// Some paths held for review: the hub keeps its value there; the rest merged.
        case conflict
        /// Refused by a safety rule (wrong patient): nothing merged, recorded for review.
        case refused
        /// A hub change: fanned out to the providers holding the patient.
        case hubChange
    }

    public var kind: Kind
    public var commit: MergeCommit
    /// The record's canonical key, once known.
    public var recordKey: GlobalKey?
    /// Every key the record is known by after this commit (for the in-batch overlay).
    public var keys: [GlobalKey]
    /// Automatic decisions the merge made.
    public var decisions: Int
    /// Whether the version's peer seems to have gone backwards (a version lower than the one synced).
    public var regression: Bool
}

/// The pure decision logic of merging pulled versions (DESIGN §3 steps 2, 3 and 5): no I/O; everything
/// known comes in as a ``RecordContext``, everything decided goes out as a ``MergeCommit``.
///
/// - A provider's version V of record K: base = base(P, K) (the content last synced between P and the
///   hub), ours = the hub's projected content (the last queued hub push, else what the hub holds), theirs
///   = V. A record new to the hub is created there (`If-None-Exist` on its business identifier). A merge
///   that differs from the hub is queued with `If-Match` of the version it was merged against and that
///   content as its merge base; back to P too when P is read-write and the result differs from V.
///   Conflicting paths keep the hub's value, are stored as a conflict, and neither P's base nor its
///   synced version moves (so nothing is ever pushed over P's value until it is resolved).
/// - A hub version H from others: the hub's known content becomes H; H goes to each read-write provider in
///   scope whose content (base, or queued push) differs: an update guarded by the provider's synced
///   version, or a conditional create where the provider holds the patient but not the record.
public struct InboundPlanner: Sendable {
    public var topology: SyncTopology
    public var policy: MergePolicy
    public var validator: ResourceValidator
    /// The actor named in audit entries.
    public var actor: String

    public init(topology: SyncTopology, policy: MergePolicy, actor: String = "caresync") {
        self.topology = topology
        self.policy = policy
        self.validator = ResourceValidator(profile: .caresync, requiresServerMetadata: true)
        self.actor = actor
    }

    // MARK: Step 1: parse and check

    /// Parses and validates the row: the caresync profile with server metadata, the type and id the
    /// row was pulled as.
    public func prepare(_ item: InboxItem) -> PreparedVersion {
        let record = item.record
        let report = validator.validate(bytes: record.content, expectedType: record.resourceType)
        var prepared = PreparedVersion(item: item, resource: report.resource, identity: report.resource.flatMap(ResourceIdentity.init))
        if !report.isValid {
            let issues = report.issues.prefix(8).map { "\($0.path) [\($0.code.rawValue)] \($0.message)" }
            var reason = "invalid \(record.resourceType.rawValue) from \(item.peer): " + issues.joined(separator: "; ")
            if report.issues.count > 8 { reason += "; and \(report.issues.count - 8) more issue(s)" }
            prepared.quarantineReason = reason
        } else if prepared.identity?.id != record.localID {
            prepared.quarantineReason = "\(record.resourceType.rawValue).id does not match the id the peer listed it under"
        } else if prepared.identity?.versionId != record.versionID {
            prepared.quarantineReason = "\(record.resourceType.rawValue).meta.versionId does not match the version the peer listed"
        }
        return prepared
    }

    /// How to find the row's record in the state store.
    public func lookup(_ prepared: PreparedVersion) -> RecordLookup {
        let isHub = prepared.item.peer == topology.hub.name
        let receivesFanOut = topology.peer(named: prepared.item.peer)?.receivesFanOut ?? false
        return RecordLookup(
            peer: prepared.item.peer, resourceType: prepared.item.record.resourceType, localID: prepared.item.record.localID,
            keys: prepared.identity?.globalKeys ?? [],
            patient: (isHub && topology.needsPatientHolders) || receivesFanOut ? prepared.identity?.nhsNumber : nil,
            hubForNewHolder: receivesFanOut ? topology.hub.name : nil)
    }

    // MARK: Step 2: decide

    /// Decides what the row means given what the store knows about its record.
    public func plan(_ prepared: PreparedVersion, context: RecordContext) -> InboundPlan {
        let item = prepared.item
        if let reason = prepared.quarantineReason {
            return quarantine(item, reason: reason, patient: prepared.identity?.nhsNumber)
        }
        guard let resource = prepared.resource, let identity = prepared.identity else {
            return quarantine(item, reason: "the stored version could not be read")
        }
        if item.peer == topology.hub.name {
            return planHubVersion(item, resource: resource, identity: identity, context: context)
        }
        guard let peer = topology.peer(named: item.peer) else {
            return quarantine(item, reason: "pulled from \(item.peer), which is no longer configured")
        }
        return planProviderVersion(item, peer: peer, resource: resource, identity: identity, context: context)
    }

    func quarantine(_ item: InboxItem, reason: String, patient: NHSNumber? = nil) -> InboundPlan {
        let clipped = reason.count > 2000 ? String(reason.prefix(2000)) + "…" : reason
        let audit = AuditEvent(
            actor: actor, action: "inbox-quarantined", peer: item.peer, nhsNumber: patient ?? item.record.nhsNumber,
            detail: "\(item.record.resourceType.rawValue)/\(item.record.localID)/_history/\(item.record.versionID): \(clipped)")
        return InboundPlan(
            kind: .quarantined, commit: MergeCommit(inboxID: item.id, outcome: .quarantined(reason: clipped), audit: [audit]),
            recordKey: nil, keys: [], decisions: 0, regression: false)
    }

    /// The record key and the keys to link: the known record's, else the first business identifier,
    /// else one minted from the origin peer.
    func keys(for identity: ResourceIdentity, localID: String, origin: SyncPeer, context: RecordContext)
        -> (key: GlobalKey, aliases: [GlobalKey], minted: GlobalKey?)
    {
        let own = identity.globalKeys
        if let known = context.identity {
            return (known.recordKey, own.filter { !known.keys.contains($0) }, nil)
        }
        if let first = own.first {
            return (first, Array(own.dropFirst()), nil)
        }
        let minted = GlobalKey.minted(resourceType: identity.resourceType, originODS: origin.ods, localID: localID)
        return (minted, [], minted)
    }

    /// `resource` with the record's minted identifier added when it carries no identifier of its own.
    func withMintedIdentifier(_ resource: JSON, key: GlobalKey) -> JSON {
        guard key.identifier.system.hasPrefix("urn:caresync:") else { return resource }
        let existing = ResourceIdentity.identifiers(in: resource["identifier"])
        guard !existing.contains(key.identifier) else { return resource }
        var copy = resource
        var list = resource["identifier"]?.arrayValue ?? []
        list.append(["system": .string(key.identifier.system), "value": .string(key.identifier.value)])
        copy["identifier"] = .array(list)
        return copy
    }

    /// What a peer holds or will hold once its queue drains: the content (as stored; parsed on demand), the
    /// version an update would be guarded by, the content that version had, and the id there.
    struct Projection {
        var contentBytes: [UInt8]?
        var ifMatch: String?
        var mergeBase: [UInt8]?
        var localID: String?
        var operation: PushOperation

        /// The content parsed (each call parses: read it once).
        var content: JSON? { ResourceContent.parse(contentBytes) }
    }

    func projection(of peer: String, context: RecordContext) -> Projection {
        let synced = context.identity?.at(peer)
        if let tail = context.queueTails[peer] {
            let unsent = tail.attempts == 0 && tail.leaseExpiresAt == nil
            return Projection(
                contentBytes: tail.push.body,
                ifMatch: tail.push.ifMatchVersion,
                mergeBase: unsent ? tail.push.mergeBase : tail.push.body,
                localID: tail.push.localID ?? synced?.localID,
                operation: tail.push.operation)
        }
        if let synced {
            let base = context.bases[peer]
            return Projection(
                contentBytes: base, ifMatch: synced.versionID, mergeBase: base, localID: synced.localID, operation: .update)
        }
        return Projection(contentBytes: nil, ifMatch: nil, mergeBase: nil, localID: nil, operation: .create)
    }

    // MARK: A provider's version

    func planProviderVersion(
        _ item: InboxItem, peer: SyncPeer, resource: JSON, identity: ResourceIdentity, context: RecordContext
    ) -> InboundPlan {
        var plan = decideProviderVersion(item, peer: peer, resource: resource, identity: identity, context: context)
        // The provider holds this patient from now on: it receives the hub's other records of the patient.
        if plan.kind != .quarantined, plan.kind != .refused, !context.hubPatientRecords.isEmpty {
            for record in context.hubPatientRecords
            where record.recordKey != plan.recordKey && !record.peers.contains(peer.name) {
                guard let content = ResourceContent.parse(record.hubContent) else { continue }
                plan.commit.pushes.append(
                    PushRequest(
                        peer: peer.name, recordKey: record.recordKey, nhsNumber: identity.nhsNumber, operation: .create,
                        body: ResourceContent.body(content, targetID: nil), baseOwners: [peer.name], mergeBase: nil))
            }
        }
        return plan
    }

    func decideProviderVersion(
        _ item: InboxItem, peer: SyncPeer, resource: JSON, identity: ResourceIdentity, context: RecordContext
    ) -> InboundPlan {
        let record = item.record
        let hub = topology.hub.name
        let (key, aliases, minted) = keys(for: identity, localID: record.localID, origin: peer, context: context)
        let nhs = identity.nhsNumber ?? context.identity?.nhsNumber
        let synced = context.identity?.at(peer.name)
        let regression = Self.isOlder(record.versionID, than: synced?.versionID)
        let theirs = withMintedIdentifier(resource, key: key)
        let storedBase = ResourceContent.parse(context.bases[peer.name])
        var allKeys = (context.identity?.keys ?? [key]) + aliases
        if !allKeys.contains(key) { allKeys.insert(key, at: 0) }

        // Already in step: our own push coming back, or a version merged before.
        if !regression, synced?.versionID == record.versionID, ResourceContent.sameMeaning(theirs, storedBase) {
            return InboundPlan(
                kind: .unchanged, commit: MergeCommit(inboxID: item.id, outcome: .merged), recordKey: key, keys: allKeys,
                decisions: 0, regression: false)
        }

        var commit = MergeCommit(inboxID: item.id, outcome: .merged)
        var audit: [AuditEvent] = []
        if regression {
            audit.append(
                AuditEvent(
                    actor: actor, action: "peer-version-regressed", peer: peer.name, recordKey: key, nhsNumber: nhs,
                    detail: "\(record.resourceType.rawValue)/\(record.localID) came back as version \(record.versionID) after version "
                        + "\(synced?.versionID ?? "?") was synced: the peer's store may have been restored; merged without a base "
                        + "so every difference is held for review"))
        }
        let base = regression ? nil : storedBase
        let hubSide = projection(of: hub, context: context)
        let theirsTheirOwn = ResourceContent.withoutServerFields(theirs).serialized()

        let link = { (version: String?) in
            IdentityLink(recordKey: key, aliases: aliases, nhsNumber: nhs, peer: peer.name, localID: record.localID, versionID: version)
        }

        guard let ours = hubSide.content else {
            // New to the hub: create it there, guarded by its business identifier.
            commit.identityLinks = [link(record.versionID)]
            commit.baseUpdates = [BaseUpdate(peer: peer.name, recordKey: key, content: theirsTheirOwn)]
            // The body of a create is the content without server fields: the bytes just serialised.
            commit.pushes = [
                PushRequest(
                    peer: hub, recordKey: key, nhsNumber: nhs, operation: .create,
                    body: theirsTheirOwn, baseOwners: [hub], mergeBase: nil)
            ]
            if minted != nil, peer.isWritableProvider {
                // Give the provider the identifier it was minted, so every copy carries the same key.
                commit.pushes.append(
                    PushRequest(
                        peer: peer.name, recordKey: key, nhsNumber: nhs, operation: .update, localID: record.localID,
                        ifMatchVersion: record.versionID, body: ResourceContent.body(theirs, targetID: record.localID),
                        baseOwners: [peer.name], mergeBase: theirsTheirOwn))
            }
            commit.audit = audit
            return InboundPlan(kind: .created, commit: commit, recordKey: key, keys: allKeys, decisions: 0, regression: regression)
        }

        let outcome = merge(base: base, ours: ours, theirs: theirs, policy: policy, context: Self.mergeContext(for: key, from: peer))

        switch outcome.status {
        case .refused:
            let reasons = outcome.errors.map(\.description).joined(separator: "; ")
            let rule = outcome.errors.first?.rule ?? "safety-wrong-patient"
            if !context.openConflictPeers.contains(peer.name) {
                commit.conflicts = [
                    NewConflict(
                        peer: peer.name, recordKey: key, nhsNumber: nhs, base: context.bases[peer.name],
                        ours: ours.serialized(), theirs: theirs.serialized(),
                        paths: [ConflictPath(path: record.resourceType.rawValue + (record.resourceType.patientReferenceElement.map { ".\($0)" } ?? ""), rule: rule)])
                ]
            }
            if context.identity == nil || synced == nil {
                commit.identityLinks = [link(nil)]
            }
            audit.append(
                AuditEvent(
                    actor: actor, action: "merge-refused", peer: peer.name, recordKey: key, nhsNumber: nhs,
                    detail: "\(record.resourceType.rawValue)/\(record.localID)/_history/\(record.versionID): \(reasons); nothing merged, held for review"))
            commit.audit = audit
            return InboundPlan(kind: .refused, commit: commit, recordKey: key, keys: allKeys, decisions: 0, regression: regression)

        case .merged, .conflict:
            let result = outcome.result ?? ours
            if !ResourceContent.sameMeaning(result, ours) {
                commit.pushes.append(
                    PushRequest(
                        peer: hub, recordKey: key, nhsNumber: nhs, operation: hubSide.operation, localID: hubSide.localID,
                        ifMatchVersion: hubSide.ifMatch, body: ResourceContent.body(result, targetID: hubSide.localID),
                        baseOwners: [hub], mergeBase: hubSide.mergeBase))
            }
            if outcome.status == .conflict {
                // P's base and synced version stay: the conflict is found again, and nothing is pushed over
                // P's value, until an operator resolves it.
                commit.identityLinks = [link(synced?.versionID)]
                if !context.openConflictPeers.contains(peer.name) {
                    commit.conflicts = [
                        NewConflict(
                            peer: peer.name, recordKey: key, nhsNumber: nhs, base: context.bases[peer.name],
                            ours: ours.serialized(), theirs: theirs.serialized(),
                            paths: outcome.conflicts.map { ConflictPath(path: $0.path, rule: $0.rule) })
                    ]
                }
            } else {
                commit.identityLinks = [link(record.versionID)]
                commit.baseUpdates = [BaseUpdate(peer: peer.name, recordKey: key, content: theirsTheirOwn)]
                if peer.isWritableProvider, !ResourceContent.sameMeaning(result, resource) {
                    commit.pushes.append(
                        PushRequest(
                            peer: peer.name, recordKey: key, nhsNumber: nhs, operation: .update, localID: record.localID,
                            ifMatchVersion: record.versionID, body: ResourceContent.body(result, targetID: record.localID),
                            baseOwners: [peer.name], mergeBase: theirsTheirOwn))
                }
            }
            if !outcome.decisions.isEmpty || !outcome.conflicts.isEmpty {
                audit.append(Self.mergeAudit(outcome, actor: actor, peer: peer.name, key: key, nhs: nhs, record: record))
            }
            commit.audit = audit
            return InboundPlan(
                kind: outcome.status == .conflict ? .conflict : .merged, commit: commit, recordKey: key, keys: allKeys,
                decisions: outcome.decisions.count, regression: regression)
        }
    }

    /// The merge context of a provider's version of record `key`: the record originated at the provider
    /// when its key was minted from the provider's ODS code (`theirs` for `authority` rules), at another
    /// peer when minted from another's, unknown otherwise.
    public static func mergeContext(for key: GlobalKey, from peer: SyncPeer) -> MergeContext {
        let system = key.identifier.system
        let origin: MergeSide? =
            system == "urn:caresync:\(peer.ods):\(key.resourceType.rawValue)" ? .theirs : (system.hasPrefix("urn:caresync:") ? .ours : nil)
        return MergeContext(origin: origin)
    }

    static func mergeAudit(
        _ outcome: MergeOutcome, actor: String, peer: String, key: GlobalKey, nhs: NHSNumber?, record: InboxRecord
    ) -> AuditEvent {
        var parts = outcome.decisions.prefix(20).map { "\($0.path) ← \($0.took.rawValue) (\($0.rule))" }
        if outcome.decisions.count > 20 { parts.append("and \(outcome.decisions.count - 20) more decision(s)") }
        parts += outcome.conflicts.map { "\($0.path) held for review (\($0.rule))" }
        return AuditEvent(
            actor: actor, action: outcome.status == .conflict ? "merge-conflict" : "merged", peer: peer, recordKey: key,
            nhsNumber: nhs,
            detail: "\(record.resourceType.rawValue)/\(record.localID)/_history/\(record.versionID) from \(peer): "
                + parts.joined(separator: "; "))
    }

    // MARK: A hub version

    func planHubVersion(_ item: InboxItem, resource: JSON, identity: ResourceIdentity, context: RecordContext) -> InboundPlan {
        let record = item.record
        let hub = topology.hub
        let (key, aliases, _) = keys(for: identity, localID: record.localID, origin: hub, context: context)
        let nhs = identity.nhsNumber ?? context.identity?.nhsNumber
        let synced = context.identity?.at(hub.name)
        var allKeys = (context.identity?.keys ?? [key]) + aliases
        if !allKeys.contains(key) { allKeys.insert(key, at: 0) }
        var commit = MergeCommit(inboxID: item.id, outcome: .merged)

        // An older copy than the one known (a pull that crossed one of our pushes): nothing to learn.
        if Self.isOlder(record.versionID, than: synced?.versionID) {
            return InboundPlan(kind: .unchanged, commit: commit, recordKey: key, keys: allKeys, decisions: 0, regression: false)
        }
        let newer = synced?.versionID != record.versionID
        if newer || context.identity == nil || synced == nil {
            commit.identityLinks = [
                IdentityLink(
                    recordKey: key, aliases: aliases, nhsNumber: nhs, peer: hub.name, localID: record.localID, versionID: record.versionID)
            ]
            commit.baseUpdates = [BaseUpdate(peer: hub.name, recordKey: key, content: record.content)]
        }

        commit.pushes = fanOut(
            LazyResource(json: resource), key: key, nhs: nhs, context: context, hubPushQueued: context.queueTails[hub.name] != nil)
        let kind: InboundPlan.Kind = commit.pushes.isEmpty && !newer ? .unchanged : .hubChange
        return InboundPlan(kind: kind, commit: commit, recordKey: key, keys: allKeys, decisions: 0, regression: false)
    }

    // MARK: Fan-out

    /// The pushes that bring the hub's content `resource` of record `key` to each read-write provider in
    /// scope whose copy (or queued push) differs: an update guarded by the provider's synced version, or a
    /// conditional create where it holds the patient but not the record. None while `hubPushQueued` (a push
    /// of ours to the hub is still queued for the record: the hub's content is about to change, and that
    /// push fans out when it lands, so no provider is sent content lacking a change on its way in).
    func fanOut(_ resource: LazyResource, key: GlobalKey, nhs: NHSNumber?, context: RecordContext, hubPushQueued: Bool) -> [PushRequest] {
        guard !hubPushQueued else { return [] }
        var pushes: [PushRequest] = []
        for provider in topology.providers where provider.receivesFanOut {
            let holdsRecord = context.identity?.at(provider.name) != nil
            let inScope =
                holdsRecord
                || provider.fanOut == .allPatients
                || (provider.fanOut == .heldPatients && context.patientHolders.contains(provider.name))
            guard inScope, !context.openConflictPeers.contains(provider.name) else { continue }
            let side = projection(of: provider.name, context: context)
            if holdsRecord || context.queueTails[provider.name] != nil {
                // The hub's content is the newest merged state: it replaces what the provider has or is
                // queued to get. The provider's own unmerged changes are protected by If-Match.
                // Equal bytes (content caresync wrote itself) say the same thing without parsing either side.
                guard let currentBytes = side.contentBytes, currentBytes != resource.bytes,
                    let current = ResourceContent.parse(currentBytes), let tree = resource.json,
                    !ResourceContent.sameMeaning(tree, current)
                else { continue }
                if side.operation == .update, side.ifMatch == nil { continue }
                pushes.append(
                    PushRequest(
                        peer: provider.name, recordKey: key, nhsNumber: nhs, operation: side.operation, localID: side.localID,
                        ifMatchVersion: side.ifMatch, body: ResourceContent.body(tree, targetID: side.localID),
                        baseOwners: [provider.name], mergeBase: side.mergeBase))
            } else {
                guard let tree = resource.json else { continue }
                pushes.append(
                    PushRequest(
                        peer: provider.name, recordKey: key, nhsNumber: nhs, operation: .create,
                        body: ResourceContent.body(tree, targetID: nil), baseOwners: [provider.name], mergeBase: nil))
            }
        }
        return pushes
    }

    /// ``fanOut(_:key:nhs:context:hubPushQueued:)`` of a hub version already parsed.
    public func fanOut(_ resource: JSON, key: GlobalKey, nhs: NHSNumber?, context: RecordContext, hubPushQueued: Bool) -> [PushRequest] {
        fanOut(LazyResource(json: resource), key: key, nhs: nhs, context: context, hubPushQueued: hubPushQueued)
    }

    // MARK: Versions

    /// Whether version `a` is older than `b` (both numeric, as FHIR servers number them); `false` when
    /// either is missing or not a number (they cannot be ordered).
    static func isOlder(_ a: String?, than b: String?) -> Bool {
        guard let a, let b, let x = Int(a), let y = Int(b) else { return false }
        return x < y
    }
}

extension RecordContext {
    /// This context as it will be once `plan`'s commit is stored: the in-batch view that lets several
    /// rows of one record be decided in one transaction.
    func applying(_ plan: InboundPlan) -> RecordContext {
        guard let key = plan.recordKey else { return self }
        var next = self
        var identity = next.identity ?? RecordIdentity(recordKey: key, keys: plan.keys, nhsNumber: nil, peers: [])
        for link in plan.commit.identityLinks {
            if identity.nhsNumber == nil { identity.nhsNumber = link.nhsNumber }
            for alias in [link.recordKey] + link.aliases where !identity.keys.contains(alias) { identity.keys.append(alias) }
            identity.peers.removeAll { $0.peer == link.peer }
            identity.peers.append(PeerIdentity(peer: link.peer, localID: link.localID, versionID: link.versionID))
        }
        next.identity = identity
        for update in plan.commit.baseUpdates { next.bases[update.peer] = update.content }
        for push in plan.commit.pushes {
            if let tail = next.queueTails[push.peer], tail.attempts == 0, tail.leaseExpiresAt == nil {
                next.queueTails[push.peer]?.push = push
            } else {
                next.queueTails[push.peer] = OutboxItem(
                    id: -1, requestID: "", push: push, attempts: 0, enqueuedAt: 0, nextAttemptAt: 0, leaseExpiresAt: nil, lastError: nil)
                next.queueTailIDs[push.peer] = -1
            }
        }
        for conflict in plan.commit.conflicts { next.openConflictPeers.insert(conflict.peer) }
        for link in plan.commit.identityLinks { next.patientHolders.insert(link.peer) }
        return next
    }
}
