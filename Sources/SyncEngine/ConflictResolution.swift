public import FHIRJSON
import FHIRModel
public import StateStore

/// What an operator's resolution of a conflict writes besides the resolution itself (`caresync conflicts
/// resolve`), in the same transaction: the pushes that carry the resolved record, and the conflict's
/// provider brought in step with the version the operator reviewed.
public struct ResolutionPlan: Sendable, Hashable {
    /// The resolved record to the hub and to each read-write provider holding the record whose copy
    /// differs, each guarded as the engine guards its own pushes.
    public var pushes: [PushRequest]
    /// The conflict's provider: its base becomes the version the operator reviewed (`theirs`), so its
    /// next change merges against that and the settled paths are not held again.
    public var baseUpdates: [BaseUpdate]
    /// The conflict's provider: its synced version becomes the reviewed one (the merge had kept the old).
    public var identityLinks: [IdentityLink]
    /// For each push's target, the last queued item of the record the plan was made against (`nil`: none);
    /// the store refuses the resolution if another push was queued meanwhile.
    public var queueTails: [QueueTailGuard]

    public init(pushes: [PushRequest], baseUpdates: [BaseUpdate], identityLinks: [IdentityLink], queueTails: [QueueTailGuard]) {
        self.pushes = pushes
        self.baseUpdates = baseUpdates
        self.identityLinks = identityLinks
        self.queueTails = queueTails
    }
}

extension InboundPlanner {
    /// The hub's content for the record as the engine sees it: what it is queued to get, else what it
    /// holds (the `ours` of the engine's next merge).
    public func hubContent(_ context: RecordContext) -> JSON? {
        projection(of: topology.hub.name, context: context).content
    }

    /// The pushes and state changes that carry `resolved`, an operator's resolution of `conflict`, using
    /// the engine's own projections of each peer (no second copy of the push rules):
    ///
    /// - the hub, when its projected content differs: an update guarded by the version it holds (or the
    ///   queued push it will hold), with that content as the merge base, so a lost race merges again;
    /// - the conflict's provider, when read-write and holding the record: an update guarded by the version
    ///   in the conflict's `theirs` (the one the operator reviewed), so a change made since is never
    ///   overwritten; its base and synced version become that version whatever its mode;
    /// - every other read-write provider holding the record, without an open conflict of its own on it,
    ///   whose projected content differs: an update guarded as a fan-out is.
    public func resolutionPlan(resolved: JSON, conflict: NewConflict, context: RecordContext) -> ResolutionPlan {
        let key = conflict.recordKey
        let nhs = conflict.nhsNumber ?? context.identity?.nhsNumber
        let hub = topology.hub.name
        var plan = ResolutionPlan(pushes: [], baseUpdates: [], identityLinks: [], queueTails: [])

        func push(to peer: String, _ side: Projection) {
            guard !ResourceContent.sameMeaning(resolved, side.content) else { return }
            if side.operation == .update && side.ifMatch == nil { return }  // never an unguarded overwrite
            plan.pushes.append(
                PushRequest(
                    peer: peer, recordKey: key, nhsNumber: nhs, operation: side.operation, localID: side.localID,
                    ifMatchVersion: side.ifMatch, body: ResourceContent.body(resolved, targetID: side.localID), baseOwners: [peer],
                    mergeBase: side.mergeBase))
            plan.queueTails.append(QueueTailGuard(peer: peer, lastItemID: context.queueTails[peer]?.id))
        }

        push(to: hub, projection(of: hub, context: context))

        let provider = conflict.peer
        let theirs = ResourceContent.parse(conflict.theirs)
        let reviewedVersion = theirs?["meta"]?["versionId"]?.stringValue
        // A conflict the engine recorded on a lost race at the hub names the hub itself: only the hub push.
        if provider != hub, let held = context.identity?.at(provider), let theirs {
            let reviewed = ResourceContent.withoutServerFields(theirs).serialized()
            plan.baseUpdates.append(BaseUpdate(peer: provider, recordKey: key, content: reviewed))
            if let reviewedVersion {
                plan.identityLinks.append(
                    IdentityLink(recordKey: key, nhsNumber: nhs, peer: provider, localID: held.localID, versionID: reviewedVersion))
            }
            if topology.peer(named: provider)?.isWritableProvider == true {
                var side = projection(of: provider, context: context)
                if context.queueTails[provider] == nil {
                    side = Projection(
                        contentBytes: reviewed, ifMatch: reviewedVersion ?? held.versionID, mergeBase: reviewed, localID: held.localID,
                        operation: .update)
                }
                push(to: provider, side)
            }
        }

        for peer in context.identity?.peers ?? [] where peer.peer != hub && peer.peer != provider {
            guard topology.peer(named: peer.peer)?.isWritableProvider == true, !context.openConflictPeers.contains(peer.peer) else {
                continue
            }
            let side = projection(of: peer.peer, context: context)
            guard side.content != nil else { continue }
            push(to: peer.peer, side)
        }
        return plan
    }
}
