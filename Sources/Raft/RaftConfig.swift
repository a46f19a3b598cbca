/// How a node behaves. Time is counted in ticks: the shell calls ``RaftNode/tick()`` at a fixed
/// interval (e.g. every 10 ms on a LAN) and every timeout here is a number of ticks.
public struct RaftConfig: Sendable, Hashable {
    /// This node's id; never ``noNode``.
    public var id: NodeID
    /// A follower that hears no leader for a random number of ticks in
    /// `[electionTimeout, 2 × electionTimeout)` starts an election.
    public var electionTimeout: Int = 10
    /// A leader sends heartbeats every `heartbeatInterval` ticks. Must be below `electionTimeout`.
    public var heartbeatInterval: Int = 1
    /// Ask for a pre-vote before a real election, so that a node rejoining after a partition does
    /// not raise the term and depose a healthy leader.
    public var preVote: Bool = true
    /// A leader that has not heard from a majority within `electionTimeout` steps down; voters that
    /// heard from a leader within `electionTimeout` refuse to vote for anybody else.
    public var checkQuorum: Bool = true
    /// At most this many entries in one append message (batching).
    public var maxEntriesPerAppend: Int = 256
    /// At most this many bytes of entries in one append message (at least one entry is always sent).
    public var maxAppendBytes: Int = 1 << 20
    /// At most this many append messages in flight to one follower (pipelining).
    public var maxInflightAppends: Int = 64
    /// At most this many committed entries handed out in one ``Ready``.
    public var maxApplyBatch: Int = 4096
    /// Snapshots are sent in chunks of at most this many bytes.
    public var snapshotChunkSize: Int = 1 << 20
    /// At most this many proposals may wait uncommitted on a leader; further ones are refused with
    /// ``RaftError/proposalQueueFull`` so that a slow cluster pushes back instead of growing without bound.
    public var maxUncommittedEntries: Int = 1 << 16

    /// Deliberate protocol bugs, for tests that prove the simulator's checkers catch them. Never set
    /// outside tests.
    package var injectedBugs: Set<InjectedBug> = []

    public init(id: NodeID) { self.id = id }

    /// Checks the values make sense; the error names the field.
    public func validate() throws(RaftError) {
        func bad(_ field: String, _ why: String) -> RaftError { .invalidConfig(field: field, reason: why) }
        if id == noNode { throw bad("id", "must not be 0 (0 means \"no node\")") }
        if electionTimeout < 2 { throw bad("electionTimeout", "must be at least 2 ticks, got \(electionTimeout)") }
        if heartbeatInterval < 1 || heartbeatInterval >= electionTimeout {
            throw bad("heartbeatInterval", "must be at least 1 tick and below electionTimeout (\(electionTimeout)), got \(heartbeatInterval)")
        }
        if maxEntriesPerAppend < 1 { throw bad("maxEntriesPerAppend", "must be at least 1") }
        if maxAppendBytes < 1 { throw bad("maxAppendBytes", "must be at least 1") }
        if maxInflightAppends < 1 { throw bad("maxInflightAppends", "must be at least 1") }
        if maxApplyBatch < 1 { throw bad("maxApplyBatch", "must be at least 1") }
        if snapshotChunkSize < 1 { throw bad("snapshotChunkSize", "must be at least 1") }
        if maxUncommittedEntries < 1 { throw bad("maxUncommittedEntries", "must be at least 1") }
    }
}

/// Protocol bugs that tests switch on to show the simulator's checkers bite.
package enum InjectedBug: String, Sendable, Hashable, CaseIterable {
    /// A leader counts replicas of entries from earlier terms toward commitment (the Figure 8 trap).
    case commitPreviousTermEntries
    /// A voter grants its vote to every candidate of a term, not just the first.
    case voteTwicePerTerm
    /// A follower appends entries without checking that its log matches at `prevIndex`.
    case skipLogMatchingCheck
    /// A leader answers read-index requests at once, without confirming it still leads.
    case readWithoutQuorum
}
