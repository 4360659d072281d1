import FHIRJSON
import FHIRModel
import MergeCore
import StateStore
import SyncEngine
import Testing

/// ``InboundPlanner/resolutionPlan(resolved:conflict:context:)``: the pushes and state changes of an
/// operator's resolution, decided from what the store knows (no I/O).
@Suite("Resolution plans")
struct ResolutionPlanTests {
    static let patient = try! NHSNumber(validating: "9434765919")
    static let key = GlobalKey(resourceType: .carePlan, identifier: BusinessIdentifier(system: "https://a.test/careplan", value: "cp-1"))

    static func planner(trustB: PeerMode = .readWrite) -> InboundPlanner {
        InboundPlanner(
            topology: SyncTopology(
                hub: SyncPeer(name: "hub", ods: "QWE", mode: .hub, baseURL: "http://127.0.0.1:1/fhir"),
                providers: [
                    SyncPeer(name: "trust-a", ods: "RX1", mode: .readWrite, baseURL: "http://127.0.0.1:2/fhir"),
                    SyncPeer(name: "trust-b", ods: "RX2", mode: trustB, baseURL: "http://127.0.0.1:3/fhir"),
                ]),
            policy: .default)
    }

    static func carePlan(_ status: String, id: String? = nil, version: String? = nil) -> JSON {
        var resource: JSON = [
            "resourceType": "CarePlan", "status": .string(status), "intent": "plan",
            "identifier": [["system": "https://a.test/careplan", "value": "cp-1"]],
            "subject": ["identifier": ["system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"]],
        ]
        if let id { resource["id"] = .string(id) }
        if let version { resource["meta"] = ["versionId": .string(version)] }
        return resource
    }

    /// The hub holds version 5 (completed), trust-a's reviewed version 2 (revoked; synced version still 1),
    /// trust-b version 3 (completed).
    static func context(openConflictAt: Set<String> = ["trust-a"]) -> RecordContext {
        RecordContext(
            identity: RecordIdentity(
                recordKey: key, keys: [key], nhsNumber: patient,
                peers: [
                    PeerIdentity(peer: "hub", localID: "h1", versionID: "5"), PeerIdentity(peer: "trust-a", localID: "a1", versionID: "1"),
                    PeerIdentity(peer: "trust-b", localID: "b1", versionID: "3"),
                ]),
            bases: [
                "hub": carePlan("completed", id: "h1", version: "5").serialized(),
                "trust-a": carePlan("active").serialized(),
                "trust-b": carePlan("completed").serialized(),
            ],
            openConflictPeers: openConflictAt)
    }

    static let conflict = NewConflict(
        peer: "trust-a", recordKey: key, nhsNumber: patient, base: carePlan("active").serialized(),
        ours: carePlan("completed", id: "h1", version: "5").serialized(), theirs: carePlan("revoked", id: "a1", version: "2").serialized(),
        paths: [ConflictPath(path: "CarePlan.status", rule: "careplan-status")])

    @Test("theirs taken: the hub and the other read-write holder get it, guarded by what each holds; trust-a moves to its reviewed version")
    func theirsTaken() {
        let plan = Self.planner().resolutionPlan(resolved: Self.carePlan("revoked"), conflict: Self.conflict, context: Self.context())
        #expect(plan.pushes.map(\.peer) == ["hub", "trust-b"], "trust-a already holds theirs")
        let hub = plan.pushes[0]
        #expect(hub.operation == .update)
        #expect(hub.localID == "h1")
        #expect(hub.ifMatchVersion == "5")
        #expect(hub.baseOwners == ["hub"])
        #expect(try! JSON.parse(hub.body)["id"] == "h1")
        #expect(try! JSON.parse(hub.body)["status"] == "revoked")
        #expect(plan.pushes[1].ifMatchVersion == "3")
        #expect(plan.pushes[1].localID == "b1")
        #expect(plan.baseUpdates == [BaseUpdate(peer: "trust-a", recordKey: Self.key, content: Self.carePlan("revoked").serialized())])
        #expect(plan.identityLinks.map(\.versionID) == ["2"])
        #expect(plan.identityLinks.map(\.localID) == ["a1"])
        #expect(plan.queueTails == [QueueTailGuard(peer: "hub", lastItemID: nil), QueueTailGuard(peer: "trust-b", lastItemID: nil)])
    }

    @Test("ours taken: only trust-a gets a push, guarded by the version the operator reviewed")
    func oursTaken() {
        let plan = Self.planner().resolutionPlan(resolved: Self.carePlan("completed"), conflict: Self.conflict, context: Self.context())
        #expect(plan.pushes.map(\.peer) == ["trust-a"])
        #expect(plan.pushes[0].ifMatchVersion == "2", "the reviewed version, not the synced 1")
        #expect(plan.pushes[0].localID == "a1")
        #expect(plan.pushes[0].mergeBase == Self.carePlan("revoked").serialized())
    }

    @Test("a read-only provider, or one with its own open conflict, gets no push; the conflict's read-only provider still moves")
    func readOnlyAndOpenConflicts() {
        let readOnly = Self.planner(trustB: .readOnly).resolutionPlan(
            resolved: Self.carePlan("revoked"), conflict: Self.conflict, context: Self.context())
        #expect(readOnly.pushes.map(\.peer) == ["hub"])
        let busy = Self.planner().resolutionPlan(
            resolved: Self.carePlan("revoked"), conflict: Self.conflict, context: Self.context(openConflictAt: ["trust-a", "trust-b"]))
        #expect(busy.pushes.map(\.peer) == ["hub"])

        var onTrustB = Self.conflict
        onTrustB.peer = "trust-b"
        onTrustB.theirs = Self.carePlan("revoked", id: "b1", version: "4").serialized()
        let plan = Self.planner(trustB: .readOnly).resolutionPlan(resolved: Self.carePlan("completed"), conflict: onTrustB, context: Self.context())
        #expect(plan.pushes.isEmpty, "the hub and trust-a hold completed; trust-b is read-only")
        #expect(plan.baseUpdates.map(\.peer) == ["trust-b"])
        #expect(plan.identityLinks.map(\.versionID) == ["4"])
    }
}
