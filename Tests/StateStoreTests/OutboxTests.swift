import CaresyncTestSupport
import FHIRModel
import StateStore
import Testing

@Suite("Outbox queue")
struct OutboxTests {
    @Test("a newer push replaces an unsent, unleased one and the replacement is audited")
    func coalescing() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        let first = try await store.enqueue([push("cp-1", #"{"v":1}"#)])[0]
        let second = try await store.enqueue([push("cp-1", #"{"v":2}"#)])[0]
        #expect(second.itemID == first.itemID)
        #expect(second.supersededRequestID == first.requestID)
        #expect(second.requestID != first.requestID)

        let listing = try await store.queue(peer: "hub", limit: 10)
        #expect(listing.depth == 1)
        #expect(listing.items.map { text($0.push.body) } == [#"{"v":2}"#])
        #expect(listing.items[0].requestID == second.requestID)

        let audit = try await store.audit(nhsNumber: patientA, since: nil, limit: 10)
        #expect(audit.map(\.event.action) == ["push-superseded"])
        #expect(audit[0].event.requestID == first.requestID)

        // Different records and different peers never coalesce.
        _ = try await store.enqueue([push("cp-2", #"{"v":1}"#), push("cp-1", #"{"v":1}"#, peer: "trust-a")])
        #expect(try await store.queue(peer: nil, limit: 10).depth == 3)
    }

    @Test("a push queued behind a leased one is not coalesced into it, and waits for it")
    func noCoalescingIntoLeasedOrTried() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        _ = try await store.enqueue([push("cp-1", #"{"v":1}"#)])
        let leased = try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 30_000)
        #expect(leased.count == 1)

        let second = try await store.enqueue([push("cp-1", #"{"v":2}"#)])[0]
        #expect(second.supersededRequestID == nil)
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 2)
        // The second push of cp-1 is due but must wait for the first.
        #expect(try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 30_000).isEmpty)

        // The first fails: it was sent, so a third push queues behind it and replaces only the second.
        try await store.fail(leased[0], error: "HTTP 503", retryAfterMilliseconds: nil)
        let third = try await store.enqueue([push("cp-1", #"{"v":3}"#)])[0]
        #expect(third.supersededRequestID == second.requestID)
        let bodies = try await store.queue(peer: "hub", limit: 10).items.sorted { $0.id < $1.id }.map { text($0.push.body) }
        #expect(bodies == [#"{"v":1}"#, #"{"v":3}"#])
    }

    @Test("leases hand out only the oldest push of each record; records do not block each other")
    func perRecordOrder() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        // cp-1 gets three pushes, each queued behind a leased predecessor.
        var delivered: [String] = []
        _ = try await store.enqueue([push("cp-1", "1"), push("cp-2", "a")])
        var round = try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 30_000)
        #expect(Set(round.map { text($0.item.push.body) }) == ["1", "a"])
        _ = try await store.enqueue([push("cp-1", "2")])
        _ = try await store.enqueue([push("cp-1", "3")])  // coalesces into "2" (never leased)
        for leased in round {
            try await store.complete(leased, with: PushCompletion(localID: leased.item.push.localID!, versionID: "2"))
            delivered.append(text(leased.item.push.body))
        }
        round = try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 30_000)
        #expect(round.map { text($0.item.push.body) } == ["3"])
        _ = try await store.enqueue([push("cp-1", "4")])
        #expect(try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 30_000).isEmpty)
        try await store.complete(round[0], with: PushCompletion(localID: "cp-1", versionID: "3"))
        delivered.append("3")
        round = try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 30_000)
        #expect(round.map { text($0.item.push.body) } == ["4"])

        let completed = try await store.audit(nhsNumber: nil, since: nil, limit: 100).filter { $0.event.action == "push-completed" }
        #expect(completed.count == 3)
        #expect(delivered.filter { $0 != "a" } == ["1", "3"])
    }

    @Test("an expired lease makes the push due again; the old holder then loses it")
    func leaseExpiry() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        let receipt = try await store.enqueue([push("cp-1", "1")])[0]
        let first = try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 10_000)
        #expect(first.count == 1)
        fixture.clock.advance(milliseconds: 9_999)
        #expect(try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 10_000).isEmpty)
        fixture.clock.advance(milliseconds: 1)
        let second = try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 10_000)
        #expect(second.map(\.item.requestID) == [receipt.requestID])
        #expect(second[0].item.attempts == 2)

        let lost = await storeError { try await store.complete(first[0], with: PushCompletion(localID: "cp-1", versionID: "2")) }
        #expect(lost?.code == .leaseLost)
        try await store.complete(second[0], with: PushCompletion(localID: "cp-1", versionID: "2"))
        #expect(try await store.queue(peer: "hub", limit: 10).depth == 0)
    }

    @Test("failures back off 0.25 s doubling to 5 min on the injected clock; Retry-After wins")
    func backoffThroughTheStore() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter(random: 0)  // no jitter: the nominal delays
        defer { store.close() }

        _ = try await store.enqueue([push("cp-1", "1")])
        var delays: [Int64] = []
        for _ in 0..<12 {
            let leased = try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 1_000)
            try #require(leased.count == 1)
            let now = fixture.clock.nowMilliseconds()
            let next = try await store.fail(leased[0], error: "HTTP 503", retryAfterMilliseconds: nil)
            delays.append(next - now)
            fixture.clock.advance(milliseconds: next - now - 1)
            #expect(try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 1_000).isEmpty)
            fixture.clock.advance(milliseconds: 1)
        }
        #expect(delays == [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000])

        let leased = try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 1_000)
        let now = fixture.clock.nowMilliseconds()
        let next = try await store.fail(leased[0], error: "HTTP 429", retryAfterMilliseconds: 7_000)
        #expect(next - now == 7_000)
        let item = try await store.queue(peer: "hub", limit: 1).items[0]
        #expect(item.lastError == "HTTP 429")
        #expect(item.leaseExpiresAt == nil)
    }

    @Test("dead letters keep the reason, are audited, and are retried one at a time or all at once")
    func deadLetterAndRetry() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        let receipts = try await store.enqueue([push("cp-1", "1"), push("cp-2", "2"), push("cp-3", "3", peer: "trust-a")])
        let hub = try await store.lease(peer: "hub", limit: 10, durationMilliseconds: 10_000)
        let trust = try await store.lease(peer: "trust-a", limit: 10, durationMilliseconds: 10_000)
        for leased in hub + trust {
            try await store.deadLetter(leased, httpStatus: 422, reason: "OperationOutcome: status is required")
        }
        #expect(try await store.queue(peer: nil, limit: 10).depth == 0)
        let dead = try await store.deadLetters(peer: nil)
        #expect(dead.map(\.requestID) == receipts.map(\.requestID))
        #expect(dead.allSatisfy { $0.httpStatus == 422 && $0.reason == "OperationOutcome: status is required" })
        let status = try await store.status()
        #expect(status.first { $0.peer.name == "hub" }?.deadLetters == 2)

        // Retry one: same request id, back in the queue, audited with the operator.
        let one = try await store.retryDeadLetters(.ids([dead[0].id]), actor: "alice", reason: "fixed the plan")
        #expect(one.map(\.requestID) == [receipts[0].requestID])
        #expect(try await store.queue(peer: "hub", limit: 10).items.map(\.requestID) == [receipts[0].requestID])
        #expect(try await store.deadLetters(peer: nil).count == 2)

        // Retry all of one peer, then everything left.
        #expect(try await store.retryDeadLetters(.all(peer: "trust-a"), actor: "alice", reason: "peer fixed").count == 1)
        #expect(try await store.retryDeadLetters(.all(peer: nil), actor: "bob", reason: "all").count == 1)
        #expect(try await store.deadLetters(peer: nil).isEmpty)
        #expect(try await store.queue(peer: nil, limit: 10).depth == 3)

        let missing = await storeError { _ = try await store.retryDeadLetters(.ids([999]), actor: "alice", reason: "x") }
        #expect(missing?.code == .notFound)

        let actions = try await store.audit(nhsNumber: nil, since: nil, limit: 100).map { "\($0.event.actor):\($0.event.action)" }
        #expect(actions.filter { $0.hasSuffix("push-dead-lettered") }.count == 3)
        #expect(actions.filter { $0.hasSuffix("dead-letter-retried") } == [
            "alice:dead-letter-retried", "alice:dead-letter-retried", "bob:dead-letter-retried",
        ])
        #expect(try await store.verifyAuditChain() == .intact(entries: 6))
    }

    @Test("completing a push sets the bases of its owners and the target's identity in the same commit")
    func completionSetsBaseAndIdentity() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        var create = push("cp-9", #"{"resourceType":"CarePlan"}"#, baseOwners: ["hub", "trust-a"])
        create.operation = .create
        create.localID = nil
        _ = try await store.enqueue([create])
        let leased = try await store.lease(peer: "hub", limit: 1, durationMilliseconds: 10_000)
        try await store.complete(leased[0], with: PushCompletion(localID: "hub-77", versionID: "1"))

        #expect(try await store.base(peer: "trust-a", recordKey: key("cp-9"))?.content == json(#"{"resourceType":"CarePlan"}"#))
        #expect(try await store.base(peer: "hub", recordKey: key("cp-9")) != nil)
        let identity = try #require(try await store.identity(peer: "hub", resourceType: .carePlan, localID: "hub-77"))
        #expect(identity.recordKey == key("cp-9"))
        #expect(identity.at("hub") == PeerIdentity(peer: "hub", localID: "hub-77", versionID: "1"))
        #expect(identity.nhsNumber == patientA)
        let completed = try await store.audit(nhsNumber: patientA, since: nil, limit: 10)
        #expect(completed.map(\.event.action) == ["push-completed"])
        #expect(completed[0].event.requestID == leased[0].item.requestID)
    }

    @Test("status reports depth, oldest age, dead letters, open conflicts and cursors per peer")
    func status() async throws {
        let fixture = try StoreFixture()
        defer { fixture.directory.remove() }
        let store = try await fixture.openWriter()
        defer { store.close() }

        let start = fixture.clock.nowMilliseconds()
        _ = try await store.enqueue([push("cp-1", "1"), push("cp-2", "2")])
        fixture.clock.advance(milliseconds: 5_000)
        _ = try await store.enqueue([push("cp-3", "3"), push("cp-1", "x", peer: "trust-a")])
        try await store.recordContact(peer: "trust-a", .failed(message: "connection refused", state: .disconnected))
        try await store.recordContact(peer: "hub", .succeeded)

        let statuses = try await store.status()
        let hub = try #require(statuses.first { $0.peer.name == "hub" })
        let trust = try #require(statuses.first { $0.peer.name == "trust-a" })
        #expect(hub.queueDepth == 3)
        #expect(hub.oldestEnqueuedAt == start)
        #expect(hub.connectionState == .connected)
        #expect(hub.lastSuccessAt == start + 5_000)
        #expect(trust.queueDepth == 1)
        #expect(trust.oldestEnqueuedAt == start + 5_000)
        #expect(trust.connectionState == .disconnected)
        #expect(trust.lastError == "connection refused")
        #expect(statuses.first { $0.peer.name == "trust-b" }?.queueDepth == 0)
        #expect(try await store.queue(peer: nil, limit: 10).oldestEnqueuedAt == start)

        let unknownPeer = await storeError { _ = try await store.enqueue([push("cp-1", "1", peer: "nowhere")]) }
        #expect(unknownPeer?.code == .notFound)
    }
}
