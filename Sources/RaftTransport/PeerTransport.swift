public import Raft

/// Carries Raft messages between nodes. A node hands it each `Ready`'s messages after they are
/// persisted; the receiving side passes a peer's messages to its node.
///
/// Contract: `send` never blocks the caller and never fails; a slow, dead or unknown peer's
/// messages may be dropped (Raft retransmits what matters), but messages to one peer keep their order.
public protocol PeerTransport: Sendable {
    func send(_ messages: [Message])
}
