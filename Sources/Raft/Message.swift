/// A message between two nodes. The shell delivers it to `to` with ``RaftNode/step(_:)``;
/// Raft tolerates loss, duplication, delay and reordering of messages.
public struct Message: Sendable, Hashable {
    public var from: NodeID
    public var to: NodeID
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    public var term: Term
    public var payload: Payload

    public init(from: NodeID, to: NodeID, term: Term, payload: Payload) {
        self.from = from
        self.to = to
        self.term = term
        self.payload = payload
    }

    public enum Payload: Sendable, Hashable {
        case voteRequest(VoteRequest)
        case voteResponse(VoteResponse)
        case append(AppendRequest)
        case appendResponse(AppendResponse)
        case heartbeat(Heartbeat)
        case heartbeatResponse(HeartbeatResponse)
        case snapshot(SnapshotChunk)
        case snapshotResponse(SnapshotResponse)
        /// Sent by a leader handing over leadership: campaign now, without pre-vote.
        case timeoutNow
        /// A follower asks the leader for a read index on behalf of one of its clients.
        case readIndex(requestID: UInt64)
        case readIndexResponse(requestID: UInt64, index: Index)
    }

    /// A short name for traces.
    public var kind: String {
        switch payload {
        case .voteRequest(let r): return r.preVote ? "PreVote" : "Vote"
        case .voteResponse(let r): return (r.preVote ? "PreVoteResp" : "VoteResp") + (r.granted ? "+" : "-")
        case .append(let a): return "App(\(a.prevIndex)/\(a.prevTerm)+\(a.entries.count),c\(a.commit))"
        case .appendResponse(let r): return r.success ? "AppOK(\(r.index))" : "AppRej(\(r.index),h\(r.hintIndex)/\(r.hintTerm))"
        case .heartbeat(let h): return "HB(c\(h.commit),r\(h.readRound))"
        case .heartbeatResponse(let h): return "HBResp(r\(h.readRound))"
        case .snapshot(let s): return "Snap(\(s.metadata.index)@\(s.offset)\(s.done ? ",done" : ""))"
        case .snapshotResponse(let s): return "SnapResp(\(s.accepted ? "ok" : "rej"),\(s.nextOffset)\(s.done ? ",done" : ""))"
        case .timeoutNow: return "TimeoutNow"
        case .readIndex(let id): return "ReadIndex(\(id))"
        case .readIndexResponse(let id, let index): return "ReadIndexResp(\(id),\(index))"
        }
    }
}

public struct VoteRequest: Sendable, Hashable {
    public var preVote: Bool
    public var lastIndex: Index
    public var lastTerm: Term
    /// Set when a leadership transfer asked for this election: voters ignore their leader lease.
    public var transfer: Bool
    public init(preVote: Bool, lastIndex: Index, lastTerm: Term, transfer: Bool) {
        self.preVote = preVote; self.lastIndex = lastIndex; self.lastTerm = lastTerm; self.transfer = transfer
    }
}

public struct VoteResponse: Sendable, Hashable {
    public var preVote: Bool
    public var granted: Bool
    public init(preVote: Bool, granted: Bool) { self.preVote = preVote; self.granted = granted }
}

public struct AppendRequest: Sendable, Hashable {
    public var prevIndex: Index
    public var prevTerm: Term
    public var entries: [Entry]
    public var commit: Index
    public init(prevIndex: Index, prevTerm: Term, entries: [Entry], commit: Index) {
        self.prevIndex = prevIndex; self.prevTerm = prevTerm; self.entries = entries; self.commit = commit
    }
}

public struct AppendResponse: Sendable, Hashable {
    public var success: Bool
    /// On success, the index up to which the follower's log matches the leader's.
    /// On rejection, the `prevIndex` of the rejected request.
    public var index: Index
    /// On rejection: the largest index at which the follower's log has a term ≤ `prevTerm` of the
    /// request, and that term, so the leader can skip a whole term of entries per round trip.
    public var hintIndex: Index
    public var hintTerm: Term
    public init(success: Bool, index: Index, hintIndex: Index = 0, hintTerm: Term = 0) {
        self.success = success; self.index = index; self.hintIndex = hintIndex; self.hintTerm = hintTerm
    }
}

public struct Heartbeat: Sendable, Hashable {
    public var commit: Index
    /// The leader's read round; echoed back, it confirms leadership for ReadIndex.
    public var readRound: UInt64
    public init(commit: Index, readRound: UInt64) { self.commit = commit; self.readRound = readRound }
}

public struct HeartbeatResponse: Sendable, Hashable {
    public var readRound: UInt64
    public init(readRound: UInt64) { self.readRound = readRound }
}

/// One chunk of a snapshot. Chunks are sent in order, one at a time; a follower that lost one asks
/// for its offset again.
public struct SnapshotChunk: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var totalSize: Int
    public var offset: Int
    public var data: [UInt8]
    public var done: Bool
    public init(metadata: SnapshotMetadata, totalSize: Int, offset: Int, data: [UInt8], done: Bool) {
        self.metadata = metadata; self.totalSize = totalSize; self.offset = offset; self.data = data; self.done = done
    }
}

public struct SnapshotResponse: Sendable, Hashable {
    public var snapshotIndex: Index
    /// False if the follower could not use the chunk (wrong offset); it then asks for `nextOffset`.
    public var accepted: Bool
    public var nextOffset: Int
    /// True once the whole snapshot is installed (or already covered); `matchIndex` then holds
    /// the index the follower's log now matches up to.
    public var done: Bool
    public var matchIndex: Index
    public init(snapshotIndex: Index, accepted: Bool, nextOffset: Int, done: Bool, matchIndex: Index) {
        self.snapshotIndex = snapshotIndex; self.accepted = accepted; self.nextOffset = nextOffset
        self.done = done; self.matchIndex = matchIndex
    }
}
