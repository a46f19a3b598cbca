public import Raft
import Synchronization

/// Wraps a transport and cuts this node off from chosen peers, both ways: for tests of partitions
/// between real processes (`flotilla node --fault-file`). A real deployment never uses it.
public final class FaultInjectingTransport: PeerTransport {
    private let inner: any PeerTransport
    private let blocked = Mutex<Set<NodeID>>([])

    public init(wrapping inner: any PeerTransport) { self.inner = inner }

    /// Replaces the set of peers this node cannot reach nor hear from.
    public func block(_ peers: Set<NodeID>) { blocked.withLock { $0 = peers } }

    public func send(_ messages: [Message]) {
        let cut = blocked.withLock { $0 }
        inner.send(cut.isEmpty ? messages : messages.filter { !cut.contains($0.to) })
    }

    /// Drops inbound messages from blocked peers; returns what may be delivered.
    public func filterInbound(_ messages: [Message]) -> [Message] {
        let cut = blocked.withLock { $0 }
        return cut.isEmpty ? messages : messages.filter { !cut.contains($0.from) }
    }
}
