public import ControlPlane
import FlotillaProto
public import GRPCCore
import GRPCInProcessTransport
import Manifest
import Raft
import Synchronization

/// A small cluster in one process, serving the real gRPC services (`ControlPlane`, `Tasks`,
/// `Agents`) over gRPC's in-process transport: three real ``NodeRuntime``s on their own threads,
/// in-memory storage and network, each with its manifest and orchestrator. The request fuzz target
/// and the property tests send it whatever requests they make up.
///
/// Each node's state machine is wrapped in a check that records any command applied that is not a
/// well-formed command (``malformedCommandsApplied``): garbage must never reach the log.
public final class InProcessCluster: Sendable {
    public let size: Int
    private let network = InMemoryNetwork()
    private let nodes: [NodeRuntime]
    private let transports: [InProcessTransport]
    private let services: [[any RegistrableRPCService]]
    private let malformed = MalformedLog()
    private let orchestrators: [Orchestrator]
    private let running = Mutex<[Task<Void, Never>]>([])
    private let clients: [GRPCClient<InProcessTransport.Client>]

    public init(size: Int = 3) {
        self.size = size
        let ids = (1...NodeID(size)).map { $0 }
        let config = ClusterConfig(nodes: ids.map { ClusterConfig.Node(id: $0, host: "127.0.0.1", port: 7000 + Int($0), zone: "z", dataDirectory: "") })
        var nodes: [NodeRuntime] = []
        var services: [[any RegistrableRPCService]] = []
        var orchestrators: [Orchestrator] = []
        let malformed = self.malformed
        for id in ids {
            var options = config.nodeOptions(for: id)
            options.tickInterval = .milliseconds(5)
            options.requestTimeout = .seconds(2)
            options.slowSyncThreshold = nil
            let manifest = ManifestStore()
            let node = NodeRuntime(
                options: options, transport: network.transport, storage: { MemoryStorage() },
                stateMachine: { CheckedStateMachine(FlotillaStateMachine(manifest: manifest), malformed: malformed) })
            network.register(node)
            let orchestrator = Orchestrator(node: node, store: manifest, config: config.scheduler)
            nodes.append(node)
            orchestrators.append(orchestrator)
            services.append([
                ControlPlaneService(node: node, config: config), TasksService(orchestrator: orchestrator, config: config),
                AgentsService(orchestrator: orchestrator, config: config),
            ])
        }
        self.nodes = nodes
        self.orchestrators = orchestrators
        self.services = services
        transports = ids.map { _ in InProcessTransport() }
        clients = transports.map { GRPCClient(transport: $0.client) }
    }

    /// Starts the nodes, their servers and clients; returns once some node leads.
    public func start() async throws {
        var tasks: [Task<Void, Never>] = []
        for (k, node) in nodes.enumerated() {
            tasks.append(Task { try? await node.run() })
            let server = GRPCServer(transport: transports[k].server, services: services[k])
            tasks.append(Task { try? await server.serve() })
            let orchestrator = orchestrators[k]
            tasks.append(Task { await orchestrator.run() })
            let client = clients[k]
            tasks.append(Task { try? await client.runConnections() })
        }
        running.withLock { $0 = tasks }
        _ = try await leader()
    }

    /// The index of a node that reports itself leader (waits up to 30 s for one).
    public func leader() async throws -> Int {
        for _ in 0..<3000 {
            for (k, node) in nodes.enumerated() {
                if let s = try? await node.status(), s.role == .leader { return k }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw RPCError(code: .unavailable, message: "no leader in the in-process cluster within 30 s")
    }

    /// The gRPC client of node `k` (0-based).
    func client(_ k: Int) -> GRPCClient<InProcessTransport.Client> { clients[k % size] }

    /// Whether every node still answers `Status` (a trapped node takes the process with it; this
    /// catches a node thread that stopped).
    public func allNodesAnswer() async -> Bool {
        for node in nodes where (try? await node.status()) == nil { return false }
        return true
    }

    /// Commands some node applied that are not well-formed commands (should stay empty).
    public var malformedCommandsApplied: [String] { malformed.entries.withLock { $0 } }

    public func shutdown() async {
        for c in clients { c.beginGracefulShutdown() }
        for node in nodes { node.stop(transferLeadership: false) }
        let tasks = running.withLock { $0 }
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
    }
}

private final class MalformedLog: Sendable {
    let entries = Mutex<[String]>([])
}

/// A state machine that notes every command applied that does not pass the validation requests
/// get (a manifest command that does not decode, a key-value command that is malformed).
private struct CheckedStateMachine: ReplicatedStateMachine {
    var inner: FlotillaStateMachine
    let malformed: MalformedLog

    init(_ inner: FlotillaStateMachine, malformed: MalformedLog) {
        self.inner = inner
        self.malformed = malformed
    }

    mutating func apply(_ command: [UInt8], at index: Index) -> [UInt8] {
        if let tag = command.first, tag >= manifestCommandTagBase {
            if (try? ManifestCommand(decoding: command)) == nil {
                malformed.entries.withLock { $0.append("index \(index): undecodable manifest command") }
            }
        } else if let problem = KeyValueStore.problem(command) {
            malformed.entries.withLock { $0.append("index \(index): \(problem)") }
        }
        return inner.apply(command, at: index)
    }
    func query(_ query: [UInt8]) -> [UInt8] { inner.query(query) }
    func snapshot() -> [UInt8] { inner.snapshot() }
    mutating func restore(_ snapshot: [UInt8]) throws(StateMachineError) { try inner.restore(snapshot) }
}
