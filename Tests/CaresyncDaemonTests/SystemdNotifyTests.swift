import CaresyncDaemon
import CaresyncTestSupport
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Log lines written through ``CaresyncLogHandler`` into memory, to check what the daemon logs.
final class LogCollector: Sendable {
    private let lines = Mutex<[String]>([])

    /// A logger writing `format` lines here.
    func logger(label: String = "caresync.test", format: LogFormat = .journal, level: Logger.Level = .trace) -> Logger {
        Logger(label: label) { label in
            CaresyncLogHandler(label: label, format: format, output: LogOutput { line in self.lines.withLock { $0.append(line) } }, control: LogLevelControl(level))
        }
    }

    var all: [String] { lines.withLock { $0 } }
}

@Suite("sd_notify")
struct SystemdNotifyTests {
    @Test("READY and STATUS arrive in one datagram, on a path socket and on an abstract socket")
    func readyAndStatus() async throws {
        for abstract in [false, true] {
            let listener = try NotifySocketListener(abstract: abstract)
            defer { listener.stop() }
            let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": listener.address]))
            try notifier.notify(.ready, .status("queue 3, lag 2 s"))
            try notifier.notify(.status("two\nlines"))
            try await listener.wait { $0.count == 2 }
            #expect(listener.messages == ["READY=1\nSTATUS=queue 3, lag 2 s", "STATUS=two lines"], "abstract: \(abstract)")
        }
    }

    @Test("no NOTIFY_SOCKET, no notifier; WATCHDOG_USEC gives half its period, for this process only")
    func environment() {
        #expect(SystemdNotifier(environment: [:]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
        #expect(SystemdNotifier.watchdogPingInterval(environment: [:]) == nil)
        #expect(SystemdNotifier.watchdogPingInterval(environment: ["WATCHDOG_USEC": "30000000"]) == .seconds(15))
        #expect(SystemdNotifier.watchdogPingInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]) == .seconds(15))
        #expect(SystemdNotifier.watchdogPingInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid() + 1)"]) == nil)
        #expect(SystemdNotifier.watchdogPingInterval(environment: ["WATCHDOG_USEC": "soon"]) == nil)
    }

    @Test("a notifier aimed at a missing socket throws a clear error")
    func missingSocket() {
        let notifier = SystemdNotifier(socketPath: "/nonexistent/notify")
        #expect(performing: { try notifier.notify(.ready) }, throws: { "\($0)".contains("/nonexistent/notify") })
    }

    @Test("WATCHDOG=1 every half WATCHDOG_USEC while healthy, STATUS on change, STOPPING=1 at shutdown")
    func watchdogCadence() async throws {
        let listener = try NotifySocketListener()
        defer { listener.stop() }
        let environment = ["NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "200000"]
        let interval = try #require(SystemdNotifier.watchdogPingInterval(environment: environment))
        #expect(interval == .milliseconds(100))
        let depth = Atomic<Int>(0)
        let logs = LogCollector()
        let service = SystemdNotifyService(
            notifier: SystemdNotifier(environment: environment), watchdogInterval: interval, statusInterval: .milliseconds(20),
            health: { .healthy }, status: { "queue depth \(depth.load(ordering: .relaxed))" }, logger: logs.logger())
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                try await listener.wait { $0.filter { $0 == "WATCHDOG=1" }.count >= 5 }
                depth.store(7, ordering: .relaxed)
                try await listener.wait { $0.contains("STATUS=queue depth 7") }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        try await listener.wait { $0.contains("STOPPING=1") }
        let messages = listener.messages
        #expect(messages.last == "STOPPING=1")
        #expect(messages.filter { $0.hasPrefix("STATUS=") } == ["STATUS=queue depth 0", "STATUS=queue depth 7"], "a status is sent once per change")
        let pings = listener.timedMessages.filter { $0.message == "WATCHDOG=1" }.map(\.at)
        for (earlier, later) in zip(pings, pings.dropFirst()) {
            // Sleeps never end early: consecutive pings are at least one interval apart (less clock granularity).
            #expect(later - earlier >= interval - .milliseconds(5), "pings \(later - earlier) apart")
        }
    }

    @Test("no WATCHDOG=1 while the health probe reports a problem; pings resume when it clears")
    func unhealthyWithholdsPings() async throws {
        let listener = try NotifySocketListener()
        defer { listener.stop() }
        let health = HealthMonitor()
        health.fail("sync", reason: "state store is read-only")
        let samples = Atomic<Int>(0)
        let logs = LogCollector()
        let service = SystemdNotifyService(
            notifier: SystemdNotifier(socketPath: listener.address), watchdogInterval: .milliseconds(20), statusInterval: .milliseconds(20),
            health: { health.check() },
            status: {
                samples.add(1, ordering: .relaxed)
                return nil
            }, logger: logs.logger())
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                // Each status sample follows a health check in the same pass of the loop.
                while samples.load(ordering: .relaxed) < 6 { try await Task.sleep(for: .milliseconds(5)) }
                #expect(!listener.messages.contains("WATCHDOG=1"))
                #expect(logs.all.contains { $0.hasPrefix("<3>caresync.test: unhealthy; withholding watchdog pings") && $0.contains("state store is read-only") })
                health.recover("sync")
                try await listener.wait { $0.contains("WATCHDOG=1") }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(logs.all.contains { $0.contains("healthy again") })
    }

    @Test("a degraded condition (a full state directory) keeps the watchdog pinging: a restart would not cure it")
    func degradedKeepsPinging() async throws {
        let listener = try NotifySocketListener()
        defer { listener.stop() }
        let health = HealthMonitor()
        health.degrade("state-store", reason: "the state directory is full")
        #expect(health.check().isHealthy)
        #expect(health.check().degraded == ["state-store: the state directory is full"])
        let service = SystemdNotifyService(
            notifier: SystemdNotifier(socketPath: listener.address), watchdogInterval: .milliseconds(20), statusInterval: .milliseconds(20),
            health: { health.check() }, status: { nil }, logger: LogCollector().logger())
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                try await listener.wait { $0.contains("WATCHDOG=1") }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test("heartbeats: a component that stops beating is reported stalled")
    func heartbeats() async throws {
        let health = HealthMonitor()
        #expect(health.check().isHealthy)
        health.heartbeat("sync.hub", deadline: .milliseconds(30))
        health.heartbeat("outbox", deadline: .seconds(3600))
        #expect(health.check().isHealthy)
        try await Task.sleep(for: .milliseconds(60))
        let status = health.check()
        #expect(status.problems.count == 1)
        #expect(status.problems.first?.hasPrefix("sync.hub: no heartbeat") == true)
        health.heartbeat("sync.hub", deadline: .seconds(3600))
        #expect(health.check().isHealthy)
        health.remove("sync.hub")
        health.fail("outbox", reason: "disk full")
        #expect(health.check().problems == ["outbox: disk full"])
    }
}

@Suite("Configuration reload", .serialized)
struct ConfigurationReloadTests {
    final class Harness: Sendable {
        let fixture: ConfigurationFixture
        let path: String
        let listener: NotifySocketListener
        let logs = LogCollector()
        let applied = Mutex<[CaresyncConfiguration]>([])

        init() async throws {
            fixture = try await ConfigurationFixture()
            path = try fixture.directory.write("caresync.yaml", ConfigurationFixture.minimal)
            listener = try NotifySocketListener()
        }

        func service(failing: Bool = false) async throws -> ConfigurationReloadService {
            let loader = ConfigurationLoader(filePath: path, environment: fixture.environment())
            let initial = try await loader.load()
            return ConfigurationReloadService(
                initial: initial, loader: loader, notifier: SystemdNotifier(socketPath: listener.address), logger: logs.logger()
            ) { [self] configuration in
                if failing { throw CancellationError() }
                self.applied.withLock { $0.append(configuration) }
            }
        }
    }

    @Test("a valid new file is applied between RELOADING=1 and READY=1")
    func applied() async throws {
        let harness = try await Harness()
        defer { harness.fixture.directory.remove() }
        let service = try await harness.service()
        try harness.fixture.directory.write("caresync.yaml", ConfigurationFixture.minimal + "\nsync: {interval: 5s}\nlog: {level: debug}\n")
        let outcome = await service.reload()
        guard case .applied(let configuration) = outcome else {
            Issue.record("outcome \(outcome)")
            return
        }
        #expect(configuration.sync.interval == .seconds(5))
        #expect(service.current.log.level == .debug)
        #expect(harness.applied.withLock { $0.map(\.sync.interval) } == [.seconds(5)])
        try await harness.listener.wait { $0.count == 2 }
        let messages = harness.listener.messages
        #expect(messages[0].hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        #expect(messages[1] == "READY=1\nSTATUS=configuration reloaded")
        #expect(await service.reload().isUnchanged)
    }

    @Test("an invalid new file is refused, the running configuration kept, and every problem logged")
    func refused() async throws {
        let harness = try await Harness()
        defer { harness.fixture.directory.remove() }
        let service = try await harness.service()
        let before = service.current
        try harness.fixture.directory.write(
            "caresync.yaml", ConfigurationFixture.minimal.replacingOccurrences(of: "http://localhost:8081", with: "http://10.1.1.1") + "\nsync: {pageSize: 0}\n")
        let outcome = await service.reload()
        guard case .refused(let error) = outcome else {
            Issue.record("outcome \(outcome)")
            return
        }
        #expect(error.problems.count == 2)
        #expect(service.current == before)
        #expect(harness.applied.withLock { $0.isEmpty })
        let line = try #require(harness.logs.all.first { $0.contains("configuration reload refused") })
        #expect(line.hasPrefix("<3>"))
        #expect(line.contains("providers[0].baseURL: plain http is only allowed to loopback addresses"))
        #expect(line.contains("sync.pageSize"))
        try await harness.listener.wait { $0.count == 2 }
        #expect(harness.listener.messages[1] == "READY=1\nSTATUS=reload refused (2 problems); running configuration kept")
    }

    @Test("a hook that throws keeps the running configuration")
    func hookFails() async throws {
        let harness = try await Harness()
        defer { harness.fixture.directory.remove() }
        let service = try await harness.service(failing: true)
        let before = service.current
        try harness.fixture.directory.write("caresync.yaml", ConfigurationFixture.minimal + "\nsync: {interval: 5s}\n")
        guard case .failed = await service.reload() else {
            Issue.record("the reload did not fail")
            return
        }
        #expect(service.current == before)
    }

    @Test("SIGHUP triggers a reload")
    func hangup() async throws {
        let harness = try await Harness()
        defer { harness.fixture.directory.remove() }
        let service = try await harness.service()
        try harness.fixture.directory.write("caresync.yaml", ConfigurationFixture.minimal + "\nsync: {interval: 7s}\n")
        // Until run() traps SIGHUP, its default action would end the test process: ignore it, unless an
        // earlier trap in this process installed libdispatch's handler, which must then stay in place.
        var current = sigaction()
        sigaction(SIGHUP, nil, &current)
        if current.__sigaction_handler.sa_handler == nil { signal(SIGHUP, SIG_IGN) }
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup { group in
                group.addTask { try await service.run() }
                // The trap is set once run() starts; until then SIGHUP is ignored, so keep sending.
                let deadline = ContinuousClock.now.advanced(by: .seconds(60))
                while harness.applied.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
                    kill(getpid(), SIGHUP)
                    try await Task.sleep(for: .milliseconds(50))
                }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(service.current.sync.interval == .seconds(7))
    }
}

extension ConfigurationReloadService.Outcome {
    var isUnchanged: Bool {
        if case .unchanged = self { return true }
        return false
    }
}

/// A stand-in for the sync engine (a later issue): reports ready, beats while it runs, and on shutdown
/// drains only after checking that systemd was already told STOPPING=1.
final class StandInEngine: Service, Sendable {
    let operations: OperationalServices
    let listener: NotifySocketListener
    let stoppingSeenBeforeDrain = Atomic<Bool>(false)

    init(operations: OperationalServices, listener: NotifySocketListener) {
        self.operations = operations
        self.listener = listener
    }

    func run() async throws {
        try operations.notifier?.notify(.ready, .status("synced"))
        await withGracefulShutdownHandler {
            while !Task.isShuttingDownGracefully {
                operations.health.heartbeat("sync", deadline: .seconds(3600))
                try? await Task.sleep(for: .milliseconds(10))
            }
        } onGracefulShutdown: {}
        // Draining: the notifier, last in the group, was told first.
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while !listener.messages.contains("STOPPING=1") && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        stoppingSeenBeforeDrain.store(listener.messages.contains("STOPPING=1"), ordering: .relaxed)
        operations.metrics.recordPush(peer: "hub", .succeeded)
    }
}

@Suite("Operational services")
struct OperationalServicesTests {
    @Test("in a ServiceGroup: READY from the engine, watchdog pings, /metrics served, STOPPING=1 before the engine drains")
    func serviceGroup() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let path = try fixture.directory.write("caresync.yaml", ConfigurationFixture.minimal + "\nmetrics: {listen: 127.0.0.1:0}\n")
        let loader = ConfigurationLoader(filePath: path, environment: fixture.environment())
        let configuration = try await loader.load()
        let listener = try NotifySocketListener()
        defer { listener.stop() }
        let logs = LogCollector()
        let level = LogLevelControl(.info)
        // Reloads on request here: signals are process-wide, and SIGHUP is the reload suite's to send.
        let (requests, requester) = AsyncStream<Void>.makeStream()
        let operations = try OperationalServices(
            configuration: configuration, loader: loader, environment: ["NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "100000"],
            registry: PrometheusCollectorRegistry(), logLevel: level, logger: logs.logger(), reloadTrigger: .requests(requests),
            status: { "queue 0" }, apply: { _ in })
        let engine = StandInEngine(operations: operations, listener: listener)
        let services = operations.services(around: [engine])
        #expect(services.count == 4)
        #expect(try await operations.tokens.provider(for: "hub")?.accessToken() == nil, "auth none sends no Authorization header")
        #expect(services.last is SystemdNotifyService)
        let group = ServiceGroup(configuration: .init(services: services, logger: logs.logger()))
        try await withThrowingTaskGroup { tasks in
            tasks.addTask { try await group.run() }
            try await listener.wait { $0.contains("READY=1\nSTATUS=synced") && $0.filter { $0 == "WATCHDOG=1" }.count >= 2 }
            let port = try #require(operations.metricsServer?.boundAddress.port)
            #expect(try await RawHTTPResponse.get(port: port, path: "/healthz").status == 200)

            try fixture.directory.write("caresync.yaml", ConfigurationFixture.minimal + "\nmetrics: {listen: 127.0.0.1:0}\nlog: {level: debug}\n")
            requester.yield()
            while level.level != .debug { try await Task.sleep(for: .milliseconds(5)) }
            #expect(operations.reload.current.log.level == .debug)
            let scrape = try await RawHTTPResponse.get(port: port, path: "/metrics")
            #expect(scrape.body.contains(#"caresync_config_reloads_total{outcome="applied"} 1"#))

            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let stoppingSeen = engine.stoppingSeenBeforeDrain.load(ordering: .relaxed)
        #expect(stoppingSeen)
        #expect(listener.messages.last == "STOPPING=1")
    }

    @Test("a reload re-reads bearer token files; when the engine refuses the new configuration the tokens stay as they were")
    func tokensFollowReloads() async throws {
        let fixture = try await ConfigurationFixture()
        defer { fixture.directory.remove() }
        let base = ConfigurationFixture.minimal.replacingOccurrences(
            of: "    mode: read-write\n    auth: {type: none}", with: "    mode: read-write\n    auth: {type: bearer, tokenFile: credentials/northfield-token}")
        #expect(base != ConfigurationFixture.minimal)
        let path = try fixture.directory.write("caresync.yaml", base + "\nmetrics: {enabled: false}\n")
        let loader = ConfigurationLoader(filePath: path, environment: fixture.environment())
        // Reloads are called directly here; the services never run.
        let operations = try OperationalServices(
            configuration: try await loader.load(), loader: loader, environment: [:], registry: PrometheusCollectorRegistry(),
            logger: LogCollector().logger()
        ) { next in
            if next.sync.interval == .seconds(5) { throw CancellationError() }
        }
        #expect(operations.metricsServer == nil)
        let tokenFile = fixture.directory.path("credentials/northfield-token")
        #expect(try await operations.tokens.provider(for: "p1")?.accessToken()?.value == ConfigurationFixture.token)

        try "rotated-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        try fixture.directory.write("caresync.yaml", base + "\nmetrics: {enabled: false}\nsync: {interval: 5s}\n")
        guard case .failed = await operations.reload.reload() else {
            Issue.record("the engine's refusal was not reported")
            return
        }
        #expect(try await operations.tokens.provider(for: "p1")?.accessToken()?.value == ConfigurationFixture.token)

        try fixture.directory.write("caresync.yaml", base + "\nmetrics: {enabled: false}\nsync: {interval: 10s}\n")
        guard case .applied = await operations.reload.reload() else {
            Issue.record("the reload was not applied")
            return
        }
        #expect(try await operations.tokens.provider(for: "p1")?.accessToken()?.value == "rotated-token")
    }
}
