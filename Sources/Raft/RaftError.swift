/// Why the core refused a request. Each case says what the caller should do.
public enum RaftError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Only the leader accepts this; retry on `leader` (``noNode`` when no leader is known yet: retry later).
    case notLeader(leader: NodeID)
    /// The leader is handing leadership to another node; retry on the new leader shortly.
    case transferInProgress(to: NodeID)
    /// A membership change is still uncommitted, or this leader has not yet committed an entry of
    /// its own term; retry once it has.
    case configurationChangePending
    /// The change makes no difference (adding a present voter, removing an absent one), or would
    /// leave the cluster without voters.
    case invalidConfigurationChange(String)
    /// Leadership cannot be transferred to this node (itself, or not a voter).
    case invalidTransferTarget(NodeID)
    /// Too many proposals wait uncommitted; slow down and retry.
    case proposalQueueFull
    /// The snapshot index is not applied yet, or is already covered by an older snapshot.
    case invalidCompaction(String)
    /// A configuration value is wrong; `field` names it.
    case invalidConfig(field: String, reason: String)
    /// The persisted state handed to the node is inconsistent (e.g. a gap in the log).
    case corruptState(String)

    public var description: String {
        switch self {
        case .notLeader(let l): return l == noNode ? "not the leader, and no leader is known yet: retry later" : "not the leader: retry on node \(l)"
        case .transferInProgress(let t): return "leadership is being transferred to node \(t): retry on it shortly"
        case .configurationChangePending: return "a membership change (or the new leader's first entry) is not committed yet: retry shortly"
        case .invalidConfigurationChange(let why): return "invalid membership change: \(why)"
        case .invalidTransferTarget(let t): return "cannot transfer leadership to node \(t): it must be another voter"
        case .proposalQueueFull: return "too many uncommitted proposals: slow down and retry"
        case .invalidCompaction(let why): return "cannot compact: \(why)"
        case .invalidConfig(let field, let reason): return "invalid Raft configuration: \(field) \(reason)"
        case .corruptState(let why): return "persisted Raft state is inconsistent: \(why)"
        }
    }
}
