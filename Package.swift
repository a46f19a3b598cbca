// swift-tools-version: 6.1
import PackageDescription

// Dependencies point one way: executables → Simulation → Raft. `Raft` imports only the standard
// library, so its tests build in seconds without any of the heavy packages later issues add.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Flotilla",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "flotilla", targets: ["flotilla"]),
        .executable(name: "bench", targets: ["bench"]),
        .library(name: "Raft", targets: ["Raft"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The consensus core: a pure, deterministic state machine. No dependencies, no I/O.
        .target(name: "Raft", swiftSettings: strictSettings),
        // Seeded simulated cluster (clock, network, disk, clients) and the safety checkers.
        .target(name: "Simulation", dependencies: ["Raft", "RaftStorage", "Manifest"], swiftSettings: strictSettings),
        // The durable LogStorage: a segmented write-ahead log and snapshot files, written with Glibc.
        .target(name: "RaftStorage", dependencies: ["Raft"], swiftSettings: strictSettings),
        // The Global Task Manifest: the deterministic replicated state machine of tasks, attempts and
        // agents, and the leader's pure scheduling decisions. Depends only on the core (for its codec).
        .target(name: "Manifest", dependencies: ["Raft"], swiftSettings: strictSettings),
        // OpenBLAS's C interface (Debian: libopenblas-dev).
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        // Compute kernels run by agents: seeded matrices, cblas_sgemm/dgemm, Freivalds verification.
        .target(name: "Kernels", dependencies: ["COpenBLAS"], swiftSettings: strictSettings),
        // bench's run store: runs, parameters, host facts and every raw sample in SQLite (GRDB),
        // with schema migrations and RFC 4180 CSV export.
        .target(
            name: "BenchStore", dependencies: [.product(name: "GRDB", package: "GRDB.swift")], swiftSettings: strictSettings),
        // bench's charts: gnuplot scripts and their data, rendered to PNG and SVG.
        .target(name: "BenchCharts", swiftSettings: strictSettings),
        // The chaos suite's history checker: client operations with invocation and completion
        // times, checked for lost, duplicated and stale results. Pure; no dependencies.
        .target(name: "ChaosCheck", swiftSettings: strictSettings),
        // Benchmark statistics (summaries, bootstrap CIs, comparisons, scaling fits). No dependencies.
        .target(name: "BenchStatistics", swiftSettings: strictSettings),
        // Code generated from Protos/flotilla.proto by scripts/generate-protos.sh (committed).
        .target(
            name: "FlotillaProto",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            swiftSettings: strictSettings),
        // Raft messages <-> their protobuf form, validated on the way in; the peer transports (length-
        // prefixed frames on SwiftNIO, and gRPC streams as the fallback).
        .target(
            name: "RaftTransport",
            dependencies: [
                "Raft", "FlotillaProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
        // A control-plane node: the core driven in real time with storage, transport, state machine.
        .target(
            name: "ControlPlane",
            dependencies: [
                "Raft", "RaftStorage", "RaftTransport", "FlotillaProto", "Manifest",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strictSettings),
        // A node agent: registers with the leader, heartbeats, runs assigned tasks, reports results.
        .target(
            name: "Agent",
            dependencies: [
                "Kernels", "Manifest", "FlotillaProto", "RaftTransport", "ControlPlane",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strictSettings),
        // The range and choice checks both executables' `validate()` make, with one message format.
        .target(
            name: "CommandLineChecks", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strictSettings),
        // Local clusters of node and agent processes in one folder (`flotilla cluster`, bench).
        // A TCP proxy per peer link whose cut, delay, jitter and loss the chaos suite changes at run
        // time: real sockets between real processes, in user space (this kernel has no netem).
        .target(
            name: "FaultProxy",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strictSettings),
        .target(name: "LocalCluster", dependencies: ["ControlPlane", "Manifest", "Kernels", "Raft"], swiftSettings: strictSettings),
        // Measures the peer transport candidates (gRPC client streams vs length-prefixed frames on
        // SwiftNIO) between two processes on loopback; docs/transport.md records the result.
        .executableTarget(
            name: "peer-transport-bench",
            dependencies: [
                "Raft", "RaftTransport", "FlotillaProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/PeerTransportBench",
            swiftSettings: strictSettings),
        .executableTarget(
            name: "flotilla",
            dependencies: [
                "Simulation", "Raft", "RaftStorage", "RaftTransport", "ControlPlane", "FlotillaProto",
                "Manifest", "Kernels", "Agent", "LocalCluster", "CommandLineChecks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // `bench`: starts a local cluster, drives it through the phases, stores, draws and compares.
        .executableTarget(
            name: "bench",
            dependencies: [
                "BenchStore", "BenchCharts", "BenchStatistics", "ControlPlane", "LocalCluster", "Kernels", "Manifest", "FlotillaProto",
                "FaultProxy", "ChaosCheck", "CommandLineChecks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strictSettings),
        // Fuzz targets: every place where bytes from outside enter a node, as a function that must
        // never trap; an in-process cluster serving the real services for the request target.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "ControlPlane", "RaftTransport", "RaftStorage", "Manifest", "Raft", "FlotillaProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
        // The fuzz targets as one program: libFuzzer's when built by `make fuzz` (-DFUZZING, which
        // supplies main), a seed writer and input replayer otherwise.
        .executableTarget(
            name: "flotilla-fuzz", dependencies: ["FuzzTargets"], swiftSettings: strictSettings + [.unsafeFlags(["-parse-as-library"])]),
        .testTarget(name: "RaftTests", dependencies: ["Raft"], swiftSettings: strictSettings),
        .testTarget(
            name: "SimulationTests", dependencies: ["Simulation", "Raft", "Manifest"], swiftSettings: strictSettings),
        .testTarget(
            name: "RaftStorageTests", dependencies: ["RaftStorage", "Raft"], swiftSettings: strictSettings),
        .testTarget(
            name: "RaftTransportTests",
            dependencies: [
                "RaftTransport", "FlotillaProto", "Raft",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
            ],
            swiftSettings: strictSettings),
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: [
                "ControlPlane", "RaftStorage", "Raft", "FlotillaProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strictSettings),
        // Real `flotilla` processes on 127.0.0.1 (needs the executable built: `swift test` builds it).
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "ControlPlane", "FlotillaProto", "BenchStore",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strictSettings),
        .testTarget(name: "ManifestTests", dependencies: ["Manifest", "Raft"], swiftSettings: strictSettings),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels"], swiftSettings: strictSettings),
        .testTarget(name: "ChaosCheckTests", dependencies: ["ChaosCheck"], swiftSettings: strictSettings),
        .testTarget(
            name: "FaultProxyTests",
            dependencies: ["FaultProxy", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strictSettings),
        .testTarget(name: "BenchStoreTests", dependencies: ["BenchStore"], swiftSettings: strictSettings),
        .testTarget(name: "BenchChartsTests", dependencies: ["BenchCharts"], swiftSettings: strictSettings),
        .testTarget(name: "BenchStatisticsTests", dependencies: ["BenchStatistics"], swiftSettings: strictSettings),
        // The fuzz targets over their corpora and kept crashes, and property tests of every request.
        .testTarget(
            name: "FuzzTests",
            dependencies: [
                "FuzzTargets", "ControlPlane", "Manifest", "Raft", "FlotillaProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings),
    ],
    swiftLanguageModes: [.v6]
)
