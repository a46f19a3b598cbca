import Raft

/// A few `RaftNode`s wired together in memory: the smallest shell that drives the core the way a
/// real server does (ready → persist → send → apply → advance), with no clock, no threads and no
/// I/O, so that the benchmarks measure the core and `MemoryStorage` and little else.
///
/// Node `k` has id `k + 1`. Messages are delivered in the order they were sent, none is lost. The
/// "state machine" only counts the commands it is handed, so applying costs one pass over the
/// committed entries and nothing more.
struct InMemoryCluster {
    private(set) var nodes: [RaftNode]
    private(set) var storages: [MemoryStorage]
    /// Commands applied so far by each node.
    private(set) var appliedCommands: [Int]
    /// Messages sent and not yet delivered, oldest first.
    private var inFlight: [Message] = []
    /// The batch being delivered; kept as a property so that its buffer is reused.
    private var delivering: [Message] = []

    /// A brand-new cluster of `size` founding voters; nobody leads yet.
    init(size: Int = 3, seed: UInt64 = 1) throws(RaftError) {
        let voters = Configuration(voters: (1...UInt64(size)).map { $0 })
        nodes = []
        for id in voters.voters {
            // Each node its own generator, derived from the seed: runs repeat exactly.
            nodes.append(try RaftNode(config: RaftConfig(id: id), bootstrap: voters, random: SplitMix64(seed: seed &+ id)))
        }
        storages = Array(repeating: MemoryStorage(), count: size)
        appliedCommands = Array(repeating: 0, count: size)
    }

    /// A brand-new cluster in which node `leader` has won the first election (everything settled).
    static func withLeader(_ leader: NodeID = 1, size: Int = 3, seed: UInt64 = 1) throws(RaftError) -> InMemoryCluster {
        var cluster = try InMemoryCluster(size: size, seed: seed)
        guard cluster.elect(leader) else {
            fatalError("node \(leader) did not become leader within the tick budget")
        }
        return cluster
    }

    func node(_ id: NodeID) -> RaftNode { nodes[Int(id - 1)] }

    /// Ticks only node `id` (the others never time out) until it leads, settling the cluster after
    /// each tick. Returns false if it did not win within `maxTicks` ticks.
    mutating func elect(_ id: NodeID, maxTicks: Int = 200) -> Bool {
        let k = Int(id - 1)
        for _ in 0..<maxTicks {
            nodes[k].tick()
            guard settle() else { return false }
            if nodes[k].role == .leader { return true }
        }
        return false
    }

    /// Proposes `commands` on node `id` as one batch; returns the index of the last one.
    mutating func propose(_ commands: [[UInt8]], on id: NodeID) throws(RaftError) -> Index {
        let tickets = try nodes[Int(id - 1)].propose(commands)
        return tickets[tickets.count - 1].index
    }

    /// Handles the `Ready` of every node that has one, in the documented order: persist the entries
    /// and hard state, queue the messages, apply the committed entries, then `advance`. Returns
    /// whether any node had one.
    @discardableResult
    mutating func handleReadies() -> Bool {
        var any = false
        for k in nodes.indices {
            while nodes[k].hasReady {
                any = true
                let rd = nodes[k].ready()
                if rd.mustPersist { storages[k].persist(rd) }
                if !rd.messages.isEmpty { inFlight.append(contentsOf: rd.messages) }
                for e in rd.committedEntries {
                    if case .command = e.payload { appliedCommands[k] += 1 }
                }
                nodes[k].advance(rd)
            }
        }
        return any
    }

    /// Delivers every message in flight; messages sent in reply wait for the next call. Returns
    /// whether there was anything to deliver.
    @discardableResult
    mutating func deliver() -> Bool {
        guard !inFlight.isEmpty else { return false }
        swap(&inFlight, &delivering)
        for m in delivering where m.to >= 1 && m.to <= nodes.count {
            nodes[Int(m.to - 1)].step(m)
        }
        delivering.removeAll(keepingCapacity: true)
        return true
    }

    /// Runs rounds of `handleReadies` and `deliver` until no node has anything left to do.
    /// Returns false if that took more than `maxRounds` rounds.
    @discardableResult
    mutating func settle(maxRounds: Int = 10_000) -> Bool {
        for _ in 0..<maxRounds {
            let busy = handleReadies()
            if !deliver() && !busy { return true }
        }
        return false
    }

    /// Runs rounds until node `id` has applied `index`. Messages still in flight then (such as the
    /// appends that tell followers the new commit index) stay queued for the next call, as they
    /// would be on a real network. Returns false if the cluster went quiet first, or after
    /// `maxRounds` rounds.
    mutating func pump(untilApplied index: Index, on id: NodeID, maxRounds: Int = 1_000) -> Bool {
        let k = Int(id - 1)
        for _ in 0..<maxRounds {
            handleReadies()
            if nodes[k].appliedIndex >= index { return true }
            if !deliver() { return false }
        }
        return false
    }
}
