import ControlPlane
import FaultProxy
import FlotillaProto
import Foundation
import GRPCCore
import LocalCluster
import Manifest
import NIOPosix
import Raft

/// A bench cluster whose every peer link runs through a ``LinkProxy`` (node A dials B through
/// the proxy of the link A→B), with the nodes' fault hooks on: the chaos suite's test bed.
///
/// Network faults act on real sockets between real processes: a cut starves the link's TCP
/// connections (bytes read and dropped, like a firewall DROP), a delay holds bytes back in the
/// proxy. Clients and agents reach the nodes directly (they are not partitioned).
struct ChaosCluster: Sendable {
    let bench: BenchCluster
    let proxies: [Link: LinkProxy]
    let group: MultiThreadedEventLoopGroup

    struct Link: Hashable, Sendable, CustomStringConvertible {
        var from: NodeID
        var to: NodeID
        var description: String { "n\(from)→n\(to)" }
    }

    var local: LocalCluster { bench.local }
    var config: ClusterConfig { bench.config }
    var nodeIDs: [NodeID] { config.nodes.map(\.id) }
    func address(_ id: NodeID) -> String { config.node(id)!.address }
    func zone(_ id: NodeID) -> String { config.node(id)!.zone }

    static let mechanism = "user-space TCP proxy per directed peer link on 127.0.0.1 (cut = bytes dropped, delay/jitter/loss = bytes held back)"

    /// Starts `nodes` nodes behind proxies in `dir` (emptied first), waits for a leader, then
    /// starts `agents` agents (a1...) spread over the zones.
    static func start(
        nodes: Int, agents: Int, dir: String, scheduler: SchedulerConfig, profile: ClusterConfig.Profile, seed: UInt64
    ) async throws -> ChaosCluster {
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let local = LocalCluster(dir: dir, executable: try flotillaExecutable(), faultHooks: true)
        // Proxies first (their ports are taken before the nodes' are chosen, so they cannot collide).
        var proxies: [Link: LinkProxy] = [:]
        for a in 1...nodes {
            for b in 1...nodes where a != b {
                let link = Link(from: NodeID(a), to: NodeID(b))
                proxies[link] = try await LinkProxy.start(name: link.description, targetPort: 0, seed: seed &+ UInt64(a * 31 + b), group: group)
            }
        }
        let config = try local.writeConfig(nodes: nodes, scheduler: scheduler, profile: profile)
        for (link, proxy) in proxies { proxy.retarget(port: config.node(link.to)!.peerPort) }
        // Each node's own configuration: its peers' peer ports are those of its outgoing proxies.
        for me in config.nodes {
            var own = config
            own.nodes = config.nodes.map { n in
                var n = n
                if n.id != me.id { n.peerPort = proxies[Link(from: me.id, to: n.id)]!.port }
                return n
            }
            try FileManager.default.createDirectory(atPath: local.nodeDir(me.id), withIntermediateDirectories: true)
            try own.yaml.write(toFile: local.nodeDir(me.id) + "/cluster.yaml", atomically: true, encoding: .utf8)
        }
        for n in config.nodes { _ = try local.start(n.id) }
        let cluster = ChaosCluster(bench: BenchCluster(local: local, config: config), proxies: proxies, group: group)
        guard try await cluster.bench.waitForLeader(seconds: 30) != nil else {
            await cluster.stop(purge: false)
            throw BenchError("the chaos cluster elected no leader in 30 s; see \(dir)/n*/node.log")
        }
        do {
            try await cluster.bench.startAgents((1...max(1, agents)).map { "a\($0)" })
        } catch {
            await cluster.stop(purge: false)
            throw error
        }
        return cluster
    }

    func stop(purge: Bool) async {
        // A stopped (SIGSTOP) process cannot handle SIGTERM: wake everything first.
        for id in nodeIDs { if let pid = local.pid(id) { kill(pid, SIGCONT) } }
        await bench.stop(purge: purge)
        for p in proxies.values { await p.stop() }
        try? await group.shutdownGracefully()
    }

    // MARK: Network faults

    func set(_ link: Link, _ fault: LinkFault) { proxies[link]?.set(fault) }

    /// Cuts every link from a node of `a` to a node of `b` (and back unless `oneWay`).
    func cut(_ a: Set<NodeID>, _ b: Set<NodeID>, oneWay: Bool = false) {
        for x in a { for y in b where x != y {
            set(Link(from: x, to: y), .cutOff)
            if !oneWay { set(Link(from: y, to: x), .cutOff) }
        } }
    }

    /// Every link clear (cuts healed, delays removed).
    func healNetwork() { for p in proxies.values { p.set(.none) } }

    /// Latency between nodes: `across` between zones, `inside` within one.
    func setLatency(across: LinkFault, inside: LinkFault) {
        for (link, proxy) in proxies { proxy.set(zone(link.from) == zone(link.to) ? inside : across) }
    }

    // MARK: Node and agent faults

    func setDiskFault(_ id: NodeID, _ fault: String) throws {
        try fault.write(toFile: local.diskFaultPath(id), atomically: true, encoding: .utf8)
    }

    func signal(_ id: NodeID, _ sig: Int32) throws {
        guard let pid = local.pid(id), processIsAlive(pid) else { throw BenchError("node \(id) is not running") }
        kill(pid, sig)
    }

    func signalAgent(_ id: String, _ sig: Int32) throws {
        guard let pid = local.agentPid(id), processIsAlive(pid) else { throw BenchError("agent \(id) is not running") }
        kill(pid, sig)
    }

    /// Heals everything and brings every node and agent back: the settle step before checking.
    func restoreAll() async throws {
        healNetwork()
        for id in nodeIDs {
            try? setDiskFault(id, "")
            if let pid = local.pid(id), processIsAlive(pid) { kill(pid, SIGCONT) } else { _ = try local.start(id) }
        }
        for a in local.agentIDs() where !local.isAgentRunning(a) { _ = try local.startAgent(a) }
    }

    /// The leader and term as the nodes report them now (the highest term's leader), if any.
    func currentLeader(_ client: ClusterClient, timeout: Duration = .milliseconds(300)) async -> (id: NodeID, term: UInt64)? {
        var best: (NodeID, UInt64)?
        for n in config.nodes {
            if let s = await client.status(of: n.address, timeout: timeout), s.role == "leader", s.term > (best?.1 ?? 0) {
                best = (s.id, s.term)
            }
        }
        return best
    }
}
