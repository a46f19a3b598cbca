// swift-tools-version: 6.1
import PackageDescription

// Micro-benchmarks of the `Raft` core, kept in a nested package so that the root package (and CI)
// never resolves or builds ordo-one/benchmark and its malloc interposer.
//
// Run from this directory:  swift package --disable-sandbox benchmark
let package = Package(
    name: "FlotillaBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Flotilla", path: ".."),
        // Only the "MallocInterposer" trait: jemalloc is not available here, and naming the traits
        // explicitly also drops the default "RuntimeInterposer" one (a package we do not have).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The benchmark plugin discovers executable targets whose sources are under Benchmarks/.
        .executableTarget(
            name: "RaftCore",
            dependencies: [
                .product(name: "Raft", package: "Flotilla"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/RaftCore",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
