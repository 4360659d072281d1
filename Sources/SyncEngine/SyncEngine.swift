import FHIRClient
import FHIRJSON
import FHIRModel
public import Logging
public import MergeCore
public import StateStore
import Synchronization

/// Counts of what the engine did, for summaries (the sandbox, `caresync resync`, tests).
public struct SyncReport: Sendable, Hashable {
    /// New versions stored in the inbox, per peer.
    public var pulled: [String: Int] = [:]
    /// Inbox rows decided, by kind.
    public var decided: [InboundPlan.Kind: Int] = [:]
    /// Automatic merge decisions taken.
    public var decisions = 0
    /// Pushes that landed, per peer.
    public var pushed: [String: Int] = [:]
    /// Lost races merged again.
    public var remerged = 0
    /// Pushes dead-lettered.
    public var deadLettered = 0
    /// Push attempts that will be retried.
    public var retried = 0
    /// Peers refused (not FHIR 4.0.1).
    public var refused: Set<String> = []

    public init() {}

    /// What a resync did, in a line: how many versions were read and what became of them.
    public var resyncSummary: String {
        "\(pulled.values.reduce(0, +)) new version(s) read, \(decided[.merged] ?? 0) merged, "
            + "\(decided[.created] ?? 0) created at the hub, \(decided[.conflict] ?? 0) conflict(s), "
            + "\(decided[.quarantined] ?? 0) quarantined"
    }

    init(pulled: [String: Int]) {
        self.pulled = pulled
    }

    mutating func add(_ other: SyncReport) {
        for (peer, count) in other.pulled { pulled[peer, default: 0] += count }
        for (kind, count) in other.decided { decided[kind, default: 0] += count }
        decisions += other.decisions
        for (peer, count) in other.pushed { pushed[peer, default: 0] += count }
        remerged += other.remerged
        deadLettered += other.deadLettered
        retried += other.retried
        refused.formUnion(other.refused)
    }

    /// Whether the pass found nothing to do.
    var isIdle: Bool { pulled.values.allSatisfy { $0 == 0 } && decided.isEmpty && pushed.isEmpty && remerged == 0 }
}

/// The sync engine (DESIGN §3): pulls each peer, merges what came in against the hub, and drains each
/// peer's outbox, with the decisions made by ``InboundPlanner`` and ``PushDecisions`` and all I/O through
/// ``SyncPeerClient`` and ``SyncStateStoreProtocol``.
///
/// Two ways to run it: ``run()`` keeps one pull loop and one push loop per peer plus one merge loop
/// going until ``stop()`` (the daemon), so one slow or unreachable peer never holds up the others;
/// ``syncUntilQuiescent(maxRounds:)`` runs whole passes until nothing changes (tests, the sandbox, a
/// resync from the CLI).
public final class SyncEngine: Sendable {
    public let topology: SyncTopology
    public let settings: EngineSettings
    let planner: InboundPlanner
    let store: any SyncStateStoreProtocol
    let clients: [String: any SyncPeerClient]
    let logger: Logger
    let observer: (any SyncObserver)?
    let wallClock: any WallClock

    private let stopping = Atomic<Bool>(false)
    private let refusedPeers = Mutex<[String: String]>([:])
    private let checkedPeers = Mutex<Set<String>>([])
    private let peerStates = Mutex<[String: PeerSyncState]>([:])
    private let lastContact = Mutex<[String: Int64]>([:])
    /// Per peer, the types still to be read again after its store was found restored.
    private let rereading = Mutex<[String: Set<ResourceType>]>([:])
    /// When each `peer|type` last read its whole `clockSkewMargin` window to the end (monotonic time).
    private let lastSweep = Mutex<[String: ContinuousClock.Instant]>([:])
    /// Set while the state store cannot be written for lack of space: the loops pause until `retryAt`.
    private let storageOutage = Mutex<StorageOutage?>(nil)
    private let totals = Mutex(SyncReport())
    private let status = Mutex("starting")
    private let wakeAll = EngineSignal()
    private let mergeSignal = EngineSignal()
    private let pushSignals: [String: EngineSignal]
    /// Decisions that read the state (the patient's holders, the hub's records of the patient, queued
    /// pushes) and commit what follows from it: merge batches (onboarding a new holder) and hub push
    /// completions (their fan-out). Run one at a time, so neither decides on a snapshot the other is about
    /// to change: a record landing at the hub while a provider starts holding its patient reaches it either
    /// by the completion's fan-out or by the onboarding, never by neither.
    private let decisionSection = SerialSection()

    /// - Parameters:
    ///   - topology: the hub and providers.
    ///   - settings: interval, page size, skew margin, batch sizes.
    ///   - policy: the merge policy.
    ///   - store: the state store (opened as writer).
    ///   - clients: one client per peer, by peer name.
    ///   - logger: where events go (no patient data is logged).
    ///   - observer: metrics and health.
    public init(
        topology: SyncTopology, settings: EngineSettings, policy: MergePolicy, store: any SyncStateStoreProtocol,
        clients: [String: any SyncPeerClient], logger: Logger, observer: (any SyncObserver)? = nil,
        wallClock: any WallClock = SystemWallClock()
    ) {
        self.topology = topology
        self.settings = settings
        self.planner = InboundPlanner(topology: topology, policy: policy)
        self.store = store
        self.clients = clients
        self.logger = logger
        self.observer = observer
        self.wallClock = wallClock
        var signals: [String: EngineSignal] = [:]
        for peer in topology.peers { signals[peer.name] = EngineSignal() }
        self.pushSignals = signals
    }

    /// Everything done since the engine was made.
    public var report: SyncReport { totals.withLock { $0 } }

    /// Peers refused at start (not FHIR 4.0.1), with the reason.
    public var refused: [String: String] { refusedPeers.withLock { $0 } }

    /// The `systemctl status` line: peers, queue depth and lag.
    public func statusLine() -> String { status.withLock { $0 } }

    // MARK: Start

    /// Registers every peer in the state store. Each peer's `metadata` is checked before its first pull
    /// (``checkCapabilities(_:)``): a peer that is not FHIR 4.0.1 is refused (recorded, audited, logged)
    /// and left out; the others go on. A peer that cannot be reached is checked again next time.
    public func start() async throws(StateStoreError) {
        for peer in topology.peers {
            try await store.registerPeer(PeerDescriptor(name: peer.name, ods: peer.ods, baseURL: peer.baseURL, mode: peer.mode))
        }
    }

    /// Whether `peer` may be synced: checks its metadata once (again after a failure to reach it).
    func checkCapabilities(_ peer: SyncPeer) async -> Bool {
        if refusedPeers.withLock({ $0[peer.name] != nil }) { return false }
        if checkedPeers.withLock({ $0.contains(peer.name) }) { return true }
        guard let client = clients[peer.name] else { return false }
        do {
            let capabilities = try await client.requireR4()
            checkedPeers.withLock { _ = $0.insert(peer.name) }
            logger.info("peer checked", metadata: ["peer": "\(peer.name)", "fhirVersion": "\(capabilities.fhirVersion ?? "-")"])
            return true
        } catch {
            if error.code == .unsupportedVersion {
                refusedPeers.withLock { $0[peer.name] = error.message }
                totals.withLock { _ = $0.refused.insert(peer.name) }
                logger.error("peer refused", metadata: ["peer": "\(peer.name)", "reason": "\(error.message)"])
                await setState(peer.name, .refused, detail: error.message)
                try? await store.appendAudit([
                    AuditEvent(actor: planner.actor, action: "peer-refused", peer: peer.name, detail: error.message)
                ])
            } else {
                await recordFailure(peer.name, error)
            }
            return false
        }
    }

    // MARK: Whole passes

    /// Runs passes (pull every peer, merge, drain every queue) until one finds nothing to do and every
    /// queue is empty, or `maxRounds` passes. Retries are waited for (their backoff), up to `maxWait`
    /// per pass.
    @discardableResult
    public func syncUntilQuiescent(maxRounds: Int = 100, maxWait: Duration = .seconds(30)) async throws -> SyncReport {
        var total = SyncReport()
        for _ in 0..<maxRounds {
            var pass = SyncReport()
            for peer in topology.peers where await checkCapabilities(peer) {
                pass.add(await pullAll(peer))
            }
            pass.add(try await mergePending())
            pass.add(await drainAll(maxWait: maxWait))
            pass.add(try await mergePending())
            total.add(pass)
            if pass.isIdle, try await queuesEmpty() { break }
        }
        await measure()
        total.refused = Set(refusedPeers.withLock { $0.keys })
        return total
    }

    /// Whether no push is queued for any peer that is synced.
    func queuesEmpty() async throws -> Bool {
        for peer in topology.peers where refusedPeers.withLock({ $0[peer.name] == nil }) {
            if try await store.queue(peer: peer.name, limit: 1).depth > 0 { return false }
        }
        return true
    }

    /// Drains every peer's queue concurrently, waiting for backed-off items up to `maxWait`.
    func drainAll(maxWait: Duration) async -> SyncReport {
        await withTaskGroup(of: SyncReport.self) { group in
            for peer in topology.peers where refusedPeers.withLock({ $0[peer.name] == nil }) {
                group.addTask {
                    var report = SyncReport()
                    let deadline = ContinuousClock.now.advanced(by: maxWait)
                    while !self.stopping.load(ordering: .relaxed) {
                        let (pass, nextDue) = await self.drain(peer)
                        report.add(pass)
                        guard let nextDue else { break }
                        let wait = max(0, nextDue - self.wallClock.nowMilliseconds())
                        if ContinuousClock.now.advanced(by: .milliseconds(wait)) > deadline { break }
                        try? await Task.sleep(for: .milliseconds(max(wait, 5)))
                    }
                    return report
                }
            }
            var total = SyncReport()
            for await report in group { total.add(report) }
            return total
        }
    }

    /// Pulls every type from the peer called `name` into the inbox (one step of a pass).
    @discardableResult
    public func pull(peerNamed name: String) async -> SyncReport {
        guard let peer = topology.peer(named: name), await checkCapabilities(peer) else { return SyncReport() }
        return await pullAll(peer)
    }

    /// Sends the due pushes of the peer called `name` (one step of a pass).
    @discardableResult
    public func drain(peerNamed name: String) async -> SyncReport {
        guard let peer = topology.peer(named: name), refusedPeers.withLock({ $0[name] == nil }) else { return SyncReport() }
        return await drain(peer).0
    }

    // MARK: Resync

    /// Reads again what `scope` names and merges it: for each peer and type, the changes since the cursor,
    /// or everything from the start with `full`, or only the patient's records with `patient`. Versions
    /// already stored are recognised and skipped (type, id, versionId); new ones are merged. Pushes are
    /// queued; ``runOnce(_:)`` also drains them.
    @discardableResult
    public func resync(_ scope: ResyncScope, progress: (@Sendable (ResyncProgress) async -> Void)? = nil) async throws -> SyncReport {
        var peers = topology.peers
        if let name = scope.peer {
            guard let peer = topology.peer(named: name) else {
                throw StateStoreError(.notFound, "no peer named '\(name)' is configured")
            }
            peers = [peer]
        }
        let types = scope.resourceType.map { [$0] } ?? settings.resourceTypes
        var report = SyncReport()
        var done = 0
        for peer in peers {
            guard await checkCapabilities(peer), let client = clients[peer.name] else {
                if scope.peer != nil, let reason = refusedPeers.withLock({ $0[peer.name] }) {
                    throw StateStoreError(.invalidArgument, "peer \(peer.name) is refused: \(reason)")
                }
                continue
            }
            for type in types where !isStopping {
                await progress?(ResyncProgress(done: done, phase: "reading \(type.rawValue) from \(peer.name)"))
                let count: Int
                if let patient = scope.patient, try await store.cursor(peer: peer.name, resourceType: type) != nil {
                    count = try await pullPatient(peer, type: type, patient: patient, client: client)
                } else {
                    if scope.full { try await store.resetCursors(peer: peer.name, resourceType: type) }
                    count = try await pull(peer, type: type, client: client)
                }
                report.pulled[peer.name, default: 0] += count
                done += count
            }
        }
        await progress?(ResyncProgress(done: done, total: done, phase: "merging"))
        report.add(try await mergePending())
        for peer in topology.peers { pushSignals[peer.name]?.notify() }
        totals.withLock { $0.add(SyncReport(pulled: report.pulled)) }
        return report
    }

    /// A resync followed by whole passes until quiescent: what `caresync resync` runs in-process when no
    /// daemon is running. `progress` hears about the resync's reading, then once more before the passes.
    @discardableResult
    public func runOnce(_ scope: ResyncScope, progress: (@Sendable (ResyncProgress) async -> Void)? = nil) async throws -> SyncReport {
        var report = try await resync(scope, progress: progress)
        let read = report.pulled.values.reduce(0, +)
        await progress?(ResyncProgress(done: read, total: read, phase: "pushing and merging until every peer is in step"))
        report.add(try await syncUntilQuiescent())
        return report
    }

    /// One patient's records of one type at a peer, stored with the cursor left where it was.
    func pullPatient(_ peer: SyncPeer, type: ResourceType, patient: NHSNumber, client: any SyncPeerClient) async throws -> Int {
        guard let cursor = try await store.cursor(peer: peer.name, resourceType: type) else { return 0 }
        var page = try await client.searchPage(
            type, [("patient:identifier", NHSNumber.system + "|" + patient.digits), ("_count", String(settings.pageSize))])
        var total = 0
        while true {
            let records = page.resources.map { Self.inboxRecord($0, type: type) }
            if !records.isEmpty {
                total += try await store.storePulledPage(PulledPage(peer: peer.name, resourceType: type, records: records, cursor: cursor))
            }
            guard let link = page.next, !isStopping else { break }
            page = try await client.nextPage(link)
        }
        return total
    }

    /// Works through the operators' pending resync requests (`caresync resync`), reporting progress and
    /// the outcome on each. Returns how many were handled.
    @discardableResult
    public func processResyncRequests() async -> Int {
        guard let requests = try? await store.pendingResyncRequests(), !requests.isEmpty else { return 0 }
        for request in requests where !isStopping {
            do {
                try await store.startResync(id: request.id)
                let store = self.store
                let report = try await resync(request.scope) { progress in
                    try? await store.updateResyncProgress(id: request.id, progress)
                }
                let summary = report.resyncSummary
                try await store.finishResync(id: request.id, .completed(summary: summary))
                logger.notice("resync request done", metadata: ["request": "\(request.id)", "summary": "\(summary)"])
            } catch {
                try? await store.finishResync(id: request.id, .failed(reason: "\(error)"))
                logger.error("resync request failed", metadata: ["request": "\(request.id)", "error": "\(error)"])
            }
        }
        return requests.count
    }

    // MARK: The daemon's loops

    /// Runs until ``stop()``: per peer a pull loop (every `interval`, or at once on ``wake()``) and a push
    /// loop (whenever pushes are queued or due), and one merge loop. After ``stop()`` the push loops
    /// finish the requests they have in flight and record their answers; nothing new starts.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.mergeLoop() }
            group.addTask { await self.resyncLoop() }
            for peer in topology.peers {
                group.addTask { await self.pullLoop(peer) }
                group.addTask { await self.pushLoop(peer) }
            }
        }
        logger.notice("sync engine stopped")
    }

    /// Starts a pass of every peer now (SIGUSR1, a resync request).
    public func wake() {
        wakeAll.notify()
    }

    /// Asks the loops to finish: in-flight pushes complete and are recorded, then ``run()`` returns.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        wakeAll.notify()
        mergeSignal.notify()
        for signal in pushSignals.values { signal.notify() }
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// How long a loop may go without a heartbeat before the health monitor calls it stalled (the watchdog
    /// then stops pinging and systemd restarts the daemon).
    var heartbeatDeadline: Duration { settings.interval * 3 + .seconds(120) }

    private func pullLoop(_ peer: SyncPeer) async {
        let waiter = wakeAll.subscriber()
        while !isStopping {
            // A refused peer is not pulled, but its loop keeps beating: refusing a peer is not a stall. Nor
            // is a full state directory: pulls wait for its back-off.
            if !storagePaused, await checkCapabilities(peer) {
                let report = await pullAll(peer)
                if report.pulled.values.contains(where: { $0 > 0 }) { mergeSignal.notify() }
            }
            observer?.heartbeat("pull:\(peer.name)", deadline: heartbeatDeadline)
            await waiter.wait(timeout: settings.interval, until: { self.isStopping })
        }
    }

    /// Resync requests, and the measurements behind the status line and the metrics, each cycle.
    private func resyncLoop() async {
        let waiter = wakeAll.subscriber()
        while !isStopping {
            if !storagePaused { await processResyncRequests() }
            await measure()
            observer?.heartbeat("resync", deadline: heartbeatDeadline)
            await waiter.wait(timeout: settings.interval, until: { self.isStopping })
        }
    }

    private func mergeLoop() async {
        let waiter = mergeSignal.subscriber()
        while !isStopping {
            do {
                if !storagePaused {
                    let report = try await mergePending()
                    if !report.decided.isEmpty { await measure() }
                }
            } catch let error as StateStoreError where error.code == .storageFull {
                await storageFailed(error)
            } catch {
                logger.error("merging failed; will try again", metadata: ["error": "\(error)"])
            }
            observer?.heartbeat("merge", deadline: heartbeatDeadline)
            await waiter.wait(timeout: settings.interval, until: { self.isStopping })
        }
    }

    private func pushLoop(_ peer: SyncPeer) async {
        guard let waiter = pushSignals[peer.name]?.subscriber() else { return }
        while !isStopping {
            var nextDue: Int64?
            if refusedPeers.withLock({ $0[peer.name] == nil }), !storagePaused {
                (_, nextDue) = await drain(peer)
            }
            observer?.heartbeat("push:\(peer.name)", deadline: heartbeatDeadline)
            let timeout: Duration
            if let nextDue {
                timeout = .milliseconds(max(5, min(nextDue - wallClock.nowMilliseconds(), settings.interval.milliseconds)))
            } else {
                timeout = settings.interval
            }
            await waiter.wait(timeout: timeout, until: { self.isStopping })
        }
    }

    // MARK: Pull

    /// Pulls every type from `peer` into the inbox.
    func pullAll(_ peer: SyncPeer) async -> SyncReport {
        var report = SyncReport()
        guard let client = clients[peer.name] else { return report }
        var failed = false
        for type in settings.resourceTypes where !isStopping {
            do {
                let count = try await pull(peer, type: type, client: client)
                report.pulled[peer.name, default: 0] += count
                observer?.pulled(peer: peer.name, type: type, records: count, succeeded: true)
            } catch let error as FHIRClientError {
                failed = true
                observer?.pulled(peer: peer.name, type: type, records: 0, succeeded: false)
                await recordFailure(peer.name, error)
                break
            } catch let error as StateStoreError where error.code == .storageFull {
                failed = true
                observer?.pulled(peer: peer.name, type: type, records: 0, succeeded: false)
                await storageFailed(error)
                break
            } catch {
                failed = true
                observer?.pulled(peer: peer.name, type: type, records: 0, succeeded: false)
                logger.error("storing a pulled page failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
                break
            }
        }
        if !failed { await recordSuccess(peer.name, busy: report.pulled[peer.name, default: 0] > 0) }
        totals.withLock { $0.add(report) }
        return report
    }

    /// One pull of (peer, type), sorted by `_lastUpdated` and paged by `next`, each page stored with the
    /// cursor after it in one transaction. A **sweep** reads `ge{cursor − margin}` (earlier when the newest
    /// version pulled before is older, so it comes back first) and moves the cursor; until the next sweep is
    /// due (`sweepInterval`, by default one margin), a pull reads only `ge{newest version pulled}` and leaves
    /// the cursor's time where the sweep put it, so the next sweep still reads every version stamped up to
    /// a margin before it (a late commit arrives within one sweep interval). A peer that went backwards
    /// (its time before the cursor, or the newest version pulled before gone or older) is reported and
    /// read again from the start. Returns how many versions were new.
    func pull(_ peer: SyncPeer, type: ResourceType, client: any SyncPeerClient) async throws -> Int {
        let stored = try await store.cursor(peer: peer.name, resourceType: type)
        let cursorTime = stored.flatMap { FHIRInstant($0.serverTime) }
        let margin = settings.clockSkewMargin.milliseconds
        let reread = rereading.withLock { $0[peer.name]?.contains(type) ?? false }
        let sweepKey = peer.name + "|" + type.rawValue
        let started = ContinuousClock.now
        let newestStamp = stored?.newest.flatMap { FHIRInstant($0.lastUpdated) }
        let sweepEvery = settings.sweepInterval ?? settings.clockSkewMargin
        let sweepDue = lastSweep.withLock { $0[sweepKey] }.map { started - $0 >= sweepEvery } ?? true
        let sweep = sweepDue || reread || newestStamp == nil
        var parameters: [(String, String)] = [("_sort", "_lastUpdated"), ("_count", String(settings.pageSize))]
        if let cursorTime {
            var since = cursorTime.adding(milliseconds: -margin)
            if let newestStamp, newestStamp < since || !sweep { since = newestStamp }
            parameters.insert(("_lastUpdated", "ge" + since.text), at: 0)
        }
        var page = try await client.searchPage(type, parameters)
        if let cursorTime, let serverTime = page.serverTime,
            serverTime.millisecondsSinceEpoch < cursorTime.millisecondsSinceEpoch - margin
        {
            // The peer's time is behind what it told us before: its store or clock went backwards.
            try await reportRestore(
                peer, type: type,
                detail: "\(type.rawValue): the peer's time \(serverTime.text) is before the pull cursor \(cursorTime.text): "
                    + "its store may have been restored or its clock set back; reading everything again to re-reconcile")
            return try await pull(peer, type: type, client: client)
        }
        var newestKept = stored?.newest
        if let mark = stored?.newest {
            switch try await checkNewest(mark, firstPage: page, type: type, client: client) {
            case .present:
                break
            case .deleted:
                // Deleted at the peer, not restored: the check moves on to the next version pulled.
                newestKept = nil
            case .restored(let why):
                try await reportRestore(
                    peer, type: type,
                    detail: "\(type.rawValue)/\(mark.localID) version \(mark.versionID) (\(mark.lastUpdated)) was pulled before and "
                        + "\(why): the peer's store was restored from an older backup; reading all its records again to "
                        + "re-reconcile them (the hub keeps its newer versions; older ones are merged without a base)")
                return try await pull(peer, type: type, client: client)
            }
        }
        let seenBefore = Set(stored?.seen ?? [])
        var window: [(key: VersionKey, at: Int64)] = []
        var total = 0
        var currentCursor = stored
        var newest = newestKept
        var newestAt = newest.flatMap { FHIRInstant($0.lastUpdated)?.millisecondsSinceEpoch } ?? .min
        while true {
            var records: [InboxRecord] = []
            records.reserveCapacity(page.resources.count)
            var newestInPage: FHIRInstant?
            for resource in page.resources {
                let record = Self.inboxRecord(resource, type: type)
                if let updated = record.lastUpdated.flatMap(FHIRInstant.init) {
                    if newestInPage == nil || updated > newestInPage! { newestInPage = updated }
                    window.append((record.versionKey, updated.millisecondsSinceEpoch))
                    if let id = resource.id, let version = resource.versionID, let text = resource.lastUpdated,
                        updated.millisecondsSinceEpoch >= newestAt
                    {
                        newest = PulledVersionMark(localID: id, versionID: version, lastUpdated: text)
                        newestAt = updated.millisecondsSinceEpoch
                    }
                }
                // The newest version of the last pull comes back first in every pull: it was seen then.
                if let mark = stored?.newest, mark.localID == record.localID, mark.versionID == record.versionID { continue }
                if !seenBefore.contains(record.versionKey) { records.append(record) }
            }
            // A version the identity map already holds as synced (our own push coming back, or one merged
            // before) is not stored again: nothing would come of it. While re-reading a restored peer, a
            // version older than the one synced is decided again (merged without a base).
            var reopen = Set<VersionKey>()
            if !records.isEmpty {
                let known = try await store.syncedVersions(peer: peer.name, resourceType: type, localIDs: records.map(\.localID))
                if !known.isEmpty { records.removeAll { known[$0.localID] == $0.versionID } }
                if reread {
                    for record in records where InboundPlanner.isOlder(record.versionID, than: known[record.localID]) {
                        reopen.insert(record.versionKey)
                    }
                }
            }
            let isLast = page.next == nil
            // Server times only: the newest stamp in the page while more pages follow (sorted ascending,
            // every later version is at or after it), the answer's own time on the last page.
            let cursorInstant = isLast ? (page.serverTime ?? newestInPage) : (newestInPage ?? page.serverTime)
            if let cursorInstant {
                let threshold = cursorInstant.millisecondsSinceEpoch - margin
                var seen: [VersionKey] = []
                for entry in window.reversed() where entry.at >= threshold {
                    seen.append(entry.key)
                    if seen.count >= Self.seenLimit { break }
                }
                // Keep only what a later page's `seen` can still take: at or after this threshold (pages
                // come sorted, so thresholds only rise), at most the newest `seenLimit`. Memory stays flat
                // however many pages one pull reads (a first pull reads the peer's every record).
                window.removeAll { $0.at < threshold }
                if window.count > Self.seenLimit { window.removeFirst(window.count - Self.seenLimit) }
                // Between sweeps the cursor's time stays where the last sweep put it.
                let serverTime = sweep ? cursorInstant.text : (currentCursor?.serverTime ?? cursorInstant.text)
                let next = SyncCursor(serverTime: serverTime, seen: seen, newest: newest)
                let moved = sweep && (currentCursor.flatMap { FHIRInstant($0.serverTime) }).map {
                    cursorInstant.millisecondsSinceEpoch - $0.millisecondsSinceEpoch >= margin
                } ?? true
                if !records.isEmpty || moved || newest != currentCursor?.newest {
                    let stored = try await store.storePulledPage(
                        PulledPage(peer: peer.name, resourceType: type, records: records, cursor: next, reopen: reopen))
                    await storageWritable()
                    total += stored
                    currentCursor = next
                }
            } else if !records.isEmpty {
                throw FHIRClientError(.malformedResponse, "the peer gave no server time for a page of results", url: type.rawValue)
            }
            observer?.heartbeat("pull:\(peer.name)", deadline: heartbeatDeadline)
            guard let link = page.next else {
                if sweep { lastSweep.withLock { $0[sweepKey] = started } }
                break
            }
            guard !isStopping else { break }
            page = try await client.nextPage(link)
        }
        if reread, !isStopping { rereading.withLock { _ = $0[peer.name]?.remove(type) } }
        return total
    }

    /// The most versions a cursor remembers as seen inside its `clockSkewMargin` window.
    static let seenLimit = 2000

    /// What became of the newest version pulled before from a (peer, type).
    enum NewestCheck: Equatable {
        /// Still there, at that version or a later one.
        case present
        /// Deleted at the peer (`410`): not a restore.
        case deleted
        /// Gone (`404`) or older: the peer's store went back; why, for the report.
        case restored(String)
    }

    /// Whether `mark`, the newest version pulled before, is still at the peer: looked for in the first page
    /// of this pull (it is the oldest in range, so it comes first), else read.
    func checkNewest(_ mark: PulledVersionMark, firstPage page: RawBundlePage, type: ResourceType, client: any SyncPeerClient)
        async throws(FHIRClientError) -> NewestCheck
    {
        if let found = page.resources.first(where: { $0.id == mark.localID }) {
            return Self.regression(of: mark, versionID: found.versionID, lastUpdated: found.lastUpdated).map(NewestCheck.restored) ?? .present
        }
        switch try await client.readCurrent(type, id: mark.localID) {
        case .gone:
            return .deleted
        case .notFound:
            return .restored("the peer now answers 404 for it")
        case .found(let current):
            let updated = current.resource["meta"]?["lastUpdated"]?.stringValue
            return Self.regression(of: mark, versionID: current.versionID, lastUpdated: updated).map(NewestCheck.restored) ?? .present
        }
    }

    /// Why the current version (`versionID`, `lastUpdated`) of the record `mark` names is older than
    /// `mark`, or `nil` when it is not: a lower numeric version, an earlier `lastUpdated`, or the same
    /// version with another `lastUpdated` (a store that reused a version number).
    static func regression(of mark: PulledVersionMark, versionID: String?, lastUpdated: String?) -> String? {
        if InboundPlanner.isOlder(versionID, than: mark.versionID) {
            return "the peer now holds version \(versionID ?? "?")"
        }
        guard let before = FHIRInstant(mark.lastUpdated), let now = lastUpdated.flatMap(FHIRInstant.init) else { return nil }
        if now < before { return "the peer now holds version \(versionID ?? "?") of \(now.text)" }
        if versionID == mark.versionID, now.millisecondsSinceEpoch != before.millisecondsSinceEpoch { return "the peer now holds version \(versionID ?? "?") of \(now.text)" }
        return nil
    }

    /// A peer whose store went backwards: reported (audit `peer-store-regressed`, a warning, the peer's
    /// state detail and last error), its cursors reset so all its records are read again, and its types
    /// marked as being re-read (versions older than the ones synced are decided again).
    func reportRestore(_ peer: SyncPeer, type: ResourceType, detail: String) async throws {
        logger.warning("peer store went backwards; reading it again", metadata: ["peer": "\(peer.name)", "type": "\(type.rawValue)"])
        try await store.appendAudit([AuditEvent(actor: planner.actor, action: "peer-store-regressed", peer: peer.name, detail: detail)])
        await setState(peer.name, .syncing, detail: detail, force: true)
        try? await store.recordContact(peer: peer.name, .failed(message: "peer-store-regressed: " + detail, state: .connected))
        try await store.resetCursors(peer: peer.name, resourceType: nil)
        rereading.withLock { $0[peer.name] = Set(settings.resourceTypes) }
    }

    /// An inbox row for a pulled resource. A resource without an id or version keeps a stand-in made
    /// from its content, so it is stored (and quarantined by the merge), never dropped.
    static func inboxRecord(_ resource: RawResource, type: ResourceType) -> InboxRecord {
        let digest = resource.id == nil || resource.versionID == nil ? Self.digest(resource.bytes) : ""
        return InboxRecord(
            resourceType: type,
            localID: resource.id ?? "missing-id-\(digest)",
            versionID: resource.versionID ?? "missing-version-\(digest)",
            lastUpdated: resource.lastUpdated,
            nhsNumber: nil,
            content: resource.bytes)
    }

    static func digest(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    // MARK: Merge

    /// Decides every pending inbox row, oldest first, one peer at a time in batches of `mergeBatchSize`
    /// committed in one transaction each (a batch never mixes peers, so each peer's batch sees what the
    /// others' committed). A batch whose commit fails is retried row by row; a row that still fails is
    /// quarantined with the reason, so it never blocks the others.
    @discardableResult
    public func mergePending() async throws -> SyncReport {
        var report = SyncReport()
        var busy = true
        while busy, !isStopping {
            busy = false
            for peer in topology.peers where !isStopping {
                let items = try await store.pendingInbox(peer: peer.name, limit: settings.mergeBatchSize)
                if items.isEmpty { continue }
                busy = true
                report.add(try await mergeBatch(items))
                observer?.heartbeat("merge", deadline: heartbeatDeadline)
            }
        }
        totals.withLock { $0.add(report) }
        return report
    }

    private func mergeBatch(_ items: [InboxItem]) async throws -> SyncReport {
        var report = SyncReport()
        let started = ContinuousClock.now
        let prepared = items.map(planner.prepare)
        let plans = try await decisionSection.run {
            let contexts = try await store.recordContexts(prepared.map(planner.lookup))
            var overlay = BatchOverlay()
            var plans: [InboundPlan] = []
            plans.reserveCapacity(items.count)
            for (version, context) in zip(prepared, contexts) {
                var effective = overlay.context(for: version, planner: planner) ?? context
                if overlay.hasOnboarded(version) { effective.hubPatientRecords = [] }
                let plan = planner.plan(version, context: effective)
                overlay.record(plan, version: version, context: effective)
                plans.append(plan)
            }
            do {
                _ = try await store.commitMerges(plans.map(\.commit))
                await storageWritable()
            } catch let error as StateStoreError where error.code == .storageFull {
                throw error
            } catch {
                logger.warning("a batch of merges could not be committed; merging its rows one by one", metadata: ["error": "\(error)"])
                plans = try await mergeOneByOne(prepared)
            }
            return plans
        }
        let perRow = (ContinuousClock.now - started) / max(plans.count, 1)
        var touched = Set<String>()
        for plan in plans {
            report.decided[plan.kind, default: 0] += 1
            report.decisions += plan.decisions
            observer?.merged(plan.kind, duration: perRow)
            for push in plan.commit.pushes { touched.insert(push.peer) }
            if plan.regression {
                logger.warning(
                    "a peer sent an older version than the one synced; merged without a base",
                    metadata: ["peer": "\(plan.commit.audit.first?.peer ?? "-")"])
            }
        }
        for peer in touched { pushSignals[peer]?.notify() }
        return report
    }

    private func mergeOneByOne(_ prepared: [PreparedVersion]) async throws -> [InboundPlan] {
        var plans: [InboundPlan] = []
        for version in prepared {
            let context = try await store.recordContexts([planner.lookup(version)])[0]
            let plan = planner.plan(version, context: context)
            let failure = await commitOne(plan.commit)
            guard let failure else {
                plans.append(plan)
                continue
            }
            if failure.message.contains("already processed") { continue }
            guard failure.code == .invalidArgument || failure.code == .notFound else { throw failure }
            let quarantined = planner.quarantine(version.item, reason: "could not be merged: \(failure.message)")
            if let error = await commitOne(quarantined.commit) { throw error }
            plans.append(quarantined)
        }
        return plans
    }

    /// Commits one merge; the store's error, or `nil`.
    private func commitOne(_ commit: MergeCommit) async -> StateStoreError? {
        do {
            _ = try await store.commitMerge(commit)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Push

    /// Leases and sends `peer`'s due pushes until none is due. Returns the report and when the next
    /// queued push is due (`nil` when the queue is empty).
    func drain(_ peer: SyncPeer) async -> (SyncReport, Int64?) {
        var report = SyncReport()
        guard let client = clients[peer.name] else { return (report, nil) }
        let lease = settings.leaseDuration.milliseconds
        var recording: Task<SyncReport, Never>?
        while !isStopping {
            let leased: [LeasedPush]
            do {
                leased = try await store.lease(peer: peer.name, limit: settings.pushBatchSize, durationMilliseconds: lease)
            } catch {
                if error.code == .storageFull {
                    await storageFailed(error)
                } else {
                    logger.error("leasing pushes failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
                }
                break
            }
            if leased.isEmpty { break }
            await setState(peer.name, .syncing, detail: nil)
            let answers = await send(leased, to: client)
            // The answers of one batch are recorded while the next batch is leased and sent. Safe: a
            // record's later push is not leased while its earlier one still holds a lease, so the batch
            // on the wire never holds a push that depends on an answer not recorded yet.
            if let previous = recording { report.add(await previous.value) }
            recording = Task { await self.record(answers, for: leased, peer: peer, client: client) }
            observer?.heartbeat("push:\(peer.name)", deadline: heartbeatDeadline)
            if answers.allSatisfy({ if case .failed = $0 { true } else { false } }) { break }
        }
        if let previous = recording { report.add(await previous.value) }
        totals.withLock { $0.add(report) }
        let next = try? await store.queue(peer: peer.name, limit: 1)
        if next?.depth ?? 0 == 0, report.retried == 0 { await setState(peer.name, .idle, detail: nil) }
        return (report, next?.items.first?.nextAttemptAt)
    }

    /// Sends leased pushes: one request for one push (its `X-Request-ID` is the push's), a `transaction`
    /// Bundle for several, or a `batch` when the transaction fails on one entry (each entry's `fullUrl`
    /// names its push).
    func send(_ leased: [LeasedPush], to client: any SyncPeerClient) async -> [PushAnswer] {
        if leased.count == 1 {
            let item = leased[0].item
            let push = item.push
            let type = push.recordKey.resourceType
            do {
                let result: WriteResult
                switch push.operation {
                case .create:
                    result = try await client.create(
                        type, body: push.body, ifNoneExist: Self.ifNoneExist(push.recordKey), requestID: item.requestID)
                case .update:
                    guard let localID = push.localID else {
                        return [.status(400, outcome: "an update without the target id", retryAfterMilliseconds: nil)]
                    }
                    result = try await client.update(
                        type, id: localID, body: push.body, ifMatchVersion: push.ifMatchVersion, requestID: item.requestID)
                }
                return [.stored(status: result.status, localID: result.localID, versionID: result.versionID)]
            } catch {
                return [Self.answer(error)]
            }
        }
        let entries = leased.map { leased -> BatchEntry in
            let push = leased.item.push
            return BatchEntry(
                requestID: leased.item.requestID, method: push.operation == .create ? .post : .put,
                resourceType: push.recordKey.resourceType, localID: push.localID, ifMatchVersion: push.ifMatchVersion,
                ifNoneExist: push.operation == .create ? Self.ifNoneExist(push.recordKey) : nil, body: push.body)
        }
        do {
            // A transaction first: one unit of work at the peer, much cheaper there than entry by entry.
            // When one entry fails it (a lost race, bad input), the same entries go again as a batch, whose
            // per-entry answers say which one failed; the others land. A retriable failure retries all.
            let results: [BatchEntryResult]
            do {
                results = try await client.transaction(entries, requestID: RequestIdentifier.make())
            } catch let error where error.code == .httpStatus && !error.isRetriable {
                results = try await client.batch(entries, requestID: RequestIdentifier.make())
            }
            return results.map { result in
                if (200...299).contains(result.status), let localID = result.localID {
                    return .stored(status: result.status, localID: localID, versionID: result.versionID)
                }
                return .status(result.status, outcome: result.outcome, retryAfterMilliseconds: nil)
            }
        } catch {
            return Array(repeating: Self.answer(error), count: leased.count)
        }
    }

    static func answer(_ error: FHIRClientError) -> PushAnswer {
        if error.code == .httpStatus, let status = error.status {
            return .status(status, outcome: error.outcome, retryAfterMilliseconds: error.retryAfterMilliseconds)
        }
        return .failed(message: error.description, retriable: error.isRetriable)
    }

    /// `identifier=system|value` for `If-None-Exist`, percent-encoded as a query.
    static func ifNoneExist(_ key: GlobalKey) -> String {
        "identifier=" + FHIRClient.percentEncode(key.identifier.token)
    }

    /// Records the answers: completions in one transaction, then retries, dead letters and lost races.
    func record(_ answers: [PushAnswer], for leased: [LeasedPush], peer: SyncPeer, client: any SyncPeerClient) async -> SyncReport {
        var report = SyncReport()
        var completions: [CompletedPush] = []
        var lastFailure: String?
        for (push, answer) in zip(leased, answers) {
            switch PushDecisions.action(for: answer, item: push.item) {
            case .complete(let completion):
                completions.append(CompletedPush(push: push, completion: completion))
            case .retry(let reason, let retryAfter):
                report.retried += 1
                lastFailure = reason
                observer?.pushed(peer: peer.name, outcome: .retried)
                do {
                    try await store.fail(push, error: reason, retryAfterMilliseconds: retryAfter)
                } catch {
                    logger.error("recording a failed push failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
                }
            case .deadLetter(let status, let reason):
                report.deadLettered += 1
                observer?.pushed(peer: peer.name, outcome: .deadLettered)
                logger.error(
                    "push dead-lettered", metadata: ["peer": "\(peer.name)", "status": "\(status.map(String.init) ?? "-")", "item": "\(push.item.id)"])
                do {
                    try await store.deadLetter(push, httpStatus: status, reason: reason)
                } catch {
                    logger.error("dead-lettering a push failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
                }
            case .remerge(let localID):
                report.remerged += 1
                observer?.pushed(peer: peer.name, outcome: .conflict)
                await remerge(push, localID: localID, peer: peer, client: client)
            }
        }
        if !completions.isEmpty {
            do {
                let lost = try await decisionSection.run {
                    if peer.name == topology.hub.name {
                        completions = await withFanOut(completions)
                    }
                    return try await store.complete(completions)
                }
                await storageWritable()
                for done in completions where !lost.contains(done.push.item.id) {
                    report.pushed[peer.name, default: 0] += 1
                    observer?.pushed(peer: peer.name, outcome: .succeeded)
                    for followUp in done.followUps { pushSignals[followUp.peer]?.notify() }
                }
            } catch let error as StateStoreError where error.code == .storageFull {
                // Not recorded: the pushes go again once there is space (If-Match / If-None-Exist make the
                // repeat harmless, as after a crash).
                await storageFailed(error)
            } catch {
                logger.error("recording completed pushes failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
            }
        }
        if let lastFailure {
            await setState(peer.name, .backingOff, detail: lastFailure)
        }
        return report
    }

    /// Hub pushes that landed, each with the fan-out of its content to the providers in scope (queued in
    /// the same transaction as the completion). Our own pushes coming back from the hub are not pulled
    /// again, so this is where the changes that providers made reach the other providers.
    func withFanOut(_ completions: [CompletedPush]) async -> [CompletedPush] {
        let receivers = topology.fanOutReceivers
        guard !receivers.isEmpty else { return completions }
        // Found by the push's record key (the hub's id is not linked before the completion is stored); of
        // the bases and queued pushes only the receivers' are read.
        let lookups = completions.map { done in
            RecordLookup(
                peer: topology.hub.name, resourceType: done.push.item.push.recordKey.resourceType, localID: nil,
                keys: [done.push.item.push.recordKey], patient: topology.needsPatientHolders ? done.push.item.push.nhsNumber : nil,
                contentPeers: receivers)
        }
        guard let contexts = try? await store.recordContexts(lookups) else { return completions }
        var result = completions
        for (index, (done, context)) in zip(completions, contexts).enumerated() {
            let laterPushQueued = context.queueTailIDs[topology.hub.name].map { $0 != done.push.item.id } ?? false
            // The body is parsed only when a provider's copy differs from it byte for byte.
            result[index].followUps = planner.fanOut(
                LazyResource(bytes: done.push.item.push.body), key: done.push.item.push.recordKey, nhs: done.push.item.push.nhsNumber, context: context,
                hubPushQueued: laterPushQueued)
        }
        return result
    }

    /// 409/412, or a conditional create that found the record: re-read the target, merge again, and
    /// replace or withdraw the push in one transaction.
    func remerge(_ push: LeasedPush, localID: String?, peer: SyncPeer, client: any SyncPeerClient) async {
        let item = push.item
        let type = item.push.recordKey.resourceType
        do {
            var current: FetchedVersion?
            if let localID, let fetched = try await client.read(type, id: localID) {
                current = FetchedVersion(localID: localID, versionID: fetched.versionID, resource: fetched.resource)
            }
            let isHub = peer.name == topology.hub.name
            var synced: String?
            if !isHub, let localID {
                synced = try await store.identity(peer: peer.name, resourceType: type, localID: localID)?.at(peer.name)?.versionID
            }
            guard
                let recovery = PushDecisions.recovery(
                    for: item, current: current, isHubTarget: isHub, syncedVersion: synced, policy: planner.policy,
                    actor: planner.actor)
            else {
                try await store.deadLetter(
                    push, httpStatus: 404,
                    reason: "the record is missing at the peer (deleted, or its store was restored); not recreated over a deletion")
                try await store.appendAudit([
                    AuditEvent(
                        actor: planner.actor, action: "peer-record-missing", peer: peer.name, recordKey: item.push.recordKey,
                        nhsNumber: item.push.nhsNumber, requestID: item.requestID,
                        detail: "\(type.rawValue)/\(localID ?? "?") is gone at the peer although it was synced")
                ])
                return
            }
            // The hub already holds exactly what we pushed: our push landed and its answer was lost (a
            // crash, a dropped connection). Complete it as if the answer had come, so the bases of its owners
            // are set and its fan-out is queued with the completion; withdrawing it would lose the fan-out,
            // since our own version coming back from the hub is not pulled again.
            if isHub, let current, recovery.replacement == nil, recovery.conflicts.isEmpty,
                ResourceContent.sameMeaning(current.resource, ResourceContent.parse(item.push.body))
            {
                let (done, lost) = try await decisionSection.run {
                    let done = await withFanOut([
                        CompletedPush(push: push, completion: PushCompletion(localID: current.localID, versionID: current.versionID))
                    ])
                    return (done, try await store.complete(done))
                }
                if !lost.contains(item.id) {
                    for followUp in done.flatMap(\.followUps) { pushSignals[followUp.peer]?.notify() }
                }
                return
            }
            _ = try await store.recoverLostRace(push, recovery)
            if recovery.replacement != nil { pushSignals[peer.name]?.notify() }
        } catch let error as FHIRClientError {
            _ = try? await store.fail(push, error: "re-reading after a lost race failed: \(error.description)", retryAfterMilliseconds: nil)
        } catch {
            logger.error("recovering a lost race failed", metadata: ["peer": "\(peer.name)", "error": "\(error)"])
        }
    }

    // MARK: A full state directory

    /// The state store could not be written for lack of space.
    struct StorageOutage {
        var since: Int64
        var failures: Int
        var retryAt: ContinuousClock.Instant
    }

    /// Whether work is paused because the state directory is full (until the back-off ends; the next pull
    /// then tries again).
    var storagePaused: Bool {
        storageOutage.withLock { outage in outage.map { ContinuousClock.now < $0.retryAt } ?? false }
    }

    /// How long the loops wait after the `failures`-th failed write to a full state directory: the
    /// interval, doubling, at most a minute.
    static func storageBackoff(failures: Int, interval: Duration) -> Duration {
        min(interval * (1 << min(max(failures - 1, 0), 16)), max(interval, .seconds(60)))
    }

    /// A write failed because the state directory is full: nothing was written (one transaction each), so
    /// nothing is lost; work pauses with a back-off. Reported once per outage: an error log, the health
    /// monitor (`/healthz`), the status line and, when the write fits, each peer's state.
    func storageFailed(_ error: StateStoreError) async {
        let now = wallClock.nowMilliseconds()
        let (first, delay) = storageOutage.withLock { outage -> (Bool, Duration) in
            var next = outage ?? StorageOutage(since: now, failures: 0, retryAt: .now)
            next.failures += 1
            let delay = Self.storageBackoff(failures: next.failures, interval: settings.interval)
            next.retryAt = ContinuousClock.now.advanced(by: delay)
            defer { outage = next }
            return (outage == nil, delay)
        }
        let seconds = Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18
        guard first else {
            logger.debug("the state directory is still full", metadata: ["retryIn": "\(seconds) s"])
            return
        }
        let problem = "the state directory is full (\(error.underlying ?? error.message)): pulls, merges and pushes paused, "
            + "nothing lost; trying again with a back-off"
        logger.error("state store full: work paused", metadata: ["error": "\(error)", "retryIn": "\(seconds) s"])
        observer?.storage(problem: problem)
        for peer in topology.peers {
            peerStates.withLock { $0[peer.name] = .backingOff }
            try? await store.recordSyncState(peer: peer.name, .backingOff, detail: "storage-full: " + problem, lagMilliseconds: nil)
        }
        await measure()
    }

    /// A write succeeded: ends an outage of the state directory, if there was one.
    func storageWritable() async {
        guard let outage = storageOutage.withLock({ outage in defer { outage = nil }; return outage }) else { return }
        let seconds = max(0, wallClock.nowMilliseconds() - outage.since) / 1000
        logger.notice("state store writable again: work resumed", metadata: ["pausedFor": "\(seconds) s", "failedWrites": "\(outage.failures)"])
        observer?.storage(problem: nil)
        wakeAll.notify()
        mergeSignal.notify()
        for signal in pushSignals.values { signal.notify() }
    }

    // MARK: Peer state

    func setState(_ peer: String, _ state: PeerSyncState, detail: String?, force: Bool = false) async {
        let changed = peerStates.withLock { states in
            defer { states[peer] = state }
            return states[peer] != state
        }
        guard changed || force || detail != nil && state != .syncing else { return }
        do {
            try await store.recordSyncState(peer: peer, state, detail: detail, lagMilliseconds: nil)
        } catch {
            // A full state directory is reported once, as an outage (storageFailed).
            logger.log(
                level: error.code == .storageFull ? .debug : .warning, "recording the peer state failed",
                metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    func recordFailure(_ peer: String, _ error: FHIRClientError) async {
        let unreachable = error.code == .transport
        let state: PeerSyncState = unreachable ? .unreachable : .backingOff
        let metadata: Logger.Metadata = ["peer": "\(peer)", "code": "\(error.code)", "status": "\(error.status.map(String.init) ?? "-")"]
        if peerStates.withLock({ $0[peer] }) != state {
            logger.warning("peer request failed", metadata: metadata)
        } else {
            logger.debug("peer request failed again", metadata: metadata)
        }
        await setState(peer, state, detail: error.description, force: false)
        lastContact.withLock { $0[peer] = nil }
        try? await store.recordContact(
            peer: peer, .failed(message: error.description, state: unreachable ? .disconnected : .failing))
    }

    func recordSuccess(_ peer: String, busy: Bool) async {
        let now = wallClock.nowMilliseconds()
        let due = lastContact.withLock { contacts -> Bool in
            if let last = contacts[peer], now - last < 10_000 { return false }
            contacts[peer] = now
            return true
        }
        if due { try? await store.recordContact(peer: peer, .succeeded) }
        if busy {
            await setState(peer, .syncing, detail: nil)
        } else if peerStates.withLock({ $0[peer] }) != .syncing {
            await setState(peer, .idle, detail: nil)
        }
    }

    /// Measures queues and lag per peer: updates metrics, the status line and the store's lag.
    func measure() async {
        guard let statuses = try? await store.status() else { return }
        let now = wallClock.nowMilliseconds()
        let hubQueue = statuses.first { $0.peer.name == topology.hub.name }
        var worstLag: Int64 = 0
        var depth = 0
        for status in statuses {
            depth += status.queueDepth
            var lag: Int64 = 0
            if status.peer.name != topology.hub.name {
                let pending = (try? await store.pendingInbox(peer: status.peer.name, limit: 1))?.first?.receivedAt
                let oldest = [pending, hubQueue?.oldestEnqueuedAt].compactMap { $0 }.min()
                lag = oldest.map { max(0, now - $0) } ?? 0
                worstLag = max(worstLag, lag)
                if lag != status.lagMilliseconds ?? -1 {
                    try? await store.recordSyncState(
                        peer: status.peer.name, peerStates.withLock { $0[status.peer.name] } ?? status.syncState,
                        detail: status.syncStateDetail, lagMilliseconds: lag)
                }
            }
            observer?.measured(
                peer: status.peer.name, queueDepth: status.queueDepth,
                oldestQueuedAge: .milliseconds(status.oldestEnqueuedAt.map { max(0, now - $0) } ?? 0),
                deadLetters: status.deadLetters, openConflicts: status.openConflicts, lag: .milliseconds(lag))
        }
        let refused = refusedPeers.withLock { $0.keys.sorted() }
        var line = "\(topology.peers.count - refused.count) peers syncing; queue depth \(depth); lag \(worstLag / 1000) s"
        if !refused.isEmpty { line += "; refused: \(refused.joined(separator: ", "))" }
        if let outage = storageOutage.withLock({ $0 }) {
            line += "; state store full for \(max(0, now - outage.since) / 1000) s, work paused"
        }
        status.withLock { $0 = line }
    }
}

/// Within one merge batch: the contexts of records already decided in the batch, as their commits will
/// leave them, found by the row's id at its peer or by any business identifier.
struct BatchOverlay {
    private var contexts: [GlobalKey: RecordContext] = [:]
    private var byKey: [GlobalKey: GlobalKey] = [:]
    private var byLocal: [String: GlobalKey] = [:]

    func context(for version: PreparedVersion, planner: InboundPlanner) -> RecordContext? {
        let record = version.item.record
        if let key = byLocal[Self.local(version.item.peer, record.resourceType, record.localID)] { return contexts[key] }
        for key in version.identity?.globalKeys ?? [] {
            if let record = byKey[key] { return contexts[record] }
        }
        return nil
    }

    private var onboarded: Set<String> = []

    /// Whether the row's peer already received the hub's records of its patient in this batch.
    func hasOnboarded(_ version: PreparedVersion) -> Bool {
        guard let patient = version.identity?.nhsNumber else { return false }
        return onboarded.contains(version.item.peer + "|" + patient.digits)
    }

    mutating func record(_ plan: InboundPlan, version: PreparedVersion, context: RecordContext) {
        if plan.kind != .quarantined, let patient = version.identity?.nhsNumber {
            onboarded.insert(version.item.peer + "|" + patient.digits)
        }
        guard let key = plan.recordKey else { return }
        let next = context.applying(plan)
        contexts[key] = next
        for alias in next.identity?.keys ?? plan.keys { byKey[alias] = key }
        for peer in next.identity?.peers ?? [] {
            byLocal[Self.local(peer.peer, key.resourceType, peer.localID)] = key
        }
        let record = version.item.record
        byLocal[Self.local(version.item.peer, record.resourceType, record.localID)] = key
    }

    private static func local(_ peer: String, _ type: ResourceType, _ id: String) -> String {
        "\(peer)|\(type.rawValue)|\(id)"
    }
}

/// Runs async sections one at a time, in arrival order.
final class SerialSection: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func run<T>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.busy else {
                    state.busy = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// A wake-up call tasks wait on, with a timeout. Each waiter is a ``Subscriber`` that remembers the
/// last call it saw, so a call made while it was busy is not lost.
final class EngineSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextToken: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    /// Wakes every waiter, and the next wait of every subscriber.
    func notify() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    var generation: UInt64 { state.withLock { $0.generation } }

    /// Waits until a call after `seen`, or `timeout` (`nil`: none), or at once when `done()` holds.
    func wait(after seen: UInt64, timeout: Duration?, until done: @Sendable () -> Bool) async {
        if done() { return }
        let token = state.withLock { state -> UInt64 in
            state.nextToken &+= 1
            return state.nextToken
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if state.generation != seen { return true }
                        state.waiters[token] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            if let timeout {
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    let waiter = self.state.withLock { $0.waiters.removeValue(forKey: token) }
                    waiter?.resume()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// A waiter that starts from the current call.
    func subscriber() -> Subscriber { Subscriber(signal: self, seen: generation) }

    /// Remembers the last call seen.
    final class Subscriber: Sendable {
        let signal: EngineSignal
        private let seen: Mutex<UInt64>

        init(signal: EngineSignal, seen: UInt64) {
            self.signal = signal
            self.seen = Mutex(seen)
        }

        /// Waits for a call not seen yet, `timeout`, or `done()`.
        func wait(timeout: Duration?, until done: @Sendable () -> Bool) async {
            let last = seen.withLock { $0 }
            let now = signal.generation
            if now != last {
                seen.withLock { $0 = now }
                return
            }
            await signal.wait(after: last, timeout: timeout, until: done)
            let current = signal.generation
            seen.withLock { $0 = current }
        }
    }
}
