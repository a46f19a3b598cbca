import Raft

/// Watches every step of a simulated cluster and reports the first broken Raft property
/// (Raft paper, Figure 3), plus linearizability of the reads the cluster served.
///
/// It is separate from the nodes and trusts nothing they claim about each other: it keeps its own
/// record of every leader, every persisted entry and every applied entry.
struct SafetyChecker {
    private struct LogKey: Hashable {
        var index: Index
        var term: Term
    }

    private(set) var violation: Violation?
    var now: UInt64 = 0

    /// Election safety: the one leader of each term.
    private var leaderOfTerm: [Term: NodeID] = [:]
    /// Log matching: every (index, term) ever persisted by any node, with its payload and the term
    /// of the entry before it. If all nodes agree on these, logs that share an entry share the
    /// whole prefix before it (by induction on the index).
    private var persisted: [LogKey: (payload: Entry.Payload, prevTerm: Term?)] = [:]
    /// State-machine safety: the one entry applied at each index (`applied[i-1]`), and the
    /// state-machine digest after it.
    private(set) var applied: [Entry] = []
    private(set) var digests: [UInt64] = []
    /// Leader completeness: the term of the leader that first committed each index.
    private var commitTerms: [Term] = []
    /// What each node was at its last observation.
    private var lastRole: [NodeID: (role: Role, term: Term)] = [:]

    private mutating func fail(_ p: Violation.Property, _ detail: String) {
        if violation == nil { violation = Violation(property: p, timeMicros: now, detail: detail) }
    }

    /// The digest a state machine holds after applying `applied[0..<index]`.
    func digest(at index: Index) -> UInt64? {
        if index == 0 { return SimStateMachine.initialDigest }
        return index <= Index(digests.count) ? digests[Int(index - 1)] : nil
    }

    var appliedCount: Index { Index(applied.count) }

    /// Before `node` persists `ready`.
    mutating func willPersist(_ ready: Ready, node: RaftNode, storedLastIndex: Index) {
        guard let first = ready.entries.first else { return }
        if let last = lastRole[node.id], last.role == .leader, node.role == .leader, last.term == node.term,
            first.index <= storedLastIndex
        {
            fail(.leaderAppendOnly, "leader \(node.id) of term \(node.term) overwrote its log from index \(first.index) (stored up to \(storedLastIndex))")
        }
        var prevTerm = node.term(at: first.index - 1)
        for e in ready.entries {
            let key = LogKey(index: e.index, term: e.term)
            if let known = persisted[key] {
                if known.payload != e.payload {
                    fail(.logMatching, "node \(node.id) stored a different entry at index \(e.index) term \(e.term) than another node")
                } else if let p = prevTerm, let kp = known.prevTerm, p != kp {
                    fail(.logMatching, "node \(node.id) has entry \(e.index)/\(e.term) after an entry of term \(p), another node after one of term \(kp)")
                }
                if known.prevTerm == nil, let p = prevTerm { persisted[key] = (known.payload, p) }
            } else {
                persisted[key] = (e.payload, prevTerm)
            }
            prevTerm = e.term
        }
    }

    /// `node` applied `entry`; `digest` is its state machine's digest afterwards.
    mutating func didApply(_ entry: Entry, node: NodeID, digest: UInt64) {
        let i = entry.index
        if i <= appliedCount {
            let known = applied[Int(i - 1)]
            if known.term != entry.term || known.payload != entry.payload {
                fail(.stateMachineSafety, "node \(node) applied entry \(i) of term \(entry.term), another node applied one of term \(known.term) there")
            } else if digests[Int(i - 1)] != digest {
                fail(.stateMachineSafety, "node \(node)'s state after index \(i) differs from another node's")
            }
        } else if i == appliedCount + 1 {
            applied.append(entry)
            digests.append(digest)
        } else {
            fail(.stateMachineSafety, "node \(node) applied index \(i) while no node ever applied index \(appliedCount + 1)")
        }
    }

    /// `node` restored its state machine from a snapshot at `index`.
    mutating func didRestore(index: Index, digest: UInt64, node: NodeID) {
        guard let expected = self.digest(at: index) else {
            fail(.stateMachineSafety, "node \(node) installed a snapshot at index \(index), beyond anything applied anywhere (\(appliedCount))")
            return
        }
        if expected != digest {
            fail(.stateMachineSafety, "node \(node) installed a snapshot at index \(index) whose state differs from the applied history")
        }
    }

    /// After `node` handled an input and its `Ready`s.
    mutating func didStep(_ node: RaftNode) {
        let id = node.id
        let previous = lastRole[id]
        lastRole[id] = (node.role, node.term)
        guard node.role == .leader else { return }
        if let other = leaderOfTerm[node.term], other != id {
            fail(.electionSafety, "nodes \(other) and \(id) were both leader in term \(node.term)")
        }
        leaderOfTerm[node.term] = id
        if previous?.role != .leader || previous?.term != node.term {
            checkCompleteness(newLeader: node)
        }
        // Record who committed what, for later completeness checks.
        var mark = Index(commitTerms.count)
        while mark < node.commitIndex {
            commitTerms.append(node.term)
            mark += 1
        }
    }

    var leadersElected: Int { leaderOfTerm.count }

    /// Leader completeness: a new leader of term T holds every entry committed in a term before T.
    private mutating func checkCompleteness(newLeader node: RaftNode) {
        var i = Index(commitTerms.count)
        while i > 0 && commitTerms[Int(i - 1)] >= node.term { i -= 1 }
        guard i > 0, i <= appliedCount else { return }
        let committed = applied[Int(i - 1)]
        if i > node.lastIndex {
            fail(.leaderCompleteness, "node \(node.id) became leader of term \(node.term) with a log ending at \(node.lastIndex), missing committed entry \(i)")
        } else if let t = node.term(at: i), t != committed.term {
            fail(.leaderCompleteness, "node \(node.id) became leader of term \(node.term) with entry \(i) of term \(t), but the committed one is of term \(committed.term)")
        }
    }

    /// A read was served from a state machine at `index` with `digest`; `watermark` is the
    /// highest index of a write acknowledged before the read was invoked.
    mutating func didServeRead(node: NodeID, index: Index, digest: UInt64, watermark: Index, invokedAt: UInt64) {
        if index < watermark {
            fail(.linearizableReads, "node \(node) served a read invoked at t=\(formatMillis(invokedAt)) from index \(index), but a write at index \(watermark) was acknowledged before it")
        } else if let expected = self.digest(at: index), expected != digest {
            fail(.linearizableReads, "node \(node) served a read from a state that is not the committed history at index \(index)")
        }
    }

    mutating func fail(liveness detail: String) { fail(.liveness, detail) }
}

/// The simulated replicated state machine: a digest of every entry applied, in order.
struct SimStateMachine: Sendable {
    static let initialDigest: UInt64 = 0xcbf2_9ce4_8422_2325

    var applied: Index = 0
    var commands: UInt64 = 0
    var digest: UInt64 = initialDigest

    mutating func apply(_ e: Entry) {
        applied = e.index
        var h = digest
        func mix(_ v: UInt64) { h = (h ^ v) &* 0x0000_0100_0000_01b3 }
        mix(e.index)
        mix(e.term)
        switch e.payload {
        case .empty: mix(1)
        case .command(let bytes):
            commands += 1
            mix(2)
            mix(UInt64(bytes.count))
            for b in bytes { mix(UInt64(b)) }
        case .configuration(let c):
            mix(3)
            for v in c.voters { mix(v) }
        }
        digest = h
    }

    var encoded: [UInt8] {
        var out: [UInt8] = []
        for v in [applied, commands, digest] { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    init() {}

    init?(decoding bytes: [UInt8]) {
        guard bytes.count == 24 else { return nil }
        func word(_ k: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[k * 8 + $1]) << (8 * UInt64($1)) } }
        applied = word(0)
        commands = word(1)
        digest = word(2)
    }
}
