public import Raft
public import RaftTransport
import Synchronization

/// Runtimes wired together in one process, with links a test can cut: the transport of
/// in-process tests (the network one is `GRPCPeerTransport`).
public final class InMemoryNetwork: Sendable {
    private struct State {
        var nodes: [NodeID: NodeRuntime] = [:]
        var cut: Set<Link> = []
    }
    private struct Link: Hashable { var from: NodeID, to: NodeID }

    private let state = Mutex(State())

    public init() {}

    /// The transport node `id` sends with.
    public var transport: some PeerTransport { Endpoint(network: self) }

    public func register(_ node: NodeRuntime) { state.withLock { $0.nodes[node.id] = node } }
    public func unregister(_ id: NodeID) { _ = state.withLock { $0.nodes.removeValue(forKey: id) } }

    /// Drops messages between `a` and `b`, both ways.
    public func cut(_ a: NodeID, _ b: NodeID) {
        state.withLock {
            $0.cut.insert(Link(from: a, to: b))
            $0.cut.insert(Link(from: b, to: a))
        }
    }

    /// Cuts `id` off from every other node.
    public func isolate(_ id: NodeID, from others: [NodeID]) { for o in others where o != id { cut(id, o) } }

    public func healAll() { state.withLock { $0.cut.removeAll() } }

    fileprivate func route(_ messages: [Message]) {
        var byNode: [NodeID: [Message]] = [:]
        let targets: [NodeID: NodeRuntime] = state.withLock { s in
            for m in messages where !s.cut.contains(Link(from: m.from, to: m.to)) { byNode[m.to, default: []].append(m) }
            return s.nodes.filter { byNode[$0.key] != nil }
        }
        for (id, node) in targets { node.deliver(byNode[id]!) }
    }

    private struct Endpoint: PeerTransport {
        let network: InMemoryNetwork
        func send(_ messages: [Message]) { network.route(messages) }
    }
}
