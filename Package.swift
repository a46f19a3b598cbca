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
        .library(name: "Raft", targets: ["Raft"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The consensus core: a pure, deterministic state machine. No dependencies, no I/O.
        .target(name: "Raft", swiftSettings: strictSettings),
        // Seeded simulated cluster (clock, network, disk, clients) and the safety checkers.
        .target(name: "Simulation", dependencies: ["Raft"], swiftSettings: strictSettings),
        // The durable LogStorage: a segmented write-ahead log and snapshot files, written with Glibc.
        .target(name: "RaftStorage", dependencies: ["Raft"], swiftSettings: strictSettings),
        .executableTarget(
            name: "flotilla",
            dependencies: [
                "Simulation",
                "Raft",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "RaftTests", dependencies: ["Raft"], swiftSettings: strictSettings),
        .testTarget(
            name: "SimulationTests", dependencies: ["Simulation", "Raft"], swiftSettings: strictSettings),
        .testTarget(
            name: "RaftStorageTests", dependencies: ["RaftStorage", "Raft"], swiftSettings: strictSettings),
    ],
    swiftLanguageModes: [.v6]
)
