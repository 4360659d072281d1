import CaresyncTestSupport
import Foundation
import Testing

/// `Deploy/`: the unit checked by systemd's own analyser, the binary run under the kernel's versions of the
/// unit's sandboxing, and the install script run into a staging directory.
@Suite("Deployment")
struct DeploymentTests {
    static let unit = TestPaths.repositoryRoot.appendingPathComponent("Deploy/caresync.service")

    /// The unit with `ExecStart` pointing at the built binary (`verify` checks the command exists).
    func unitForBuiltBinary(in directory: TemporaryDirectory) throws -> String {
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        let binary = try TestPaths.product("caresync").path
        #expect(text.contains("ExecStart=/usr/local/bin/caresync daemon"))
        return try directory.write("caresync.service", text.replacingOccurrences(of: "/usr/local/bin/caresync", with: binary))
    }

    /// `nil` (and a printed reason) where systemd-analyze is absent.
    static func systemdAnalyze() -> String? {
        if let path = Tool.find("systemd-analyze") { return path }
        print("skipped: systemd-analyze is not installed (the Makefile's apt list brings it with the systemd package)")
        return nil
    }

    @Test("systemd-analyze verify accepts Deploy/caresync.service")
    func verify() async throws {
        guard let analyze = Self.systemdAnalyze() else { return }
        let directory = try TemporaryDirectory(prefix: "caresync-unit")
        defer { directory.remove() }
        let unit = try unitForBuiltBinary(in: directory)
        let result = try await Tool.run(analyze, ["verify", unit])
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(!result.errors.contains("caresync.service"), "warnings about the unit: \(result.errors)")
    }

    @Test("systemd-analyze security rates the unit's exposure at most 2.0")
    func exposure() async throws {
        guard let analyze = Self.systemdAnalyze() else { return }
        let directory = try TemporaryDirectory(prefix: "caresync-unit")
        defer { directory.remove() }
        let unit = try unitForBuiltBinary(in: directory)
        let result = try await Tool.run(analyze, ["security", "--offline=true", "--no-pager", unit])
        let line = try #require(result.output.split(separator: "\n").first { $0.contains("Overall exposure level") }, "\(result.output)\(result.errors)")
        let figure = try #require(line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) }, "\(line)")
        print("systemd-analyze security --offline=true: \(line.trimmingCharacters(in: .whitespaces))")
        #expect(figure <= 2.0, "\(result.output)")
        for setting in ["Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure", "StateDirectory=caresync", "RuntimeDirectory=", "ConfigurationDirectory=", "LoadCredential=", "DynamicUser=yes", "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"] {
            #expect(try String(contentsOf: Self.unit, encoding: .utf8).contains(setting), "\(setting)")
        }
    }

    /// Credentials and the example configuration, for running the real binary.
    func exampleEnvironment(_ directory: TemporaryDirectory) async throws -> [String: String] {
        await ["CREDENTIALS_DIRECTORY": try ConfigurationSchemaTests.exampleCredentials(in: directory).path]
    }

    @Test("the binary runs with writable-and-executable memory refused (MemoryDenyWriteExecute) and no new privileges")
    func memoryDenyWriteExecute() async throws {
        let directory = try TemporaryDirectory(prefix: "caresync-mdwe")
        defer { directory.remove() }
        let binary = try TestPaths.product("caresync").path
        // PR_SET_MDWE (65) with PR_MDWE_REFUSE_EXEC_GAIN: what the unit's seccomp filter enforces, done by the kernel;
        // PR_SET_NO_NEW_PRIVS (38). Both are inherited across execve.
        let script = """
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(65, 1, 0, 0, 0) != 0:
                print("skipped: this kernel has no PR_SET_MDWE (errno %d)" % ctypes.get_errno())
                sys.exit(0)
            if libc.prctl(38, 1, 0, 0, 0) != 0:
                sys.exit("PR_SET_NO_NEW_PRIVS failed")
            os.execv(sys.argv[1], sys.argv[1:])
            """
        let example = TestPaths.repositoryRoot.appendingPathComponent("Deploy/caresync.example.yaml").path
        let result = try await Tool.run(
            "python3", ["-c", script, binary, "check-config", "--config", example], environment: try exampleEnvironment(directory))
        if result.output.hasPrefix("skipped:") {
            print(result.output)
            return
        }
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output.contains("valid (3 peers)"))
    }

    @Test("the binary runs with only the process part of /proc visible (ProtectProc=invisible, ProcSubset=pid)")
    func procSubset() async throws {
        let directory = try TemporaryDirectory(prefix: "caresync-proc")
        defer { directory.remove() }
        guard getuid() == 0, let unshare = Tool.find("unshare") else {
            print("skipped: mounting a private /proc needs root and unshare")
            return
        }
        let binary = try TestPaths.product("caresync").path
        let example = TestPaths.repositoryRoot.appendingPathComponent("Deploy/caresync.example.yaml").path
        let command = "mount -t proc -o subset=pid,hidepid=invisible proc /proc || exit 77; test ! -e /proc/cpuinfo || exit 78; exec \"$0\" check-config --config \"$1\""
        let result = try await Tool.run(unshare, ["--mount", "--pid", "--fork", "sh", "-c", command, binary, example], environment: try exampleEnvironment(directory))
        if result.status == 77 || (result.status != 0 && result.errors.contains("unshare")) {
            print("skipped: cannot mount a private /proc here: \(result.errors)")
            return
        }
        #expect(result.status == 0, "\(result.output)\(result.errors)")
        #expect(result.output.contains("valid (3 peers)"))
    }

    @Test("install.sh lays out binary, unit, configuration and credentials under DESTDIR, and keeps an edited configuration")
    func install() async throws {
        let stage = try TemporaryDirectory(prefix: "caresync-install")
        defer { stage.remove() }
        let binary = try TestPaths.product("caresync").path
        let script = TestPaths.repositoryRoot.appendingPathComponent("Deploy/install.sh").path
        let environment = ["DESTDIR": stage.url.path, "PREFIX": "/usr"]
        let first = try await Tool.run(script, [binary], environment: environment)
        #expect(first.status == 0, "\(first.output)\(first.errors)")
        let root = stage.url.path
        let manager = FileManager.default
        #expect(manager.isExecutableFile(atPath: root + "/usr/bin/caresync"))
        let unit = try String(contentsOfFile: root + "/etc/systemd/system/caresync.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/bin/caresync daemon --config /etc/caresync/caresync.yaml"))
        #expect(unit.contains("Documentation=file:/usr/share/doc/caresync/operations.md"))
        #expect(manager.fileExists(atPath: root + "/etc/caresync/caresync.yaml"))
        #expect(manager.fileExists(atPath: root + "/usr/share/doc/caresync/operations.md"))
        #expect(manager.fileExists(atPath: root + "/usr/share/caresync/config.schema.json"))
        let credentials = try manager.attributesOfItem(atPath: root + "/etc/caresync/credentials")
        #expect((credentials[.posixPermissions] as? Int) == 0o700)

        try "# edited by the operator\n".write(toFile: root + "/etc/caresync/caresync.yaml", atomically: true, encoding: .utf8)
        let second = try await Tool.run(script, [binary], environment: environment)
        #expect(second.status == 0)
        #expect(second.output.contains("kept the existing /etc/caresync/caresync.yaml"))
        #expect(try String(contentsOfFile: root + "/etc/caresync/caresync.yaml", encoding: .utf8) == "# edited by the operator\n")

        let missing = try await Tool.run(script, ["/nonexistent/caresync"], environment: environment)
        #expect(missing.status == 2)
    }
}
