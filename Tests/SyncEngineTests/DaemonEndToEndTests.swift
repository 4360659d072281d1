import CaresyncHTTP
import CaresyncTestSupport
import FHIRJSON
import FHIRModel
import Foundation
import StateStore
import SyncEngine
import Testing

/// `caresync daemon` as systemd runs it: a real child process with a configuration file, `$NOTIFY_SOCKET`,
/// SIGKILL in the middle of a sync, a restart, and SIGTERM.
@Suite("caresync daemon end to end")
struct DaemonEndToEndTests {
    @Test("READY=1 after the store opens; killed mid-sync and restarted it converges with nothing lost or duplicated; SIGTERM drains and exits 0")
    func killedMidSyncConverges() async throws {
        let cluster = try await Cluster()
        let patients = Records.patients(400)
        try await seedInBatches(cluster, peer: "trust-a", patients: Array(patients[0..<200]), prefix: "A")
        try await seedInBatches(cluster, peer: "trust-b", patients: Array(patients[200..<400]) + [patients[0]], prefix: "B")
        let expected = (200 + 201) * 3
        let configuration = cluster.directory.path("caresync.yaml").path
        try writeConfiguration(cluster, to: configuration)

        let firstNotify = try NotifySocketListener()
        let first = try startDaemon(configuration, notify: firstNotify)
        try await firstNotify.wait { $0.contains { $0.contains("READY=1") } }
        #expect(FileManager.default.fileExists(atPath: cluster.stateDirectory + "/caresync.sqlite"), "READY=1 comes after the store opened")
        // Kill it once part of the records reached the hub.
        var atHub = 0
        while atHub < 150 {
            atHub = try await total(cluster.hub.port, .carePlan) + total(cluster.hub.port, .encounter)
            try await Task.sleep(for: .milliseconds(10))
        }
        first.send(SIGKILL)
        let killedStatus = try await first.waitForExit()
        #expect(killedStatus != 0)
        let partial = try await totalAll(cluster.hub.port)
        #expect(partial < expected, "the daemon was killed in the middle of the sync (\(partial) of \(expected) at the hub)")

        let secondNotify = try NotifySocketListener()
        let second = try startDaemon(configuration, notify: secondNotify)
        try await secondNotify.wait { $0.contains { $0.contains("READY=1") } }
        let deadline = ContinuousClock.now.advanced(by: .seconds(240))
        while ContinuousClock.now < deadline {
            let done = try await totalAll(cluster.hub.port) == expected
            if done, try await queuesEmpty(cluster) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        // Nothing lost, nothing created twice (counted by business identifier at the hub), all copies equal.
        #expect(try await totalAll(cluster.hub.port) == expected)
        let hub = try await cluster.recordsByIdentifier("hub")
        #expect(hub.count == expected)
        #expect(hub.values.allSatisfy { $0.count == 1 })
        try await cluster.expectConverged()

        second.send(SIGTERM)
        let status = try await second.waitForExit()
        #expect(status == 0, "stderr: \(second.errors.suffix(10))")
        try await secondNotify.wait { $0.contains { $0.contains("STOPPING=1") } }
        #expect(secondNotify.messages.contains { $0.contains("STATUS=") })
        // No NHS number reaches the logs.
        let logs = (first.errors + second.errors).joined(separator: "\n")
        #expect(!patients.contains { logs.contains($0.digits) })
    }

    @Test("SIGTERM while a push is in flight: the push finishes and is recorded, then the daemon exits 0")
    func sigtermDrainsInFlightPushes() async throws {
        let cluster = try await Cluster(providers: [("trust-a", "RA1", .readWrite)])
        let plans = try await Records.seed(cluster, peer: "trust-a", patients: Records.patients(2), prefix: "A")
        let configuration = cluster.directory.path("caresync.yaml").path
        try writeConfiguration(cluster, to: configuration)
        let notify = try NotifySocketListener()
        let daemon = try startDaemon(configuration, notify: notify)
        try await notify.wait { $0.contains { $0.contains("READY=1") } }
        while try await totalAll(cluster.hub.port) < 6 { try await Task.sleep(for: .milliseconds(20)) }

        // Every hub request now takes 1.5 s; a change at the trust makes a push that will be in flight.
        let slow = #"{"rate":1,"faults":["slow"],"seed":1,"slowDelayMs":1500}"#
        _ = try await HTTPClientHolder.shared.send(
            .init(method: .post, url: "http://127.0.0.1:\(cluster.hub.port)/_admin/faults", headers: ["Content-Type": "application/json"], body: Array(slow.utf8)))
        try await cluster.edit("trust-a", .carePlan, plans[0]) { plan in plan["description"] = "Sent while stopping." }
        var leased = false
        while !leased {
            let store = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
            leased = try await store.queue(peer: "hub", limit: 10).items.contains { $0.leaseExpiresAt != nil }
            store.close()
            try await Task.sleep(for: .milliseconds(10))
        }
        daemon.send(SIGTERM)
        let status = try await daemon.waitForExit()
        #expect(status == 0, "stderr: \(daemon.errors.suffix(10))")
        try await setFaults(port: cluster.hub.port, rate: 0, seed: 0)
        #expect(try await cluster.record("hub", .carePlan, plans[0])?["description"]?.stringValue == "Sent while stopping.")
        let store = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .writer)
        defer { store.close() }
        #expect(store.recovery.leasesReleased == 0, "no lease was left behind")
        #expect(try await store.queue(peer: "hub", limit: 1).depth == 0, "the push was recorded as done")
    }

    @Test("SIGUSR1 starts a pass at once and the daemon works through pending resync requests")
    func sigusr1ProcessesResyncRequests() async throws {
        let cluster = try await Cluster(providers: [("trust-a", "RA1", .readWrite)])
        let patients = Records.patients(2)
        try await Records.seed(cluster, peer: "trust-a", patients: [patients[0]], prefix: "A")
        let configuration = cluster.directory.path("caresync.yaml").path
        let metricsPort = try freePort()
        try writeConfiguration(cluster, to: configuration, interval: "1h", metricsPort: metricsPort)
        let notify = try NotifySocketListener()
        let daemon = try startDaemon(configuration, notify: notify)
        try await notify.wait { $0.contains { $0.contains("READY=1") } }
        while try await totalAll(cluster.hub.port) < 3 { try await Task.sleep(for: .milliseconds(20)) }

        // A new record the hourly cycle would not see for an hour; an operator asks for a resync.
        try await cluster.create("trust-a", Records.carePlan("trust-a", "CP-LATE", patient: patients[1]))
        let operatorStore = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .operator)
        let request = try await operatorStore.requestResync(peer: "trust-a", type: .carePlan, patient: nil, full: true, requestedBy: "tester")
        operatorStore.close()
        daemon.send(SIGUSR1)
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        var finished: ResyncRequest?
        while ContinuousClock.now < deadline {
            let reader = try SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader)
            finished = try await reader.resyncRequest(id: request)
            reader.close()
            if finished?.state.isFinished == true, try await cluster.record("hub", .carePlan, Records.carePlanSystem("trust-a") + "|CP-LATE") != nil {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(finished?.state == .completed)
        #expect(finished?.outcome?.contains("new version(s) read") == true, "\(finished?.outcome ?? "-")")
        #expect(try await cluster.record("hub", .carePlan, Records.carePlanSystem("trust-a") + "|CP-LATE") != nil)
        // The engine's work shows in /metrics.
        let metrics = String(
            decoding: try await HTTPClientHolder.shared.send(.init(url: "http://127.0.0.1:\(metricsPort)/metrics")).body, as: UTF8.self)
        #expect(metrics.contains(#"caresync_pushes_total{peer="hub",outcome="succeeded"}"#), "\(metrics.prefix(2000))")
        #expect(metrics.contains(#"caresync_pulled_records_total{peer="trust-a",type="CarePlan"}"#))
        #expect(metrics.contains("caresync_merge_duration_seconds"))
        #expect(metrics.contains(#"caresync_outbox_depth{peer="hub"}"#))
        daemon.send(SIGTERM)
        #expect(try await daemon.waitForExit() == 0)
    }

    func startDaemon(_ configuration: String, notify: NotifySocketListener) throws -> ChildProcess {
        try ChildProcess(
            executable: try TestPaths.product("caresync"), arguments: ["daemon", "--config", configuration],
            environment: ["NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "2000000", "JOURNAL_STREAM": "8:1"])
    }

    func writeConfiguration(_ cluster: Cluster, to path: String, interval: String = "500ms", metricsPort: Int? = nil) throws {
        let metrics = metricsPort.map { "enabled: true\n  listen: 127.0.0.1:\($0)" } ?? "enabled: false"
        var yaml = """
            state:
              path: \(cluster.stateDirectory)
            sync:
              interval: \(interval)
              pageSize: 100
              clockSkewMargin: 2s
            metrics:
              \(metrics)
            log:
              level: info
            hub:
              name: hub
              ods: QWE
              baseURL: \(cluster.hub.baseURL)
              auth:
                type: none
            providers:

            """
        for peer in cluster.topology.providers {
            yaml += """
                  - name: \(peer.name)
                    ods: \(peer.ods)
                    baseURL: \(peer.baseURL)
                    mode: read-write
                    auth:
                      type: none

                """
        }
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Seeds through 50-entry transaction Bundles (fast), the same records as ``Records/seed``.
    func seedInBatches(_ cluster: Cluster, peer: String, patients: [NHSNumber], prefix: String) async throws {
        var entries: [JSON] = []
        for (index, patient) in patients.enumerated() {
            let value = "\(prefix)-\(index)"
            for resource in [
                Records.carePlan(peer, "CP-" + value, patient: patient), Records.encounter(peer, "ENC-" + value, patient: patient),
                Records.relatedPerson(peer, "RP-" + value, patient: patient),
            ] {
                entries.append(["resource": resource, "request": ["method": "POST", "url": resource["resourceType"]!]])
            }
        }
        var start = 0
        while start < entries.count {
            let bundle: JSON = ["resourceType": "Bundle", "type": "transaction", "entry": .array(Array(entries[start..<min(start + 50, entries.count)]))]
            let response = try await cluster.http.send(
                .init(
                    method: .post, url: cluster.store(peer).baseURL, headers: ["Content-Type": "application/fhir+json"],
                    body: bundle.serialized()))
            try #require(response.status == 200)
            start += 50
        }
    }

    /// A loopback port nothing listens on now (bound and released).
    func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestFailure("cannot bind a port") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func total(_ port: Int, _ type: ResourceType) async throws -> Int {
        let response = try await HTTPClientHolder.shared.send(.init(url: "http://127.0.0.1:\(port)/fhir/\(type.rawValue)?_count=0"))
        return try JSON.parse(response.body)["total"]?.numberValue?.intValue ?? -1
    }

    func totalAll(_ port: Int) async throws -> Int {
        var sum = 0
        for type in ResourceType.synchronised { sum += try await total(port, type) }
        return sum
    }

    func queuesEmpty(_ cluster: Cluster) async throws -> Bool {
        guard let store = try? SQLiteStateStore.open(directory: cluster.stateDirectory, access: .reader) else { return false }
        defer { store.close() }
        let depth = try await store.queue(peer: nil, limit: 1).depth
        let pending = try await store.pendingInbox(peer: nil, limit: 1)
        return depth == 0 && pending.isEmpty
    }
}
