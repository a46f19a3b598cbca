/// Where a node keeps what must survive a crash: hard state, log entries and the latest snapshot.
///
/// The core never calls storage itself: the shell persists each ``Ready`` through this protocol
/// before sending its messages, and hands ``load()``'s result to ``RaftNode/init(config:state:bootstrap:random:)``
/// on restart. ``MemoryStorage`` serves tests and the simulator; a durable implementation writes
/// and fsyncs files.
public protocol LogStorage {
    /// Everything persisted so far.
    func load() throws -> PersistentState

    /// Makes the durable part of `ready` durable, in this order: the snapshot (replacing the whole
    /// log), then the entries (discarding stored entries from the first one's index on), then the
    /// hard state. Returns only once all of it would survive a crash.
    mutating func persist(_ ready: Ready) throws

    /// Stores a snapshot the local state machine took and discards the entries it covers.
    mutating func compact(_ snapshot: Snapshot) throws
}

/// Storage in memory: what the simulator keeps of a node across a simulated crash.
public struct MemoryStorage: LogStorage, Sendable, Hashable {
    public private(set) var hardState = HardState()
    public private(set) var snapshot: Snapshot?
    public private(set) var entries: [Entry] = []

    public init() {}

    public func load() -> PersistentState {
        PersistentState(hardState: hardState, snapshot: snapshot, entries: entries)
    }

    public mutating func persist(_ ready: Ready) {
        if let s = ready.snapshot {
            snapshot = s
            entries = []
        }
        if let first = ready.entries.first {
            let base = (snapshot?.metadata.index ?? 0) + 1
            if first.index < base {
                // The snapshot already covers the first ones: store those after it, if any.
                let after = ready.entries.filter { $0.index >= base }
                if !after.isEmpty { entries = after }
            } else {
                let keep = Int(min(first.index - base, Index(entries.count)))
                entries.removeLast(entries.count - keep)
                entries.append(contentsOf: ready.entries)
            }
        }
        if let hs = ready.hardState { hardState = hs }
    }

    public mutating func compact(_ s: Snapshot) {
        let oldBase = (snapshot?.metadata.index ?? 0) + 1
        guard s.metadata.index >= oldBase else { return }
        let drop = min(Int(s.metadata.index - oldBase + 1), entries.count)
        entries.removeFirst(drop)
        snapshot = s
    }

    public var lastIndex: Index { entries.last?.index ?? snapshot?.metadata.index ?? 0 }
}
