import ArgumentParser
import ControlPlane
import Foundation
import LocalCluster
import Manifest
import Raft

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

        @Option(help: "Serve Prometheus metrics (GET /metrics): node N on port BASE+N-1. Off by default.")
        var metricsBasePort: Int?

        @Option(
            help: "How Raft messages travel between nodes: nio (frames on each node's peer port) or grpc (streams on the client port). Default: the folder's previous choice, else nio.",
            transform: { text in
                guard let kind = ClusterConfig.PeerTransportKind(rawValue: text) else {
                    throw ValidationError(
                        "--peer-transport must be one of \(ClusterConfig.PeerTransportKind.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
                }
                return kind
            })
        var peerTransport: ClusterConfig.PeerTransportKind?

        func validate() throws {
            try checkRange(nodes, "--nodes", localClusterNodes)
            try checkRange(agents, "--agents", 0...64)
            try checkRange(slots, "--slots", 1...1024)
            try checkRange(heartbeat, "--heartbeat", 0.01...60, unit: "seconds")
            try checkRange(deadAfter, "--dead-after", 0.02...3600, unit: "seconds")
            try checkRange(agentDelayMs, "--agent-delay-ms", 0...3_600_000)
            // Node N serves on BASE+N-1: the last node's port must exist too.
            try checkRange(metricsBasePort, "--metrics-base-port", 1...(65_536 - nodes), why: "node \(nodes) serves metrics on the base + \(nodes - 1)")
            if let problem = scheduler.problem {
                throw ValidationError("--heartbeat and --dead-after do not fit together: \(problem)")
            }
        }

        /// The leader's failure detection with --heartbeat and --dead-after (the defaults otherwise).
        var scheduler: SchedulerConfig {
            var scheduler = SchedulerConfig()
            if let heartbeat { scheduler.heartbeatInterval = Millis(heartbeat * 1000) }
            if let deadAfter { scheduler.deadAfter = Millis(deadAfter * 1000) }
            return scheduler
        }

        func run() async throws {
            let cluster = LocalCluster(dir: dir)
            let existing = localClusterNodes.map(NodeID.init).filter(cluster.isRunning)
            guard existing.isEmpty else {
                throw CLIError("a cluster is already running in \(dir) (nodes \(existing)); stop it with `flotilla cluster down --dir \(dir)`")
            }
            if let previous = try? loadClusterConfig(cluster.configPath), previous.nodes.count != nodes {
                throw CLIError(
                    "\(dir) holds a stopped cluster of \(previous.nodes.count) nodes and its data; start it again with --nodes \(previous.nodes.count), or delete it first with `flotilla cluster down --dir \(dir) --purge`")
            }
            let scheduler = self.scheduler
            let config = try cluster.writeConfig(nodes: nodes, scheduler: scheduler, peerTransport: peerTransport)
            for n in config.nodes {
                try cluster.setMetricsPort(n.id, metricsBasePort.map { $0 + Int(n.id) - 1 })
                _ = try cluster.start(n.id)
            }
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
            for n in config.nodes {
                let peers = config.peerTransport == .nio ? " (peers :\(n.peerPort))" : ""
                let metrics = cluster.metricsPort(n.id).map { " metrics http://\(n.host):\($0)/metrics" } ?? ""
                print("node \(n.id): \(n.address)\(peers) \(n.zone) pid \(cluster.pid(n.id).map(String.init) ?? "?")\(metrics)")
            }
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
            print(
                "cluster up in \(dir): \(nodes) nodes, leader node \(leader), \(agents) agent\(agents == 1 ? "" : "s"), peer transport \(config.peerTransport.rawValue); config \(cluster.configPath)")
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

        func validate() throws {
            try checkRange(id, "<id>", UInt64(localClusterNodes.lowerBound)...UInt64(localClusterNodes.upperBound))
        }

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
