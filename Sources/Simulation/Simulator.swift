import Foundation
import Raft
import RaftStorage

/// One seeded run of a simulated cluster: nodes, a network, a clock, clients and a fault schedule,
/// all in one process and all driven by one random generator, so that the same seed replays the
/// same run event for event.
///
/// The run has two phases. During the fault phase the network delays, drops, duplicates and
/// reorders messages; partitions (clean, asymmetric, bridge, leader isolation) come and go; nodes
/// crash, keeping only what they persisted, and restart; membership changes, leadership transfers
/// and log compactions happen; clients propose and read throughout. Then faults stop and the
/// liveness phase requires a leader and a committed proposal on every voter within a bound.
/// ``SafetyChecker`` watches every step of both phases.
public final class Simulator {
    public let seed: UInt64
    public let options: SimulationOptions

    private enum Event {
        case tick(NodeID, incarnation: Int)
        case deliver(Message)
        case restart(NodeID)
        case fault
        case heal
        case propose
        case read
        case endFaults
        case livenessCheck
        /// The nemesis strikes a leader soon after its election, if it still leads in that term.
        case strikeLeader(NodeID, term: Term)
    }

    private struct Node {
        let id: NodeID
        let bootstrap: Configuration
        let tickInterval: UInt64
        var raft: RaftNode?
        /// What the node persisted: a `MemoryStorage`, or with `durableDirectory` set, a real
        /// `FileLogStorage` (dropped on a crash and reopened, with its recovery, on restart).
        var storage: any LogStorage = MemoryStorage()
        /// The last log index the storage holds (for the leader append-only check).
        var storedLastIndex: Index = 0
        var machine = SimStateMachine()
        /// Raised on every crash, so that the ticks of an earlier life stop.
        var incarnation = 0
        /// Reads whose index is known, waiting for the state machine to reach it.
        var confirmedReads: [(read: PendingRead, index: Index)] = []
        var up: Bool { raft != nil }
    }

    private struct PendingWrite {
        var opID: UInt64
        var ticket: ProposalTicket
    }

    private struct PendingRead {
        var requestID: UInt64
        var invokedAt: UInt64
        var watermark: Index
    }

    private var rng: SplitMix64
    private var now: UInt64 = 0
    private var queue = EventQueue<Event>()
    private var nodes: [Node] = []  // nodes[id - 1]
    private var checker = SafetyChecker()
    private(set) var stats = SimulationStats()

    // Network state.
    private var blocked: [Bool]  // blocked[from * stride + to]
    private var stride: Int
    private var dropRate = 0.0
    private var duplicateRate = 0.0
    private var minDelay: UInt64 = 100
    private var maxDelay: UInt64 = 5_000
    private var longDelayRate = 0.0

    // Clients.
    private var nextOpID: UInt64 = 1
    private var nextReadID: UInt64 = 1
    private var pendingWrites: [[PendingWrite]]  // per node, in index order
    private var pendingReads: [[UInt64: PendingRead]]  // per node, by request id
    /// Highest index of an acknowledged write.
    private var ackWatermark: Index = 0

    // Phases.
    private var faultsActive: Bool
    private var finished = false
    private var livenessDeadline: UInt64 = .max
    private var finalWrite: (node: NodeID, write: PendingWrite)?
    private var compactionThreshold: Index = 0
    /// In some runs, new leaders are crashed or isolated within milliseconds of their election:
    /// short reigns leave logs with entries of many terms, which is where commit-rule bugs
    /// (Raft's Figure 8) hide.
    private var strikeNewLeaders = 0.0
    private var raftConfigs: [RaftConfig] = []
    /// A run with more events than this is stuck in a message storm.
    private var maxEvents: Int { 2_000 * Int(options.faultMilliseconds + options.livenessMilliseconds) }

    // Trace and fingerprint.
    private var trace: [String?]
    private var traceNext = 0
    private var fingerprint: UInt64 = 0xcbf2_9ce4_8422_2325
    private let wantTrace: Bool

    public init(seed: UInt64, options: SimulationOptions) {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed)
        let total = options.nodes + options.spareNodes
        stride = total + 1
        blocked = Array(repeating: false, count: stride * stride)
        pendingWrites = Array(repeating: [], count: total + 1)
        pendingReads = Array(repeating: [:], count: total + 1)
        faultsActive = options.faults || options.reconfiguration
        trace = Array(repeating: nil, count: max(options.traceLength, 1))
        wantTrace = options.traceLength > 0
        compactionThreshold = Index(random(in: 5...60))
    }

    // MARK: - Randomness

    private func random(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    private func random(in range: ClosedRange<UInt64>) -> UInt64 { UInt64.random(in: range, using: &rng) }
    private func chance(_ p: Double) -> Bool { p > 0 && Double.random(in: 0..<1, using: &rng) < p }
    private func pick<T>(_ items: [T]) -> T? { items.isEmpty ? nil : items[random(in: 0...(items.count - 1))] }

    private func mix(_ values: UInt64...) {
        for v in values { fingerprint = (fingerprint ^ v) &* 0x0000_0100_0000_01b3 }
    }

    private func record(_ line: @autoclosure () -> String) {
        guard wantTrace else { return }
        trace[traceNext] = "t=\(formatMillis(now)) " + line()
        traceNext = (traceNext + 1) % trace.count
    }

    // MARK: - Run

    /// Runs the simulation to its end (success, or the first violation).
    public func run() -> SimulationResult {
        setUp()
        let faultEnd = options.faultMilliseconds * 1000
        queue.push(.endFaults, at: faultEnd)
        while !finished, let (time, event) = queue.pop() {
            now = time
            checker.now = time
            stats.events += 1
            handle(event)
            if checker.violation != nil { break }
            if stats.events > maxEvents {
                checker.fail(liveness: "more than \(maxEvents) events: a message storm (\(queue.count) events queued)")
                break
            }
            if now > livenessDeadline {
                checker.fail(liveness: livenessFailureDetail())
                break
            }
        }
        stats.leadersElected = checker.leadersElected
        if let dir = options.durableDirectory {
            for k in nodes.indices { nodes[k].storage = MemoryStorage() }
            try? FileManager.default.removeItem(atPath: "\(dir)/seed-\(seed)")
        }
        for n in nodes { if let r = n.raft { stats.maxTerm = max(stats.maxTerm, r.term) } }
        var lines: [String] = []
        if checker.violation != nil {
            for k in 0..<trace.count {
                if let line = trace[(traceNext + k) % trace.count] { lines.append(line) }
            }
            lines.append(contentsOf: nodes.map { describe($0) })
        }
        return SimulationResult(
            seed: seed, options: options, violation: checker.violation, fingerprint: fingerprint,
            stats: stats, trace: lines)
    }

    private func setUp() {
        if let dir = options.durableDirectory {
            // Start from empty disks, whatever an interrupted earlier run left behind.
            try? FileManager.default.removeItem(atPath: "\(dir)/seed-\(seed)")
        }
        let founding = Configuration(voters: (1...options.nodes).map { NodeID($0) })
        let preVote = chance(0.85)
        let checkQuorum = chance(0.85)
        let heartbeat = random(in: 1...3)
        let maxEntries = pick([1, 1, 2, 4, 16, 64, 256])!
        if options.faults { strikeNewLeaders = pick([0, 0, 0.3, 0.7])! }
        let inflight = random(in: 1...8)
        let chunk = random(in: 5...32)
        for k in 1...(options.nodes + options.spareNodes) {
            let id = NodeID(k)
            var config = RaftConfig(id: id)
            config.electionTimeout = 10
            config.heartbeatInterval = heartbeat
            config.preVote = preVote
            config.checkQuorum = checkQuorum
            config.maxEntriesPerAppend = maxEntries
            config.maxInflightAppends = inflight
            config.snapshotChunkSize = chunk
            config.injectedBugs = options.injectedBugs
            raftConfigs.append(config)
            // Tick intervals differ a little from node to node: clocks drift.
            let interval = UInt64(random(in: 9_500...10_500))
            nodes.append(Node(id: id, bootstrap: k <= options.nodes ? founding : .empty, tickInterval: interval))
            start(id)
            queue.push(.tick(id, incarnation: 0), at: random(in: 0...interval))
        }
        record("start: voters \(founding), spares \(options.spareNodes), preVote \(preVote), checkQuorum \(checkQuorum), heartbeat \(heartbeat), batch \(maxEntries), inflight \(inflight), chunk \(chunk), compact every \(compactionThreshold), strike new leaders \(strikeNewLeaders)")
        if options.faults || options.reconfiguration { queue.push(.fault, at: random(in: 50_000...300_000)) }
        queue.push(.propose, at: random(in: 1_000...20_000))
        queue.push(.read, at: random(in: 1_000...40_000))
    }

    private func start(_ id: NodeID) {
        let k = Int(id - 1)
        let state: PersistentState
        do {
            if let dir = options.durableDirectory {
                // A fresh process opening the data directory: the store's crash recovery runs here.
                // Some incarnations will crash in the middle of one of their fsyncs.
                let failAt = chance(0.7) ? random(in: 1...150) : nil
                let path = "\(dir)/seed-\(seed)/n\(id)"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                nodes[k].storage = try FileLogStorage(
                    directory: path, segmentSize: 4096,
                    faults: .init(failSyncAfter: failAt))
            }
            state = try nodes[k].storage.load()
        } catch {
            checker.fail(liveness: "node \(id) could not reopen its storage: \(error)")
            return
        }
        nodes[k].storedLastIndex = state.entries.last?.index ?? state.snapshot?.metadata.index ?? 0
        do {
            nodes[k].raft = try RaftNode(
                config: raftConfigs[k], state: state, bootstrap: nodes[k].bootstrap,
                random: SplitMix64(seed: rng.next()))
        } catch {
            checker.fail(liveness: "node \(id) could not restart from its storage: \(error)")
            return
        }
        var machine = SimStateMachine()
        if let s = state.snapshot {
            machine = SimStateMachine(decoding: s.data) ?? machine
        }
        nodes[k].machine = machine
        nodes[k].confirmedReads = []
    }

    private func handle(_ event: Event) {
        switch event {
        case .tick(let id, let incarnation):
            let k = Int(id - 1)
            guard nodes[k].up, nodes[k].incarnation == incarnation else { return }
            mix(1, now, id)
            nodes[k].raft!.tick()
            process(id)
            queue.push(.tick(id, incarnation: incarnation), at: now + nodes[k].tickInterval)
        case .deliver(let m):
            deliver(m)
        case .restart(let id):
            guard !nodes[Int(id - 1)].up else { return }
            restart(id)
        case .fault:
            guard faultsActive else { return }
            injectFault()
            queue.push(.fault, at: now + random(in: 20_000...400_000))
        case .heal:
            healPartition()
        case .propose:
            clientPropose()
            queue.push(.propose, at: now + random(in: 2_000...40_000))
        case .read:
            clientRead()
            queue.push(.read, at: now + random(in: 5_000...60_000))
        case .endFaults:
            endFaults()
        case .livenessCheck:
            livenessCheck()
            if !finished { queue.push(.livenessCheck, at: now + 20_000) }
        case .strikeLeader(let id, let term):
            guard faultsActive, let r = nodes[Int(id - 1)].raft, r.role == .leader, r.term == term else { return }
            if chance(0.5) {
                crash(id)
                queue.push(.restart(id), at: now + random(in: 5_000...300_000))
            } else {
                let rest = allIDs.filter { $0 != id }
                block([id], rest)
                block(rest, [id])
                stats.partitions += 1
                record("nemesis: leader n\(id) isolated")
                queue.push(.heal, at: now + random(in: 20_000...500_000))
            }
        }
    }

    // MARK: - Nodes

    /// Drains a node's `Ready`s in the documented order: persist, send, apply, advance.
    private func process(_ id: NodeID) {
        let k = Int(id - 1)
        while nodes[k].raft!.hasReady {
            let rd = nodes[k].raft!.ready()
            checker.willPersist(rd, node: nodes[k].raft!, storedLastIndex: nodes[k].storedLastIndex)
            do {
                try nodes[k].storage.persist(rd)
            } catch {
                // The machine died mid-fsync: nothing of this Ready was acknowledged or applied.
                crashDuringSync(id, error)
                return
            }
            if let s = rd.snapshot { nodes[k].storedLastIndex = s.metadata.index }
            if let last = rd.entries.last { nodes[k].storedLastIndex = last.index }
            if let ss = rd.softState {
                record("n\(id) is \(ss.role.rawValue) of term \(nodes[k].raft!.term) (leader \(ss.leader))")
                if ss.role == .leader && faultsActive && chance(strikeNewLeaders) {
                    // Soon after the election, often around the leader's first commits.
                    let delay: UInt64 = chance(0.5) ? random(in: 100...6_000) : random(in: 6_000...60_000)
                    queue.push(.strikeLeader(id, term: nodes[k].raft!.term), at: now + delay)
                }
            }
            for m in rd.messages { send(m) }
            if let s = rd.snapshot {
                guard let machine = SimStateMachine(decoding: s.data) else {
                    checker.fail(liveness: "node \(id) received an undecodable snapshot")
                    return
                }
                nodes[k].machine = machine
                stats.snapshotsInstalled += 1
                record("n\(id) installed snapshot at \(s.metadata.index) term \(s.metadata.term) config \(s.metadata.configuration)")
                checker.didRestore(index: s.metadata.index, digest: machine.digest, node: id)
                // Writes whose entries the snapshot covers can no longer be told apart: unknown.
                pendingWrites[Int(id)].removeAll { $0.ticket.index <= s.metadata.index }
            }
            for e in rd.committedEntries {
                nodes[k].machine.apply(e)
                checker.didApply(e, node: id, digest: nodes[k].machine.digest)
                acknowledgeWrites(node: id, applied: e)
            }
            for rs in rd.readStates {
                if let read = pendingReads[Int(id)].removeValue(forKey: rs.requestID) {
                    nodes[k].confirmedReads.append((read, rs.index))
                }
            }
            nodes[k].raft!.advance(rd)
            if checker.violation != nil { return }
        }
        serveReads(id)
        compactIfNeeded(id)
        // (Compaction may have crashed the node mid-fsync.)
        if let raft = nodes[k].raft { checker.didStep(raft) }
    }

    private func compactIfNeeded(_ id: NodeID) {
        let k = Int(id - 1)
        let raft = nodes[k].raft!
        let applied = raft.appliedIndex
        guard applied >= raft.firstIndex - 1 + compactionThreshold,
            nodes[k].machine.applied == applied
        else { return }
        do {
            let s = try nodes[k].raft!.compact(through: applied, snapshotData: nodes[k].machine.encoded)
            try nodes[k].storage.compact(s)
        } catch is StorageError {
            crashDuringSync(id, "compaction")
        } catch {
            checker.fail(liveness: "node \(id) could not compact through its applied index \(applied): \(error)")
        }
    }

    private func crash(_ id: NodeID) {
        let k = Int(id - 1)
        guard nodes[k].up else { return }
        nodes[k].raft = nil
        nodes[k].incarnation += 1
        // A real store is closed (its lock released) and reopened from disk on restart.
        if options.durableDirectory != nil { nodes[k].storage = MemoryStorage() }
        pendingWrites[Int(id)] = []  // outcome unknown: the client never hears back
        pendingReads[Int(id)] = [:]
        stats.crashes += 1
        mix(3, now, id)
        record("n\(id) crashed")
    }

    private func crashDuringSync(_ id: NodeID, _ what: Any) {
        stats.crashesDuringSync += 1
        record("n\(id) lost power during a sync (\(what))")
        crash(id)
        queue.push(.restart(id), at: now + random(in: 10_000...500_000))
    }

    private func restart(_ id: NodeID) {
        let k = Int(id - 1)
        start(id)
        guard nodes[k].up else { return }
        mix(4, now, id)
        record("n\(id) restarted (term \(nodes[k].raft!.term), log \(nodes[k].raft!.firstIndex - 1)...\(nodes[k].raft!.lastIndex), commit \(nodes[k].raft!.commitIndex))")
        queue.push(.tick(id, incarnation: nodes[k].incarnation), at: now + random(in: 0...nodes[k].tickInterval))
        process(id)
    }

    // MARK: - Network

    private func send(_ m: Message) {
        stats.messagesSent += 1
        if chance(dropRate) {
            stats.messagesDropped += 1
            return
        }
        queue.push(.deliver(m), at: now + delay())
        if chance(duplicateRate) {
            stats.messagesDuplicated += 1
            queue.push(.deliver(m), at: now + delay())
        }
    }

    private func delay() -> UInt64 {
        if chance(longDelayRate) { return random(in: 30_000...300_000) }
        return random(in: minDelay...maxDelay)
    }

    private func deliver(_ m: Message) {
        let to = Int(m.to)
        guard to >= 1, to <= nodes.count, nodes[to - 1].up else { return }
        if blocked[Int(m.from) * stride + to] {
            stats.messagesDropped += 1
            return
        }
        mix(2, now, m.from, m.to, m.term)
        record("n\(m.from)→n\(m.to) t\(m.term) \(m.kind)")
        nodes[to - 1].raft!.step(m)
        process(m.to)
    }

    private func block(_ from: [NodeID], _ to: [NodeID]) {
        for a in from { for b in to where a != b { blocked[Int(a) * stride + Int(b)] = true } }
    }

    private func healPartition() {
        if blocked.contains(true) { record("partition healed") }
        for k in blocked.indices { blocked[k] = false }
    }

    // MARK: - Faults

    private var allIDs: [NodeID] { nodes.map(\.id) }

    private var currentLeader: NodeID? {
        var best: (NodeID, Term)?
        for n in nodes {
            guard let r = n.raft, r.role == .leader else { continue }
            if best == nil || r.term > best!.1 { best = (n.id, r.term) }
        }
        return best?.0
    }

    private func injectFault() {
        var kinds: [Int] = []
        if options.faults { kinds += [0, 0, 1, 1, 2] }
        if options.reconfiguration { kinds += [3, 4] }
        switch pick(kinds)! {
        case 0: partition()
        case 1: crashSomething()
        case 2: changeNetwork()
        case 3: changeMembership()
        default: transferLeadership()
        }
    }

    private func partition() {
        healPartition()
        stats.partitions += 1
        var ids = allIDs
        ids.shuffle(using: &rng)
        let description: String
        switch random(in: 0...4) {
        case 0:  // a clean split into two sides
            let cut = random(in: 1...(ids.count - 1))
            let a = Array(ids[..<cut]), b = Array(ids[cut...])
            block(a, b)
            block(b, a)
            description = "split \(a.sorted()) | \(b.sorted())"
        case 1:  // isolate the leader
            guard let l = currentLeader else { return }
            let rest = ids.filter { $0 != l }
            block([l], rest)
            block(rest, [l])
            description = "leader n\(l) isolated"
        case 2:  // one-way cut: a side can send but not receive
            let cut = random(in: 1...(ids.count - 1))
            let a = Array(ids[..<cut]), b = Array(ids[cut...])
            block(b, a)
            description = "one-way: \(b.sorted()) cannot reach \(a.sorted())"
        case 3:  // bridge: two sides that only one node can talk to
            guard ids.count >= 3 else { return }
            let bridge = ids[0]
            let cut = random(in: 2...(ids.count - 1))
            let a = Array(ids[1..<cut]), b = Array(ids[cut...])
            block(a, b)
            block(b, a)
            description = "bridge n\(bridge) between \(a.sorted()) and \(b.sorted())"
        default:  // random lossy links
            for a in ids { for b in ids where a != b && chance(0.3) { block([a], [b]) } }
            description = "random one-way link cuts"
        }
        record("partition: \(description)")
        queue.push(.heal, at: now + random(in: 50_000...1_500_000))
    }

    private func crashSomething() {
        let up = nodes.filter(\.up).map(\.id)
        let victim: NodeID?
        if chance(0.4), let l = currentLeader { victim = l } else { victim = pick(up) }
        guard let victim else { return }
        crash(victim)
        queue.push(.restart(victim), at: now + random(in: 10_000...1_000_000))
    }

    private func changeNetwork() {
        dropRate = pick([0, 0, 0.01, 0.05, 0.2])!
        duplicateRate = pick([0, 0, 0.02, 0.1])!
        minDelay = random(in: 50...1_000)
        maxDelay = minDelay + random(in: 500...30_000)
        longDelayRate = pick([0, 0, 0.01, 0.05])!
        record("network: drop \(dropRate), duplicate \(duplicateRate), delay \(minDelay)...\(maxDelay)µs, long \(longDelayRate)")
    }

    private func changeMembership() {
        guard let l = currentLeader else { return }
        let k = Int(l - 1)
        let voters = nodes[k].raft!.configuration.voters
        let others = allIDs.filter { !voters.contains($0) }
        let change: ConfigurationChange
        if voters.count <= max(1, options.nodes - 2) || (voters.count < options.nodes + 1 && chance(0.5)) {
            guard let add = pick(others) else { return }
            change = .addVoter(add)
        } else {
            change = .removeVoter(pick(voters)!)
        }
        do {
            let t = try nodes[k].raft!.proposeConfigurationChange(change)
            stats.configurationChanges += 1
            record("n\(l) proposed \(change) at \(t.index)")
        } catch {
            record("n\(l) refused \(change): \(error)")
        }
        process(l)
    }

    private func transferLeadership() {
        guard let l = currentLeader else { return }
        let k = Int(l - 1)
        guard let target = pick(nodes[k].raft!.configuration.voters.filter { $0 != l }) else { return }
        do {
            try nodes[k].raft!.transferLeadership(to: target)
            stats.leadershipTransfers += 1
            record("n\(l) transfers leadership to n\(target)")
        } catch {
            record("n\(l) refused transfer to n\(target): \(error)")
        }
        process(l)
    }

    // MARK: - Clients

    /// The node a client would try: the leader some live node believes in, else any live node.
    private func clientTarget() -> NodeID? {
        let up = nodes.filter(\.up)
        guard let asked = pick(up) else { return nil }
        let believed = asked.raft!.leader
        if believed != noNode, nodes[Int(believed - 1)].up, chance(0.9) { return believed }
        return asked.id
    }

    private func clientPropose() {
        guard let target = clientTarget() else { return }
        let opID = nextOpID
        nextOpID += 1
        if let t = propose(opID, on: target) {
            pendingWrites[Int(target)].append(PendingWrite(opID: opID, ticket: t))
        }
    }

    private func propose(_ opID: UInt64, on target: NodeID) -> ProposalTicket? {
        stats.proposals += 1
        let k = Int(target - 1)
        do {
            let t = try nodes[k].raft!.propose(command(opID))
            mix(5, now, target, t.index)
            record("client → n\(target): op \(opID) at \(t.index)/\(t.term)")
            process(target)
            return t
        } catch {
            record("client → n\(target): op \(opID) refused: \(error)")
            return nil
        }
    }

    private func command(_ opID: UInt64) -> [UInt8] {
        withUnsafeBytes(of: opID.littleEndian) { Array($0) }
    }

    private func acknowledgeWrites(node id: NodeID, applied e: Entry) {
        var writes = pendingWrites[Int(id)]
        guard let first = writes.first, first.ticket.index <= e.index else { return }
        while let w = writes.first, w.ticket.index <= e.index {
            writes.removeFirst()
            guard w.ticket.index == e.index else { continue }
            if e.term == w.ticket.term && e.payload == .command(command(w.opID)) {
                stats.proposalsAcknowledged += 1
                ackWatermark = max(ackWatermark, e.index)
                record("client: op \(w.opID) acknowledged at \(e.index)")
            } else {
                record("client: op \(w.opID) lost its slot at \(e.index) (overwritten)")
            }
        }
        pendingWrites[Int(id)] = writes
    }

    private func clientRead() {
        guard let target = clientTarget() else { return }
        let k = Int(target - 1)
        let id = nextReadID
        nextReadID += 1
        do {
            try nodes[k].raft!.readIndex(requestID: id)
            pendingReads[Int(target)][id] = PendingRead(requestID: id, invokedAt: now, watermark: ackWatermark)
            record("client → n\(target): read \(id) (acknowledged writes up to \(ackWatermark))")
            process(target)
        } catch {
            record("client → n\(target): read \(id) refused: \(error)")
        }
    }

    private func serveReads(_ id: NodeID) {
        let k = Int(id - 1)
        guard !nodes[k].confirmedReads.isEmpty else { return }
        let machine = nodes[k].machine
        var waiting: [(read: PendingRead, index: Index)] = []
        for (read, index) in nodes[k].confirmedReads {
            if machine.applied >= index {
                stats.readsServed += 1
                record("n\(id) served read \(read.requestID) at applied \(machine.applied) (read index \(index))")
                checker.didServeRead(
                    node: id, index: machine.applied, digest: machine.digest, watermark: read.watermark,
                    invokedAt: read.invokedAt)
            } else {
                waiting.append((read, index))
            }
        }
        nodes[k].confirmedReads = waiting
    }

    // MARK: - Liveness

    private func endFaults() {
        faultsActive = false
        healPartition()
        dropRate = 0
        duplicateRate = 0
        longDelayRate = 0
        minDelay = 100
        maxDelay = 2_000
        record("faults end: network healed, crashed nodes restart")
        for n in nodes where !n.up { restart(n.id) }
        livenessDeadline = now + options.livenessMilliseconds * 1000
        queue.push(.livenessCheck, at: now)
    }

    /// Once faults stop, a leader must emerge and a fresh proposal must be applied by every voter.
    private func livenessCheck() {
        if let (node, write) = finalWrite {
            let idx = write.ticket.index
            guard idx <= checker.appliedCount else { return }
            let entry = checker.applied[Int(idx - 1)]
            guard entry.term == write.ticket.term, entry.payload == .command(command(write.opID)) else {
                finalWrite = nil  // overwritten by a newer leader: propose again
                return
            }
            guard let leader = currentLeader else { return }
            let voters = nodes[Int(leader - 1)].raft!.committedConfiguration.voters
            if voters.allSatisfy({ nodes[Int($0 - 1)].up && nodes[Int($0 - 1)].raft!.appliedIndex >= idx }) {
                record("liveness: op \(write.opID) from n\(node) applied on all voters \(voters)")
                finished = true
            }
            return
        }
        guard let leader = currentLeader else { return }
        let opID = nextOpID
        nextOpID += 1
        if let t = propose(opID, on: leader) {
            finalWrite = (leader, PendingWrite(opID: opID, ticket: t))
        }
    }

    private func livenessFailureDetail() -> String {
        let state = nodes.map { n -> String in
            guard let r = n.raft else { return "n\(n.id) down" }
            return "n\(n.id) \(r.role.rawValue) t\(r.term) commit \(r.commitIndex) last \(r.lastIndex) config \(r.configuration)"
        }
        let what = finalWrite == nil ? "no leader accepted a proposal" : "the final proposal was not applied on every voter"
        return "\(what) within \(options.livenessMilliseconds) ms after faults stopped; \(state.joined(separator: "; "))"
    }

    private func describe(_ n: Node) -> String {
        guard let r = n.raft else { return "final: n\(n.id) down" }
        let s = r.status
        return "final: n\(n.id) \(s.role.rawValue) term \(s.term) vote \(s.vote) leader \(s.leader) log \(s.snapshotIndex)...\(s.lastIndex) commit \(s.commitIndex) applied \(s.appliedIndex) config \(s.configuration)"
    }
}
