/// Everything the shell must do after the core changed: the output of ``RaftNode/ready()``.
///
/// The shell handles one `Ready` in this order, then calls ``RaftNode/advance(_:)`` with it:
/// 1. **Persist** `snapshot` (if any), then `entries`, then `hardState`, and make them durable
///    (fsync). `entries` may start at or below the last stored index: stored entries from that
///    index on are discarded first (a new leader overwrote them). A `snapshot` replaces the whole
///    stored log.
/// 2. **Send** `messages`. Only after step 1: a vote, an append acknowledgement or a snapshot
///    acknowledgement promises that something is on disk.
/// 3. **Apply** `snapshot` to the state machine (if any), then `committedEntries` in order.
///    Serve each of `readStates` once the state machine has applied its index.
///
/// Call ``RaftNode/ready()`` again only after ``RaftNode/advance(_:)``.
public struct Ready: Sendable, Hashable {
    /// Set when the role or the known leader changed. Nothing to persist.
    public var softState: SoftState?
    /// Set when term, vote or commit index changed.
    public var hardState: HardState?
    /// A snapshot received from the leader: persist it, then restore the state machine from it.
    public var snapshot: Snapshot?
    /// Log entries to persist.
    public var entries: [Entry] = []
    /// Committed entries to apply, in index order.
    public var committedEntries: [Entry] = []
    /// Messages to send once the rest is persisted.
    public var messages: [Message] = []
    /// Read requests now confirmed.
    public var readStates: [ReadState] = []

    public init() {}

    /// Whether anything must be written before `messages` are sent.
    public var mustPersist: Bool { hardState != nil || snapshot != nil || !entries.isEmpty }
}

/// A snapshot of a node's state for operators, tests and the simulator.
public struct Status: Sendable, Hashable {
    public struct Peer: Sendable, Hashable {
        public var id: NodeID
        public var match: Index
        public var next: Index
        public var state: String
        public var recentActive: Bool
    }

    public var id: NodeID
    public var role: Role
    public var term: Term
    public var vote: NodeID
    public var leader: NodeID
    public var commitIndex: Index
    public var appliedIndex: Index
    public var lastIndex: Index
    public var lastTerm: Term
    public var snapshotIndex: Index
    public var configuration: Configuration
    /// Filled on the leader only, sorted by id.
    public var peers: [Peer]
    public var leadTransferee: NodeID
}
