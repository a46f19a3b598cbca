public import ControlPlane
import Foundation
import Kernels
public import Manifest
public import Raft

/// A local cluster could not be started or stopped, and why.
public struct LocalClusterError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A cluster of `flotilla node` processes on 127.0.0.1 whose config, data and logs live in one
/// folder: `<dir>/cluster.yaml`, and for each node `<dir>/n<ID>/{data/, node.log, node.pid}`.
public struct LocalCluster: Sendable {
    public static let defaultDirectory = "flotilla-cluster"
    public let dir: String
    /// The `flotilla` executable that runs nodes and agents.
    public let executable: String
    /// Start nodes with the test-only fault hooks: `<dir>/n<ID>/faults` (peers to cut off) and
    /// `<dir>/n<ID>/disk-faults` (a slow or failing disk). The chaos suite sets it.
    public var faultHooks: Bool

    /// - Parameter executable: the `flotilla` binary (default: this process's own executable).
    public init(dir: String, executable: String? = nil, faultHooks: Bool = false) {
        self.dir = dir
        self.executable = executable ?? currentExecutable()
        self.faultHooks = faultHooks
    }

    public var configPath: String { dir + "/cluster.yaml" }
    /// A node's own copy of the configuration, if it has one (the chaos suite writes one per node
    /// whose peers' ports are those of fault-injecting proxies); else the cluster's.
    public func nodeConfigPath(_ id: NodeID) -> String {
        let own = nodeDir(id) + "/cluster.yaml"
        return FileManager.default.fileExists(atPath: own) ? own : configPath
    }
    public func diskFaultPath(_ id: NodeID) -> String { nodeDir(id) + "/disk-faults" }
    public func nodeDir(_ id: NodeID) -> String { "\(dir)/n\(id)" }
    public func pidPath(_ id: NodeID) -> String { nodeDir(id) + "/node.pid" }
    public func logPath(_ id: NodeID) -> String { nodeDir(id) + "/node.log" }

    /// Zones for `count` nodes: a majority in one cloud, the rest in another (3 | 2 for five nodes).
    public static func zones(_ count: Int) -> [String] {
        (0..<count).map { $0 < count / 2 + 1 ? "aws-us-east-1" : "gcp-europe-west1" }
    }

    /// Writes `cluster.yaml` for `count` nodes on 127.0.0.1, each with two free ports (its address
    /// and its peer port). A folder's cluster keeps its `cluster_id` across restarts; a new folder
    /// gets a random one, so that nodes of two local clusters never talk to each other.
    ///
    /// - Parameter peerTransport: nil keeps the folder's previous choice (`nio` for a new folder).
    public func writeConfig(
        nodes count: Int, scheduler: SchedulerConfig = SchedulerConfig(), peerTransport: ClusterConfig.PeerTransportKind? = nil,
        profile: ClusterConfig.Profile = .lan
    ) throws -> ClusterConfig {
        let ports = try freePorts(2 * count)
        let zones = Self.zones(count)
        let absolute = URL(fileURLWithPath: dir).standardizedFileURL.path
        let previous = (try? String(contentsOfFile: configPath, encoding: .utf8)).flatMap { try? ClusterConfig.parse(yaml: $0) }
        let clusterID = previous?.clusterID ?? "local-" + String(UInt64.random(in: 0...UInt64(UInt32.max)), radix: 16)
        let config = ClusterConfig(
            clusterID: clusterID, peerTransport: peerTransport ?? previous?.peerTransport ?? .nio, profile: profile,
            nodes: (1...count).map { k in
                ClusterConfig.Node(
                    id: NodeID(k), host: "127.0.0.1", port: ports[2 * k - 2], peerPort: ports[2 * k - 1], zone: zones[k - 1],
                    dataDirectory: "\(absolute)/n\(k)/data")
            }, scheduler: scheduler)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try config.yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        return config
    }

    /// Test hooks: with ``faultHooks`` (or `FLOTILLA_FAULT_FILES=1`) every node watches
    /// `<dir>/n<ID>/faults` for peers to cut off and `<dir>/n<ID>/disk-faults` for disk faults
    /// (see `flotilla node --fault-file` and `--disk-fault-file`).
    public func extraNodeArguments(_ id: NodeID) -> [String] {
        var arguments: [String] = []
        if let port = metricsPort(id) { arguments += ["--metrics-port", String(port)] }
        guard faultHooks || ProcessInfo.processInfo.environment["FLOTILLA_FAULT_FILES"] == "1" else { return arguments }
        return arguments + ["--fault-file", nodeDir(id) + "/faults", "--disk-fault-file", diskFaultPath(id)]
    }

    /// The port node `id` serves Prometheus metrics on, kept in its folder so that a restarted
    /// node serves them again (`cluster up --metrics-base-port`); nil: none.
    public func metricsPort(_ id: NodeID) -> Int? {
        (try? String(contentsOfFile: nodeDir(id) + "/metrics_port", encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public func setMetricsPort(_ id: NodeID, _ port: Int?) throws {
        try FileManager.default.createDirectory(atPath: nodeDir(id), withIntermediateDirectories: true)
        let path = nodeDir(id) + "/metrics_port"
        if let port {
            try String(port).write(toFile: path, atomically: true, encoding: .utf8)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    public func pid(_ id: NodeID) -> Int32? {
        guard let text = try? String(contentsOfFile: pidPath(id), encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func isRunning(_ id: NodeID) -> Bool { pid(id).map(processIsAlive) ?? false }

    /// Starts `flotilla node` for `id` in the background, its output appended to its log.
    public func start(_ id: NodeID) throws -> Int32 {
        try FileManager.default.createDirectory(atPath: nodeDir(id), withIntermediateDirectories: true)
        let pid = try spawn(["node", "--id", String(id), "--config", nodeConfigPath(id)] + extraNodeArguments(id), log: logPath(id))
        try "\(pid)\n".write(toFile: pidPath(id), atomically: true, encoding: .utf8)
        return pid
    }

    /// Stops a node: SIGTERM (graceful: a leader hands over first), SIGKILL after `grace`.
    public func stop(_ id: NodeID, grace: Duration = .seconds(5)) async -> Bool {
        await stopProcess(pidFile: pidPath(id), grace: grace)
    }

    // MARK: Agents: <dir>/agents/<ID>/{agent.log, agent.pid, zone, slots}

    public func agentDir(_ id: String) -> String { "\(dir)/agents/\(id)" }
    public func agentPidPath(_ id: String) -> String { agentDir(id) + "/agent.pid" }
    public func agentLogPath(_ id: String) -> String { agentDir(id) + "/agent.log" }

    /// Agents this folder has started (running or not).
    public func agentIDs() -> [String] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/agents")) ?? []
        return ids.sorted { ($0.count, $0) < ($1.count, $1) }
    }

    public func agentPid(_ id: String) -> Int32? {
        guard let text = try? String(contentsOfFile: agentPidPath(id), encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func isAgentRunning(_ id: String) -> Bool { agentPid(id).map(processIsAlive) ?? false }

    /// Starts `flotilla agent` in the background (zone and slots remembered for restarts), with
    /// `OPENBLAS_CORETYPE` chosen for this CPU if OpenBLAS would otherwise fall back.
    public func startAgent(_ id: String, zone: String? = nil, slots: Int? = nil, extraArguments: [String]? = nil) throws -> Int32 {
        let folder = agentDir(id)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let extraArguments = extraArguments
            ?? (try? String(contentsOfFile: folder + "/arguments", encoding: .utf8))?.split(separator: " ").map(String.init) ?? []
        try extraArguments.joined(separator: " ").write(toFile: folder + "/arguments", atomically: true, encoding: .utf8)
        let zone = zone ?? (try? String(contentsOfFile: folder + "/zone", encoding: .utf8)) ?? "local"
        let slots = slots ?? Int((try? String(contentsOfFile: folder + "/slots", encoding: .utf8)) ?? "") ?? 1
        try zone.write(toFile: folder + "/zone", atomically: true, encoding: .utf8)
        try String(slots).write(toFile: folder + "/slots", atomically: true, encoding: .utf8)
        let args = ["agent", "--id", id, "--zone", zone, "--slots", String(slots), "--config", configPath] + extraArguments
        let pid = try spawn(args, log: agentLogPath(id), environment: agentEnvironment())
        try "\(pid)\n".write(toFile: agentPidPath(id), atomically: true, encoding: .utf8)
        return pid
    }

    public func stopAgent(_ id: String, grace: Duration = .seconds(5)) async -> Bool {
        await stopProcess(pidFile: agentPidPath(id), grace: grace)
    }

    /// Runs this executable with `arguments` in the background, output appended to `log`.
    public func spawn(_ arguments: [String], log path: String, environment: [String: String]? = nil) throws -> Int32 {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: path) else { throw LocalClusterError("cannot open \(path)") }
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        return process.processIdentifier
    }
}

/// SIGTERM, then SIGKILL after `grace`; removes the pid file. False if it was not running.
public func stopProcess(pidFile: String, grace: Duration) async -> Bool {
    guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
        let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), processIsAlive(pid)
    else { return false }
    kill(pid, SIGTERM)
    let deadline = ContinuousClock.now.advanced(by: grace)
    while processIsAlive(pid) && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    if processIsAlive(pid) { kill(pid, SIGKILL) }
    try? FileManager.default.removeItem(atPath: pidFile)
    return true
}

/// Alive and not a zombie (a container's init may never reap our orphans).
public func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(close, offsetBy: 2)] != "Z"
}

public func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Ports the kernel reports free on 127.0.0.1 right now.
public func freePorts(_ count: Int) throws -> [Int] {
    var ports: [Int] = []
    var sockets: [Int32] = []
    defer { for s in sockets { close(s) } }
    for _ in 0..<count {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw LocalClusterError("cannot create a socket to find a free port") }
        sockets.append(s)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, length) == 0 && getsockname(s, $0, &length) == 0 }
        }
        guard bound else { throw LocalClusterError("cannot find a free port on 127.0.0.1") }
        ports.append(Int(UInt16(bigEndian: addr.sin_port)))
    }
    return ports
}


/// The environment for an agent: `OPENBLAS_CORETYPE` chosen from the CPU's flags when OpenBLAS
/// would otherwise fall back to a generic kernel (unless the caller set it).
public func agentEnvironment() -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    if env["OPENBLAS_CORETYPE"] == nil, let coreType = OpenBLAS.recommendedCoreTypeIfFallingBack {
        env["OPENBLAS_CORETYPE"] = coreType
    }
    return env
}
