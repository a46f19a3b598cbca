/// Identifies a node of the cluster. `0` is reserved for "none".
public typealias NodeID = UInt64
/// A Raft term. Terms start at 1; `0` means "before any term".
public typealias Term = UInt64
/// A log index. The first entry has index 1; `0` means "before the first entry".
public typealias Index = UInt64

/// The reserved id meaning "no node" (no vote cast, no leader known).
public let noNode: NodeID = 0

/// A log entry: what the leader appended at `index` in `term`.
public struct Entry: Sendable, Hashable {
    public enum Payload: Sendable, Hashable {
        /// The empty entry a new leader appends to commit the entries of earlier terms.
        case empty
        /// A command for the replicated state machine; its bytes are opaque to Raft.
        case command([UInt8])
        /// A new cluster configuration; it takes effect as soon as it is in a node's log.
        case configuration(Configuration)
    }

    public var term: Term
    public var index: Index
    public var payload: Payload

    public init(term: Term, index: Index, payload: Payload) {
        self.term = term
        self.index = index
        self.payload = payload
    }

    /// An approximate size in bytes, used to bound messages.
    public var byteCount: Int {
        switch payload {
        case .empty: return 16
        case .command(let bytes): return 16 + bytes.count
        case .configuration(let c): return 16 + 8 * c.voters.count
        }
    }
}

/// The part of a node's state that must be on stable storage before it answers any message.
public struct HardState: Sendable, Hashable {
    public var term: Term
    public var vote: NodeID
    public var commit: Index

    public init(term: Term = 0, vote: NodeID = noNode, commit: Index = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The set of voting members. Kept sorted so that every iteration over it is deterministic
/// (Swift's `Set` iteration order changes from one process to the next).
public struct Configuration: Sendable, Hashable, CustomStringConvertible {
    public private(set) var voters: [NodeID]

    public init<S: Sequence>(voters: S) where S.Element == NodeID {
        self.voters = Array(Set(voters).subtracting([noNode])).sorted()
    }

    public static let empty = Configuration(voters: [])

    public func contains(_ id: NodeID) -> Bool { voters.contains(id) }

    /// The number of votes (or acknowledgements) that make a majority of the voters.
    public var quorum: Int { voters.count / 2 + 1 }

    public func applying(_ change: ConfigurationChange) -> Configuration {
        switch change {
        case .addVoter(let id): return Configuration(voters: voters + [id])
        case .removeVoter(let id): return Configuration(voters: voters.filter { $0 != id })
        }
    }

    public var description: String { "{" + voters.map(String.init).joined(separator: ",") + "}" }
}

/// A membership change. Flotilla changes one server at a time (Raft dissertation §4.1): any two
/// consecutive configurations then share a majority, so no joint phase is needed.
public enum ConfigurationChange: Sendable, Hashable {
    case addVoter(NodeID)
    case removeVoter(NodeID)
}

/// Describes the state a snapshot captures: everything up to and including `index`.
public struct SnapshotMetadata: Sendable, Hashable {
    public var index: Index
    public var term: Term
    /// The configuration in force at `index`.
    public var configuration: Configuration

    public init(index: Index, term: Term, configuration: Configuration) {
        self.index = index
        self.term = term
        self.configuration = configuration
    }
}

/// A snapshot of the state machine; `data` is opaque to Raft.
public struct Snapshot: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}

/// What a node's storage hands back on restart.
public struct PersistentState: Sendable, Hashable {
    public var hardState: HardState
    /// The latest snapshot, if any; entries up to its index are gone from `entries`.
    public var snapshot: Snapshot?
    /// The log entries after the snapshot, contiguous and in order.
    public var entries: [Entry]

    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }
}

/// A node's role.
public enum Role: String, Sendable, Hashable {
    case follower, preCandidate, candidate, leader
}

/// The volatile state worth reporting when it changes.
public struct SoftState: Sendable, Hashable {
    public var role: Role
    public var leader: NodeID
}

/// A linearizable read the node may now serve: once the state machine has applied `index`, a read
/// of it reflects every write that completed before ``RaftNode/readIndex(requestID:)`` was called.
public struct ReadState: Sendable, Hashable {
    public var requestID: UInt64
    public var index: Index
}

/// The result of a proposal: where the entry was appended. The proposal succeeded if and only if
/// the entry applied at `index` has this `term` (a new leader may overwrite it otherwise).
public struct ProposalTicket: Sendable, Hashable {
    public var index: Index
    public var term: Term
}
