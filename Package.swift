// swift-tools-version: 6.2
import PackageDescription

/// Settings every caresync target shares: strict concurrency (language mode 6) plus the upcoming
/// features that keep module boundaries honest.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "caresync",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "caresync", targets: ["caresync"]),
        .executable(name: "caresync-store", targets: ["caresync-store"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        // Already in the graph through swift-configuration's YAML trait; named here so the config loader
        // can walk the parsed YAML itself (unknown keys, key paths in errors).
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // FilePath, which swift-configuration's file providers take.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // MARK: C system libraries
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),

        // MARK: Pure core (no I/O)
        .target(name: "FHIRJSON", swiftSettings: strictSettings),
        .target(name: "FHIRModel", dependencies: ["FHIRJSON"], swiftSettings: strictSettings),
        .target(
            name: "MergeCore",
            dependencies: ["FHIRJSON", "FHIRModel"],
            // Sources/MergeCore/merge-policy.json is a symlink to Schemas/merge-policy.json, the single source.
            resources: [.embedInCode("merge-policy.json")],
            swiftSettings: strictSettings
        ),

        // MARK: I/O edges
        .target(
            name: "CaresyncHTTP",
            dependencies: ["CCurl", "COpenSSL"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "FHIRClient",
            dependencies: ["CaresyncHTTP", "FHIRJSON", "FHIRModel"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "StateStore",
            dependencies: [
                "FHIRModel", "COpenSSL",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Sync and the daemon
        .target(
            name: "SyncEngine",
            dependencies: [
                "FHIRClient", "MergeCore", "StateStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CaresyncDaemon",
            dependencies: [
                "SyncEngine", "CaresyncHTTP", "COpenSSL", "FHIRJSON", "FHIRModel", "FHIRClient", "MergeCore", "StateStore",
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CaresyncCLI",
            dependencies: [
                "CaresyncDaemon", "MergeCore", "SyncEngine", "StateStore", "FHIRClient", "FHIRModel", "FHIRJSON", "CaresyncHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "caresync",
            dependencies: ["CaresyncCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings
        ),

        // MARK: The FHIR store used as hub and provider stand-ins (links Hummingbird; caresync does not)
        .target(
            name: "FHIRStore",
            dependencies: [
                "FHIRJSON", "FHIRModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "caresync-store",
            dependencies: [
                "FHIRStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Benchmarks (`make bench`, release build)
        .executableTarget(
            name: "caresync-bench",
            dependencies: [
                "FHIRJSON", "FHIRModel", "MergeCore", "CaresyncHTTP", "StateStore",
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Reliability suite (`make reliability`; the short form runs in `swift test`)
        .target(
            name: "CaresyncReliability",
            dependencies: ["CaresyncHTTP", "FHIRJSON", "FHIRModel", "StateStore"],
            resources: [.embedInCode("hostile_peer.py")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "caresync-reliability",
            dependencies: ["CaresyncReliability"],
            swiftSettings: strictSettings
        ),

        // MARK: Tests
        .target(name: "CaresyncTestSupport", path: "Tests/CaresyncTestSupport", swiftSettings: strictSettings),
        .testTarget(name: "FHIRJSONTests", dependencies: ["FHIRJSON"], swiftSettings: strictSettings),
        .testTarget(name: "ArchitectureTests", dependencies: ["CaresyncTestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "FHIRModelTests", dependencies: ["FHIRModel", "FHIRJSON", "CaresyncTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ValidateCommandTests", dependencies: ["FHIRJSON", "CaresyncTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CaresyncHTTPTests",
            dependencies: ["CaresyncHTTP", "CaresyncTestSupport"],
            exclude: ["Servers"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MergeCoreTests",
            dependencies: [
                "MergeCore", "FHIRJSON", "FHIRModel", "CaresyncTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "StateStoreTests",
            dependencies: [
                "StateStore", "FHIRModel", "CaresyncTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // A writer process the StateStore tests kill with SIGKILL (test-only).
        .executableTarget(
            name: "statestore-crash-child",
            dependencies: ["StateStore", "FHIRModel"],
            path: "Tests/StateStoreCrashChild",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SyncEngineTests",
            dependencies: [
                "SyncEngine", "FHIRClient", "StateStore", "MergeCore", "FHIRJSON", "FHIRModel", "CaresyncHTTP",
                "CaresyncTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Servers"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OperatorCLITests",
            dependencies: [
                "StateStore", "FHIRModel", "FHIRJSON", "MergeCore", "FHIRClient", "CaresyncHTTP", "CaresyncTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Helpers"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CaresyncDaemonTests",
            dependencies: [
                "CaresyncDaemon", "CaresyncHTTP", "CaresyncTestSupport", "FHIRJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            exclude: ["Servers"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReliabilityTests",
            dependencies: ["CaresyncReliability", "CaresyncTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "FHIRStoreTests",
            dependencies: ["FHIRJSON", "FHIRModel", "CaresyncTestSupport"],
            exclude: ["Scripts"],
            swiftSettings: strictSettings
        ),
    ]
)
