import ArgumentParser
import ControlPlane
import Manifest
import Foundation
import Raft

/// A cluster of `flotilla node` processes on 127.0.0.1 whose config, data and logs live in one
/// folder: `<dir>/cluster.yaml`, and for each node `<dir>/n<ID>/{data/, node.log, node.pid}`.
struct LocalCluster {
    static let defaultDirectory = "flotilla-cluster"
    let dir: String

    var configPath: String { dir + "/cluster.yaml" }
    func nodeDir(_ id: NodeID) -> String { "\(dir)/n\(id)" }
    func pidPath(_ id: NodeID) -> String { nodeDir(id) + "/node.pid" }
    func logPath(_ id: NodeID) -> String { nodeDir(id) + "/node.log" }

    /// Zones for `count` nodes: a majority in one cloud, the rest in another (3 | 2 for five nodes).
    static func zones(_ count: Int) -> [String] {
        (0..<count).map { $0 < count / 2 + 1 ? "aws-us-east-1" : "gcp-europe-west1" }
    }

    func writeConfig(nodes count: Int, scheduler: SchedulerConfig = SchedulerConfig()) throws -> ClusterConfig {
        let ports = try freePorts(count)
        let zones = Self.zones(count)
        let absolute = URL(fileURLWithPath: dir).standardizedFileURL.path
        let config = ClusterConfig(
            nodes: (1...count).map { k in
                ClusterConfig.Node(
                    id: NodeID(k), host: "127.0.0.1", port: ports[k - 1], zone: zones[k - 1],
                    dataDirectory: "\(absolute)/n\(k)/data")
            }, scheduler: scheduler)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try config.yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        return config
    }

    /// Test hook: `FLOTILLA_FAULT_FILES=1` makes every node watch `<dir>/n<ID>/faults` for peers
    /// to cut off (see `flotilla node --fault-file`).
    func extraNodeArguments(_ id: NodeID) -> [String] {
        ProcessInfo.processInfo.environment["FLOTILLA_FAULT_FILES"] == "1" ? ["--fault-file", nodeDir(id) + "/faults"] : []
    }

    func pid(_ id: NodeID) -> Int32? {
        guard let text = try? String(contentsOfFile: pidPath(id), encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func isRunning(_ id: NodeID) -> Bool { pid(id).map(processIsAlive) ?? false }

    /// Starts `flotilla node` for `id` in the background, its output appended to its log.
    func start(_ id: NodeID) throws -> Int32 {
        try FileManager.default.createDirectory(atPath: nodeDir(id), withIntermediateDirectories: true)
        let pid = try spawn(["node", "--id", String(id), "--config", configPath] + extraNodeArguments(id), log: logPath(id))
        try "\(pid)\n".write(toFile: pidPath(id), atomically: true, encoding: .utf8)
        return pid
    }

    /// Stops a node: SIGTERM (graceful: a leader hands over first), SIGKILL after `grace`.
    func stop(_ id: NodeID, grace: Duration = .seconds(5)) async -> Bool {
        await stopProcess(pidFile: pidPath(id), grace: grace)
    }

    // MARK: Agents: <dir>/agents/<ID>/{agent.log, agent.pid, zone, slots}

    func agentDir(_ id: String) -> String { "\(dir)/agents/\(id)" }
    func agentPidPath(_ id: String) -> String { agentDir(id) + "/agent.pid" }
    func agentLogPath(_ id: String) -> String { agentDir(id) + "/agent.log" }

    /// Agents this folder has started (running or not).
    func agentIDs() -> [String] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/agents")) ?? []
        return ids.sorted { ($0.count, $0) < ($1.count, $1) }
    }

    func agentPid(_ id: String) -> Int32? {
        guard let text = try? String(contentsOfFile: agentPidPath(id), encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func isAgentRunning(_ id: String) -> Bool { agentPid(id).map(processIsAlive) ?? false }

    /// Starts `flotilla agent` in the background (zone and slots remembered for restarts), with
    /// `OPENBLAS_CORETYPE` chosen for this CPU if OpenBLAS would otherwise fall back.
    func startAgent(_ id: String, zone: String? = nil, slots: Int? = nil, extraArguments: [String]? = nil) throws -> Int32 {
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

    func stopAgent(_ id: String, grace: Duration = .seconds(5)) async -> Bool {
        await stopProcess(pidFile: agentPidPath(id), grace: grace)
    }

    /// Runs this executable with `arguments` in the background, output appended to `log`.
    func spawn(_ arguments: [String], log path: String, environment: [String: String]? = nil) throws -> Int32 {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let log = FileHandle(forWritingAtPath: path) else { throw CLIError("cannot open \(path)") }
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: currentExecutable())
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
func stopProcess(pidFile: String, grace: Duration) async -> Bool {
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
func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(close, offsetBy: 2)] != "Z"
}

func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// Ports the kernel reports free on 127.0.0.1 right now.
func freePorts(_ count: Int) throws -> [Int] {
    var ports: [Int] = []
    var sockets: [Int32] = []
    defer { for s in sockets { close(s) } }
    for _ in 0..<count {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw CLIError("cannot create a socket to find a free port") }
        sockets.append(s)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, length) == 0 && getsockname(s, $0, &length) == 0 }
        }
        guard bound else { throw CLIError("cannot find a free port on 127.0.0.1") }
        ports.append(Int(UInt16(bigEndian: addr.sin_port)))
    }
    return ports
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Start, stop and repair a local cluster of node processes on 127.0.0.1.",
        subcommands: [Up.self, Down.self, RestartNode.self, RestartAgent.self])

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a local cluster: free ports, config, data and logs under --dir.")

        @Option(help: "How many nodes (3 or 5 are typical).")
        var nodes = 3

        @Option(help: "The cluster's folder; several clusters can run side by side in different folders.")
        var dir = LocalCluster.defaultDirectory

        @Option(help: "How many agents to start (a1, a2, ...), spread over the nodes' zones.")
        var agents = 0

        @Option(help: "Task slots per agent.")
        var slots = 1

        @Option(help: "Seconds between agent heartbeats.")
        var heartbeat: Double?

        @Option(help: "Seconds without a heartbeat before an agent is declared dead and its tasks re-queued.")
        var deadAfter: Double?

        @Option(help: ArgumentHelp("For tests: milliseconds every agent adds to each task.", visibility: .hidden))
        var agentDelayMs = 0

        func validate() throws {
            guard (1...9).contains(nodes) else { throw ValidationError("--nodes must be between 1 and 9") }
            guard (0...64).contains(agents) else { throw ValidationError("--agents must be between 0 and 64") }
            guard (1...1024).contains(slots) else { throw ValidationError("--slots must be between 1 and 1024") }
            if let heartbeat, !(0.01...60).contains(heartbeat) { throw ValidationError("--heartbeat must be between 0.01 and 60 seconds") }
            if let deadAfter, !(0.02...3600).contains(deadAfter) { throw ValidationError("--dead-after must be between 0.02 and 3600 seconds") }
        }

        func run() async throws {
            let cluster = LocalCluster(dir: dir)
            let existing = (1...9).map(NodeID.init).filter(cluster.isRunning)
            guard existing.isEmpty else {
                throw CLIError("a cluster is already running in \(dir) (nodes \(existing)); stop it with `flotilla cluster down --dir \(dir)`")
            }
            if let previous = try? loadClusterConfig(cluster.configPath), previous.nodes.count != nodes {
                throw CLIError(
                    "\(dir) holds a stopped cluster of \(previous.nodes.count) nodes and its data; start it again with --nodes \(previous.nodes.count), or delete it first with `flotilla cluster down --dir \(dir) --purge`")
            }
            var scheduler = SchedulerConfig()
            if let heartbeat { scheduler.heartbeatInterval = Millis(heartbeat * 1000) }
            if let deadAfter { scheduler.deadAfter = Millis(deadAfter * 1000) }
            if let problem = scheduler.problem { throw ValidationError(problem) }
            let config = try cluster.writeConfig(nodes: nodes, scheduler: scheduler)
            for n in config.nodes { _ = try cluster.start(n.id) }
            let leader = try await ClusterClient.withCluster(config.nodes.map(\.address)) { client -> UInt64? in
                let deadline = ContinuousClock.now.advanced(by: .seconds(15))
                while ContinuousClock.now < deadline {
                    for n in config.nodes {
                        if let s = await client.status(of: n.address, timeout: .milliseconds(300)), s.role == "leader" { return s.id }
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return nil
            }
            for n in config.nodes { print("node \(n.id): \(n.address) \(n.zone) pid \(cluster.pid(n.id).map(String.init) ?? "?")") }
            guard let leader else {
                throw CLIError("the nodes started but elected no leader within 15 s; see \(dir)/n*/node.log")
            }
            let zones = Array(Set(config.nodes.map(\.zone))).sorted()
            for k in 0..<agents {
                let id = "a\(k + 1)"
                let extra = agentDelayMs > 0 ? ["--inject-delay-ms", String(agentDelayMs)] : []
                let pid = try cluster.startAgent(id, zone: zones[k % zones.count], slots: slots, extraArguments: extra)
                print("agent \(id): \(zones[k % zones.count]), \(slots) slot\(slots == 1 ? "" : "s"), pid \(pid)")
            }
            print("cluster up in \(dir): \(nodes) nodes, leader node \(leader), \(agents) agent\(agents == 1 ? "" : "s"); config \(cluster.configPath)")
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop every node of a local cluster (SIGTERM, then SIGKILL after 5 s).")

        @Option(help: "The cluster's folder.")
        var dir = LocalCluster.defaultDirectory

        @Flag(help: "Also delete the folder (config, data and logs).")
        var purge = false

        func run() async throws {
            let cluster = LocalCluster(dir: dir)
            let config = try loadClusterConfig(cluster.configPath)
            await withTaskGroup(of: Void.self) { group in
                for a in cluster.agentIDs() { group.addTask { if await cluster.stopAgent(a) { print("agent \(a) stopped") } } }
            }
            await withTaskGroup(of: Void.self) { group in
                for n in config.nodes { group.addTask { if await cluster.stop(n.id) { print("node \(n.id) stopped") } } }
            }
            if purge { try FileManager.default.removeItem(atPath: dir) }
        }
    }

    struct RestartNode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restart-node", abstract: "Start again a node that was stopped or killed.")

        @Argument(help: "The node's id.")
        var id: UInt64

        @Option(help: "The cluster's folder.")
        var dir = LocalCluster.defaultDirectory

        func run() async throws {
            let cluster = LocalCluster(dir: dir)
            let config = try loadClusterConfig(cluster.configPath)
            guard config.node(id) != nil else { throw CLIError("no node \(id) in \(cluster.configPath)") }
            if cluster.isRunning(id) {
                print("node \(id) is already running (pid \(cluster.pid(id)!))")
                return
            }
            print("node \(id) started, pid \(try cluster.start(id))")
        }
    }

    struct RestartAgent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restart-agent", abstract: "Start again an agent that was stopped or killed (same zone and slots).")

        @Argument(help: "The agent's id (a1, a2, ...).")
        var id: String

        @Option(help: "The cluster's folder.")
        var dir = LocalCluster.defaultDirectory

        func run() async throws {
            let cluster = LocalCluster(dir: dir)
            guard cluster.agentIDs().contains(id) else {
                throw CLIError("no agent \(id) in \(dir)/agents (agents: \(cluster.agentIDs().joined(separator: ", ")))")
            }
            if cluster.isAgentRunning(id) {
                print("agent \(id) is already running (pid \(cluster.agentPid(id)!))")
                return
            }
            print("agent \(id) started, pid \(try cluster.startAgent(id))")
        }
    }
}
