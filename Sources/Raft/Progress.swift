/// What a leader knows about one follower's log, and how it is replicating to it
/// (the probe / replicate / snapshot states of etcd's `tracker.Progress`).
struct Progress: Sendable, Hashable {
    enum State: Sendable, Hashable {
        /// Unsure where the follower's log matches: one append at a time, then wait for an answer.
        case probe
        /// The follower's log is known to match: appends are pipelined, up to the in-flight bound.
        case replicate
        /// Entries the follower needs are compacted away: a snapshot is being sent to it.
        case snapshot(SnapshotTransfer)
    }

    struct SnapshotTransfer: Sendable, Hashable {
        var index: Index
        /// The offset of the chunk in flight (the follower's next expected offset).
        var offset: Int
        /// Ticks since the chunk in flight was sent; a chunk unanswered for long is sent again.
        var idleTicks = 0
    }

    /// The follower's log matches the leader's up to here.
    var match: Index = 0
    /// The next entry to send.
    var next: Index
    var state: State = .probe
    /// In probe state: an append is in flight, wait for its answer (or the next heartbeat).
    var probeSent = false
    /// Last indexes of the appends in flight, oldest first (replicate state).
    var inflights: [Index] = []
    /// Heard from since the last check-quorum round.
    var recentActive = false

    init(next: Index) { self.next = next }

    func isPaused(maxInflight: Int) -> Bool {
        switch state {
        case .probe: return probeSent
        case .replicate: return inflights.count >= maxInflight
        case .snapshot: return true
        }
    }

    mutating func becomeProbe() {
        if case .snapshot(let t) = state {
            next = max(match + 1, t.index + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflights.removeAll()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        inflights.removeAll()
    }

    mutating func becomeSnapshot(index: Index) {
        state = .snapshot(SnapshotTransfer(index: index, offset: 0))
        probeSent = false
        inflights.removeAll()
    }

    /// Records that the follower's log matches up to `index`. Returns false for a stale answer.
    mutating func update(match index: Index) -> Bool {
        var updated = false
        if index > match {
            match = index
            probeSent = false
            updated = true
        }
        next = max(next, index + 1)
        return updated
    }

    /// The follower rejected an append at `rejected`; `hint` is the leader's guess of the last
    /// matching index. Returns false if the rejection is stale.
    mutating func decrease(rejected: Index, hint: Index) -> Bool {
        if state == .replicate {
            if rejected <= match { return false }
            next = match + 1
            return true
        }
        if next == 0 || next - 1 != rejected { return false }
        next = max(min(rejected, hint + 1), match + 1)
        probeSent = false
        return true
    }

    mutating func freeInflights(upTo index: Index) {
        while let first = inflights.first, first <= index { inflights.removeFirst() }
    }
}
