@testable import Raft
import Testing

/// An in-process cluster for scenario tests: nodes with their `MemoryStorage`, a FIFO queue of
/// messages in flight, and links the test can cut. Nothing happens unless the test asks for it:
/// it ticks nodes, delivers messages (all of them, or those it selects), crashes and restarts
/// nodes. Every node draws its randomness from a fixed seed, so a test replays exactly.
final class TestNetwork {
    let electionTimeout: Int
    private(set) var nodes: [NodeID: RaftNode] = [:]
    private(set) var storage: [NodeID: MemoryStorage] = [:]
    /// What each node's state machine was handed, in order (it starts over when the node restarts).
    private(set) var applied: [NodeID: [Entry]] = [:]
    private(set) var installedSnapshots: [NodeID: [Snapshot]] = [:]
    private(set) var readStates: [NodeID: [ReadState]] = [:]
    /// Sent and not yet delivered, oldest first.
    private(set) var queue: [Message] = []
    private(set) var delivered: [Message] = []
    private(set) var dropped: [Message] = []

    private let seed: UInt64
    private let configure: (inout RaftConfig) -> Void
    private var bootstraps: [NodeID: Configuration] = [:]
    private var cutLinks: Set<[NodeID]> = []
    private var dropOnceRules: [(Message) -> Bool] = []

    /// Nodes `1...voters`, all founding members; `states` gives some of them a persisted state.
    init(
        voters: Int, states: [NodeID: PersistentState] = [:], seed: UInt64 = 1,
        configure: @escaping (inout RaftConfig) -> Void = { _ in }
    ) throws {
        self.seed = seed
        self.configure = configure
        var probe = RaftConfig(id: 1)
        configure(&probe)
        electionTimeout = probe.electionTimeout
        let ids = 1...NodeID(voters)
        for id in ids { try add(id, state: states[id] ?? PersistentState(), bootstrap: Configuration(voters: ids)) }
    }

    /// Starts a node; one added to a running cluster gets the empty bootstrap configuration.
    func add(_ id: NodeID, state: PersistentState = PersistentState(), bootstrap: Configuration = .empty) throws {
        var initial = Ready()
        initial.snapshot = state.snapshot
        initial.entries = state.entries
        initial.hardState = state.hardState
        storage[id] = MemoryStorage()
        storage[id]!.persist(initial)
        bootstraps[id] = bootstrap
        try restart(id)
    }

    /// (Re)creates a node from what its storage holds; its state machine starts over.
    func restart(_ id: NodeID) throws {
        nodes[id] = try RaftNode(
            config: makeConfig(id: id), state: storage[id]!.load(), bootstrap: bootstraps[id]!,
            random: SplitMix64(seed: seed &* 1_000 &+ id))
        applied[id] = []
    }

    /// Stops a node; its storage survives, messages in flight to or from it are lost.
    func crash(_ id: NodeID) {
        nodes[id] = nil
        queue.removeAll { $0.to == id || $0.from == id }
    }

    private func makeConfig(id: NodeID) -> RaftConfig {
        var config = RaftConfig(id: id)
        configure(&config)
        return config
    }

    // MARK: Observation

    subscript(id: NodeID) -> RaftNode { nodes[id]! }
    var running: [NodeID] { nodes.keys.sorted() }
    var leaders: [NodeID] { running.filter { nodes[$0]!.role == .leader } }

    /// The entries a node holds in memory, after its snapshot.
    func log(_ id: NodeID) -> [Entry] {
        let node = self[id]
        return stride(from: node.firstIndex, through: node.lastIndex, by: 1).compactMap(node.entry(at:))
    }

    func logsMatch(_ ids: [NodeID]) -> Bool { ids.allSatisfy { log($0) == log(ids[0]) } }

    /// Whether any state machine applied the proposal (same index, same term).
    func isApplied(_ ticket: ProposalTicket) -> Bool {
        applied.values.joined().contains { $0.index == ticket.index && $0.term == ticket.term }
    }

    func rejectedAppends(by id: NodeID) -> Int {
        delivered.count(where: { $0.from == id && $0.appendResponse?.success == false })
    }

    // MARK: Client requests

    /// Runs `body` on a node (a client request, a hand-made message), then its Ready cycle.
    @discardableResult
    func on<R>(_ id: NodeID, _ body: (inout RaftNode) throws -> R) rethrows -> R {
        defer { drain(id) }
        return try body(&nodes[id]!)
    }

    @discardableResult
    func propose(_ command: String, on id: NodeID) throws -> ProposalTicket {
        try on(id) { try $0.propose(Array(command.utf8)) }
    }

    /// Snapshots a node's state machine through `index` and compacts its log and its storage.
    @discardableResult
    func compact(_ id: NodeID, through index: Index, data: [UInt8]) throws -> Snapshot {
        let snapshot = try on(id) { try $0.compact(through: index, snapshotData: data) }
        storage[id]!.compact(snapshot)
        return snapshot
    }

    // MARK: Ready cycle and delivery

    /// Handles `id`'s Ready until it has none left: persist, then send (queue), apply, advance.
    func drain(_ id: NodeID) {
        for _ in 0..<1_000 {
            guard nodes[id]?.hasReady == true else { return }
            let rd = nodes[id]!.ready()
            storage[id]!.persist(rd)
            queue += rd.messages.filter { !isUndeliverable($0) }
            if let s = rd.snapshot { installedSnapshots[id, default: []].append(s) }
            applied[id, default: []] += rd.committedEntries
            readStates[id, default: []] += rd.readStates
            nodes[id]!.advance(rd)
        }
        Issue.record("node \(id) still has a Ready after 1000 rounds")
    }

    /// Delivers the queued messages that `filter` selects, oldest first, and the selected messages
    /// they cause, until none is left; unselected messages stay queued.
    func deliver(where filter: (Message) -> Bool = { _ in true }) {
        for _ in 0..<100_000 {
            guard let k = queue.firstIndex(where: filter) else { return }
            let m = queue.remove(at: k)
            if let rule = dropOnceRules.firstIndex(where: { $0(m) }) {
                dropOnceRules.remove(at: rule)
                dropped.append(m)
                continue
            }
            delivered.append(m)
            nodes[m.to]!.step(m)
            drain(m.to)
        }
        Issue.record("messages still flowing after 100000 deliveries")
    }

    /// Loses the next message that matches `rule`.
    func dropOnce(where rule: @escaping (Message) -> Bool) { dropOnceRules.append(rule) }

    /// Loses every message between `a` and `b`, both those in flight and those sent later.
    func cut(_ a: NodeID, _ b: NodeID) {
        cutLinks.insert([min(a, b), max(a, b)])
        queue.removeAll(where: isUndeliverable)
    }

    func isolate(_ id: NodeID) {
        for other in nodes.keys where other != id { cut(id, other) }
    }

    func heal() { cutLinks = [] }

    private func isUndeliverable(_ m: Message) -> Bool {
        cutLinks.contains([min(m.from, m.to), max(m.from, m.to)]) || nodes[m.to] == nil
    }

    // MARK: Time

    /// Ticks each of `ids` (default: every running node) once, then delivers what `filter` selects.
    func tick(_ ids: [NodeID]? = nil, delivering filter: (Message) -> Bool = { _ in true }) {
        for id in ids ?? running where nodes[id] != nil {
            nodes[id]!.tick()
            drain(id)
        }
        deliver(where: filter)
    }

    func tick(times: Int) {
        for _ in 0..<times { tick() }
    }

    /// Ticks until `condition` holds, at most `maxTicks` times. Returns how many ticks it took
    /// (0 if it held already), or nil if it still does not hold.
    @discardableResult
    func tick(
        until condition: () -> Bool, maxTicks: Int, ticking ids: [NodeID]? = nil,
        delivering filter: (Message) -> Bool = { _ in true }
    ) -> Int? {
        if condition() { return 0 }
        for t in 1...maxTicks {
            tick(ids, delivering: filter)
            if condition() { return t }
        }
        return nil
    }

    /// Makes `id` leader by letting only it tick: the others never time out. Returns whether it won.
    @discardableResult
    func elect(_ id: NodeID, delivering filter: (Message) -> Bool = { _ in true }) -> Bool {
        tick(until: { self[id].role == .leader }, maxTicks: 2 * electionTimeout, ticking: [id], delivering: filter) != nil
    }
}

/// Entries `1...terms.count` with the given terms; the payload names the index and term, so two
/// entries are equal exactly when index and term are (the Log Matching Property).
func paperLog(_ terms: [Term]) -> [Entry] {
    terms.enumerated().map { k, term in
        Entry(term: term, index: Index(k + 1), payload: .command([UInt8(k + 1), UInt8(term)]))
    }
}

func commands(_ entries: [Entry]) -> [String] {
    entries.compactMap {
        guard case .command(let bytes) = $0.payload else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Message {
    var appendRequest: AppendRequest? {
        guard case .append(let a) = payload else { return nil }
        return a
    }
    var appendResponse: AppendResponse? {
        guard case .appendResponse(let r) = payload else { return nil }
        return r
    }
    var voteResponse: VoteResponse? {
        guard case .voteResponse(let r) = payload else { return nil }
        return r
    }
    var snapshotChunk: SnapshotChunk? {
        guard case .snapshot(let c) = payload else { return nil }
        return c
    }
    func isBetween(_ a: NodeID, _ b: NodeID) -> Bool { (from == a && to == b) || (from == b && to == a) }
}
