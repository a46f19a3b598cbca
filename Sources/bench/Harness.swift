import ControlPlane
import FlotillaProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Kernels
import LocalCluster
import Manifest

/// A failure of a bench run, with what to do about it.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The `flotilla` executable bench starts nodes and agents with: `$FLOTILLA_BIN`, or the one next
/// to this `bench` executable (both are products of the same package).
func flotillaExecutable() throws -> String {
    if let path = ProcessInfo.processInfo.environment["FLOTILLA_BIN"] { return path }
    let sibling = URL(fileURLWithPath: currentExecutable()).deletingLastPathComponent().appendingPathComponent("flotilla").path
    guard FileManager.default.isExecutableFile(atPath: sibling) else {
        throw BenchError("no flotilla executable next to bench (\(sibling)): build it with `swift build -c release` (or set FLOTILLA_BIN)")
    }
    return sibling
}

typealias TasksClient = Flotilla_V1_Tasks.Client<HTTP2ClientTransport.Posix>

/// A cluster of node and agent processes that a phase starts, drives and takes down.
struct BenchCluster {
    let local: LocalCluster
    let config: ClusterConfig
    var addresses: [String] { config.nodes.map(\.address) }

    /// Starts `nodes` nodes (and no agents) in `dir`, waits for a leader.
    static func start(nodes: Int, dir: String, scheduler: SchedulerConfig) async throws -> BenchCluster {
        try? FileManager.default.removeItem(atPath: dir)
        let local = LocalCluster(dir: dir, executable: try flotillaExecutable())
        let config = try local.writeConfig(nodes: nodes, scheduler: scheduler)
        for n in config.nodes { _ = try local.start(n.id) }
        let cluster = BenchCluster(local: local, config: config)
        guard try await cluster.waitForLeader(seconds: 20) != nil else {
            await cluster.stop(purge: false)
            throw BenchError("the cluster elected no leader in 20 s; see \(dir)/n*/node.log")
        }
        return cluster
    }

    /// Starts agents a<first>...; waits until the leader lists them live.
    func startAgents(_ ids: [String], slots: Int = 1, extraArguments: [String] = []) async throws {
        let zones = Array(Set(config.nodes.map(\.zone))).sorted()
        for (k, id) in ids.enumerated() {
            _ = try local.startAgent(id, zone: zones[k % zones.count], slots: slots, extraArguments: extraArguments)
        }
        try await waitForAgents(live: Set(ids), seconds: 30)
    }

    func stopAgents(_ ids: [String]) async {
        await withTaskGroup(of: Void.self) { group in
            for id in ids { group.addTask { _ = await local.stopAgent(id, grace: .seconds(2)) } }
        }
    }

    /// Stops everything; deletes the folder when `purge` (kept on failure, for its logs).
    func stop(purge: Bool) async {
        await stopAgents(local.agentIDs())
        await withTaskGroup(of: Void.self) { group in
            for n in config.nodes { group.addTask { _ = await local.stop(n.id, grace: .seconds(3)) } }
        }
        if purge { try? FileManager.default.removeItem(atPath: local.dir) }
    }

    func withClient<T: Sendable>(_ body: @Sendable (ClusterClient) async throws -> T) async throws -> T {
        try await ClusterClient.withCluster(addresses, timeout: .seconds(30), maxBackoff: .milliseconds(50), body)
    }

    /// The current leader's id and term, or nil if none is seen within `seconds`.
    func waitForLeader(seconds: Double, excluding: UInt64? = nil, newerThan term: UInt64 = 0) async throws -> (id: UInt64, term: UInt64)? {
        try await withClient { client in
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                for n in config.nodes where n.id != excluding {
                    if let s = await client.status(of: n.address, timeout: .milliseconds(200)), s.role == "leader", s.term > term {
                        return (s.id, s.term)
                    }
                }
                try await Task.sleep(for: .milliseconds(5))
            }
            return nil
        }
    }

    func waitForAgents(live ids: Set<String>, seconds: Double) async throws {
        try await withClient { client in
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let agents = try? await client.call(timeout: .seconds(2)) { try await TasksClient(wrapping: $0).listAgents(Flotilla_V1_ListAgentsRequest()) }
                let live = Set((agents?.agents ?? []).filter { $0.state == "live" && $0.lastHeartbeatMs > 0 }.map(\.id))
                if ids.isSubset(of: live) { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw BenchError("agents \(ids.sorted()) did not all register in \(seconds) s; see \(local.dir)/agents/*/agent.log")
        }
    }
}

extension ClusterClient {
    /// Submits `count` matmul tasks; returns the response (ids first ..< first+count).
    func submitMatmul(size: UInt32, count: UInt32 = 1, seed: UInt64 = 1, threads: UInt32 = 1, key: String = "") async throws -> Flotilla_V1_SubmitResponse {
        try await withSession { id, sequence in
            let request = matmulSubmitRequest(clientID: id, sequence: sequence, key: key, count: count, size: size, seed: seed, threads: threads)
            return try await call { try await TasksClient(wrapping: $0).submit(request) }
        }
    }

    /// Waits until the tasks are terminal (pushed by the node, no polling); returns them.
    func awaitTasks(_ ids: [UInt64], seconds: Double = 600) async throws -> [Flotilla_V1_Task] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let request = Flotilla_V1_AwaitTasksRequest.with {
                $0.ids = ids
                $0.timeoutMs = UInt64(max(1, min(30_000, deadline.timeIntervalSinceNow * 1000)))
            }
            let response = try await call(timeout: .seconds(60), hedged: false) { try await TasksClient(wrapping: $0).awaitTasks(request) }
            if response.complete { return response.tasks }
            if Date() >= deadline { throw BenchError("tasks did not finish within \(Int(seconds)) s") }
        }
    }

    func listTasks(after: UInt64 = 0, limit: UInt32 = 100_000) async throws -> Flotilla_V1_ListTasksResponse {
        let request = Flotilla_V1_ListTasksRequest.with {
            $0.afterID = after
            $0.limit = limit
        }
        return try await call { try await TasksClient(wrapping: $0).listTasks(request) }
    }
}

/// A submission of `count` matmul tasks (seeds `seed`, `seed`+1, ...) in one exactly-once session slot.
func matmulSubmitRequest(
    clientID: String, sequence: UInt64, key: String, count: UInt32 = 1, size: UInt32, seed: UInt64, threads: UInt32 = 1
) -> Flotilla_V1_SubmitRequest {
    .with {
        $0.clientID = clientID
        $0.sequence = sequence
        $0.key = key
        $0.count = count
        $0.spec = .with {
            $0.kind = "matmul"
            $0.size = size
            $0.seed = seed
            $0.threads = threads
        }
    }
}

/// Facts about the machine and build that every run records.
struct HostFacts: Sendable {
    var host: String
    var cpuModel: String
    var cores: Int
    var memoryBytes: UInt64
    var openBLASVersion: String
    var openBLASKernel: String
    var swiftVersion: String
    var gitCommit: String

    static func collect() -> HostFacts {
        HostFacts(
            host: ProcessInfo.processInfo.hostName,
            cpuModel: CPUInfo.modelName ?? "unknown",
            cores: CPUInfo.logicalCores,
            memoryBytes: ProcessInfo.processInfo.physicalMemory,
            openBLASVersion: OpenBLAS.configuration,
            openBLASKernel: OpenBLAS.coreName,
            swiftVersion: run(["swift", "--version"]).split(separator: "\n").first.map(String.init) ?? "unknown",
            gitCommit: gitCommit())
    }

    /// The commit of the checkout this bench was built from (its executable lives in .build/).
    static func gitCommit() -> String {
        let dir = URL(fileURLWithPath: currentExecutable()).deletingLastPathComponent().path
        let commit = run(["git", "-C", dir, "rev-parse", "--short", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !commit.isEmpty else { return "unknown" }
        let dirty = !run(["git", "-C", dir, "status", "--porcelain", "--untracked-files=no"]).isEmpty
        return commit + (dirty ? "-dirty" : "")
    }

    /// A command's standard output, or "" (never throws: facts are best effort).
    static func run(_ arguments: [String]) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : ""
    }
}

func millis(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) * 1000 + Double(c.attoseconds) / 1e15
}
