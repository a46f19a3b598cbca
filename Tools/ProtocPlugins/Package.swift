// swift-tools-version: 6.1
import PackageDescription

// Builds the two protoc plugins that scripts/generate-protos.sh runs:
//   protoc-gen-swift         (apple/swift-protobuf)       -> *.pb.swift   (messages)
//   protoc-gen-grpc-swift-2  (grpc/grpc-swift-protobuf)   -> *.grpc.swift (services, clients)
// Keep these versions in step with the root Package.swift: generated code must match its runtime.
// Build with `swift build -c release --product NAME`; the package has no targets of its own.
let package = Package(
    name: "ProtocPlugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: []
)
