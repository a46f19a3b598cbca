public import Raft

/// Why a membership change must not be made now (nil: it may), in the manner of etcd's strict
/// reconfiguration check: after the change, the voters that are up must still form a quorum of
/// the new configuration. `up` is the voters this leader heard from within an election timeout
/// (itself included); a node being added is not counted (it has yet to catch up, and may not even
/// be running). Pure: the node thread calls it with what it observed.
///
/// Without it, adding a voter that does not exist, or removing a live voter while another is down,
/// leaves a cluster that one more failure (or none) stops from committing anything.
public func membershipChangeProblem(_ change: ConfigurationChange, voters: Configuration, up: Set<NodeID>) -> String? {
    switch change {
    case .addVoter(let v) where voters.contains(v), .removeVoter(let v) where !voters.contains(v):
        return nil  // no change at all: the core says why
    default:
        break
    }
    let next = voters.applying(change)
    let upAfter = next.voters.filter { up.contains($0) && voters.contains($0) }
    guard upAfter.count < next.quorum else { return nil }
    let down = voters.voters.filter { !up.contains($0) }
    let what: String
    switch change {
    case .addVoter(let v): what = "with node \(v) added"
    case .removeVoter(let v): what = "with node \(v) removed"
    }
    return "\(what), the \(next.voters.count) voters would need \(next.quorum) up to commit, but only \(upAfter.count) are "
        + "(\(upAfter.map(String.init).joined(separator: ", "))); "
        + (down.isEmpty ? "wait until the cluster is healthy" : "bring node\(down.count > 1 ? "s" : "") \(down.map(String.init).joined(separator: ", ")) back first")
}
