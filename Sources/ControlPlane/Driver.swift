import Raft
import RaftStorage
import RaftTransport

/// Everything a node thread owns: the core, the storage, the state machine and the requests
/// waiting for an answer. Used by that thread only (created and dropped inside ``NodeRuntime``'s loop).
final class Driver {
    private let options: NodeOptions
    private let transport: any PeerTransport
    private var raft: RaftNode
    private var storage: any LogStorage
    private var machine: any ReplicatedStateMachine
    private var sessions = Sessions()
    /// The state machine as first created: a snapshot is restored into a copy of it.
    private let emptyMachine: any ReplicatedStateMachine

    private struct PendingProposal {
        var term: Term
        var deadline: UInt64
        var reply: Reply<ProposeResult>?
        var membership: Reply<Index>?
    }
    private struct PendingRead {
        var query: [UInt8]
        var deadline: UInt64
        var reply: Reply<ReadResult>
        var index: Index?
    }

    private var proposals: [Index: PendingProposal] = [:]
    private var reads: [UInt64: PendingRead] = [:]
    private var nextReadID: UInt64 = 1
    /// Ticks since start: the clock for request deadlines.
    private var ticks: UInt64 = 0
    private let timeoutTicks: UInt64
    private var stopping: (transfer: Bool, deadline: UInt64)?
    /// Syncs in a row slower than `options.slowSyncThreshold` while leading.
    private var slowSyncs = 0
    /// The leader and term last written to the log (see ``noteLeadership(_:)``).
    private var loggedLeadership: (leader: NodeID, term: Term) = (noNode, 0)
    /// When (in ticks) each peer was last heard from: who is up, for ``membershipChangeProblem``.
    private var lastHeard: [NodeID: UInt64] = [:]
    private(set) var finished = false

    init(options: NodeOptions, transport: any PeerTransport, storage: any LogStorage, stateMachine: any ReplicatedStateMachine) throws {
        self.options = options
        self.transport = transport
        self.storage = storage
        emptyMachine = stateMachine
        machine = stateMachine
        let state = try storage.load()
        raft = try RaftNode(
            config: options.raft, state: state, bootstrap: options.bootstrap,
            random: SplitMix64(seed: UInt64.random(in: .min ... .max)))
        let tick = options.tickInterval.components
        let tickNanos = max(1, tick.seconds * 1_000_000_000 + tick.attoseconds / 1_000_000_000)
        let timeout = options.requestTimeout.components
        let timeoutNanos = timeout.seconds * 1_000_000_000 + timeout.attoseconds / 1_000_000_000
        timeoutTicks = UInt64(max(1, timeoutNanos / tickNanos))
        if let s = state.snapshot { try restore(s.data) }
    }

    // MARK: Inputs

    func handle(_ event: Event) {
        switch event {
        case .messages(let messages):
            for m in messages {
                lastHeard[m.from] = ticks
                raft.step(m)
            }
        case .propose(let envelope, let reply):
            propose(envelope, reply)
        case .read(let query, let reply):
            read(query, reply)
        case .status(let reply):
            reply.succeed(raft.status)
        case .transfer(let target, let reply):
            do {
                try raft.transferLeadership(to: target)
                reply.succeed(true)
            } catch {
                reply.fail(.refused(error))
            }
        case .changeMembership(let change, let reply):
            let window = UInt64(options.raft.electionTimeout)
            let up = Set(lastHeard.filter { ticks - $0.value <= window }.keys).union([raft.id])
            if raft.role == .leader, let problem = membershipChangeProblem(change, voters: raft.configuration, up: up) {
                return reply.fail(.refused(.invalidConfigurationChange(problem)))
            }
            do {
                let ticket = try raft.proposeConfigurationChange(change)
                supersede(at: ticket.index)
                proposals[ticket.index] = PendingProposal(term: ticket.term, deadline: ticks + timeoutTicks, membership: reply)
            } catch {
                reply.fail(map(error))
            }
        case .stop(let transfer):
            beginStop(transfer: transfer)
        }
    }

    func tick() {
        ticks += 1
        raft.tick()
        expireRequests()
        if let s = stopping, raft.role != .leader || ticks >= s.deadline { finished = true }
    }

    private func propose(_ envelope: ProposalEnvelope, _ reply: Reply<ProposeResult>) {
        guard stopping == nil else { return reply.fail(.stopped) }
        guard raft.role == .leader else { return reply.fail(.notLeader(leader: raft.leader)) }
        switch sessions.check(client: envelope.client, sequence: envelope.sequence) {
        case .duplicate(let index, let result):
            // Applied here already, so committed: answer without a new entry.
            reply.succeed(ProposeResult(index: index, term: raft.term(at: index) ?? raft.term, result: result))
            return
        case .stale:
            reply.fail(.staleSequence)
            return
        case .apply:
            break
        }
        do {
            let ticket = try raft.propose(envelope.encoded)
            supersede(at: ticket.index)
            proposals[ticket.index] = PendingProposal(term: ticket.term, deadline: ticks + timeoutTicks, reply: reply)
        } catch {
            reply.fail(map(error))
        }
    }

    /// A proposal of an earlier term whose index a new leader term reuses was truncated away:
    /// answer it now (found by the manifest simulator: its waiter was otherwise never resumed).
    private func supersede(at index: Index) {
        guard let old = proposals.removeValue(forKey: index) else { return }
        old.reply?.fail(.proposalLost)
        old.membership?.fail(.proposalLost)
    }

    private func read(_ query: [UInt8], _ reply: Reply<ReadResult>) {
        guard stopping == nil else { return reply.fail(.stopped) }
        let id = nextReadID
        nextReadID += 1
        do {
            try raft.readIndex(requestID: id)
            reads[id] = PendingRead(query: query, deadline: ticks + timeoutTicks, reply: reply)
        } catch {
            reply.fail(map(error))
        }
    }

    private func map(_ error: RaftError) -> NodeError {
        if case .notLeader(let leader) = error { return .notLeader(leader: leader) }
        return .refused(error)
    }

    /// A leader whose syncs keep being slow steps aside (see ``NodeOptions/slowSyncThreshold``).
    private func noteSync(took: Duration) {
        guard let threshold = options.slowSyncThreshold, raft.role == .leader else {
            slowSyncs = 0
            return
        }
        slowSyncs = took > threshold ? slowSyncs + 1 : 0
        guard slowSyncs >= options.slowSyncCount, stopping == nil,
            let best = raft.status.peers.filter({ raft.configuration.contains($0.id) && $0.id != raft.id }).max(by: { $0.match < $1.match })
        else { return }
        slowSyncs = 0
        options.log("disk too slow to lead (\(options.slowSyncCount) syncs in a row over \(threshold), the last \(took)): handing leadership to node \(best.id)")
        try? raft.transferLeadership(to: best.id)
    }

    /// Logs each new leader (with its term) and this node's stepping down: what an operator
    /// reads first after a failure. A node without a leader (campaigning, cut off) logs nothing
    /// more until one is known, so that an isolated node does not log every election timeout.
    private func noteLeadership(_ soft: SoftState) {
        let previous = loggedLeadership
        if previous.leader == raft.id && soft.role != .leader {
            options.log("stepped down at term \(raft.term)")
            loggedLeadership.leader = noNode
        }
        guard soft.leader != noNode, (soft.leader, raft.term) != previous else { return }
        loggedLeadership = (soft.leader, raft.term)
        NodeThreadMetrics.leaderChanges.increment()
        options.log(soft.leader == raft.id ? "leading at term \(raft.term)" : "following node \(soft.leader) at term \(raft.term)")
    }

    private func beginStop(transfer: Bool) {
        guard stopping == nil else { return }
        let waitTicks = UInt64(options.raft.electionTimeout * 2)
        stopping = (transfer, ticks + waitTicks)
        if transfer, raft.role == .leader,
            let best = raft.status.peers.filter({ raft.configuration.contains($0.id) }).max(by: { $0.match < $1.match })
        {
            try? raft.transferLeadership(to: best.id)
        } else {
            finished = true
        }
    }

    private func expireRequests() {
        for (index, p) in proposals where p.deadline <= ticks {
            p.reply?.fail(.timedOut)
            p.membership?.fail(.timedOut)
            proposals[index] = nil
        }
        for (id, r) in reads where r.deadline <= ticks {
            r.reply.fail(.timedOut)
            reads[id] = nil
        }
    }

    func failAll(_ error: NodeError) {
        for p in proposals.values {
            p.reply?.fail(error)
            p.membership?.fail(error)
        }
        for r in reads.values { r.reply.fail(error) }
        proposals = [:]
        reads = [:]
    }

    // MARK: Ready

    /// Handles every `Ready` the core has: persist, send, apply, answer.
    func drain() throws {
        while raft.hasReady {
            let rd = raft.ready()
            let started = ContinuousClock.now
            do {
                try storage.persist(rd)
            } catch {
                options.log("storage failed, stopping: \(error)")
                failAll(.storageFailed("\(error)"))
                throw error
            }
            if rd.mustPersist {
                let took = started.duration(to: .now)
                NodeThreadMetrics.syncs.recordNanoseconds(took.components.seconds * 1_000_000_000 + took.components.attoseconds / 1_000_000_000)
                noteSync(took: took)
            }
            if let soft = rd.softState { noteLeadership(soft) }
            if !rd.messages.isEmpty { transport.send(rd.messages) }
            if let s = rd.snapshot { try restore(s.data) }
            for e in rd.committedEntries { apply(e) }
            for rs in rd.readStates { reads[rs.requestID]?.index = rs.index }
            raft.advance(rd)
        }
        serveReads()
        try compactIfDue()
    }

    private func apply(_ e: Entry) {
        var result: Result<[UInt8], NodeError> = .success([])
        if case .command(let bytes) = e.payload {
            do {
                let envelope = try ProposalEnvelope(decoding: bytes)
                switch sessions.check(client: envelope.client, sequence: envelope.sequence) {
                case .apply:
                    let r = machine.apply(envelope.command, at: e.index)
                    sessions.record(client: envelope.client, sequence: envelope.sequence, index: e.index, result: r)
                    result = .success(r)
                case .duplicate(_, let r):
                    result = .success(r)
                case .stale:
                    result = .failure(.staleSequence)
                }
            } catch {
                result = .failure(.invalidRequest("undecodable proposal at index \(e.index): \(error.reason)"))
            }
        }
        guard let p = proposals.removeValue(forKey: e.index) else { return }
        guard p.term == e.term else {
            p.reply?.fail(.proposalLost)
            p.membership?.fail(.proposalLost)
            return
        }
        p.membership?.succeed(e.index)
        switch result {
        case .success(let r): p.reply?.succeed(ProposeResult(index: e.index, term: e.term, result: r))
        case .failure(let error): p.reply?.fail(error)
        }
    }

    private func serveReads() {
        let applied = raft.appliedIndex
        for (id, r) in reads {
            guard let index = r.index, index <= applied else { continue }
            r.reply.succeed(ReadResult(appliedIndex: applied, result: machine.query(r.query)))
            reads[id] = nil
        }
    }

    // MARK: Snapshots

    private func compactIfDue() throws {
        let applied = raft.appliedIndex
        guard applied >= raft.firstIndex - 1 + options.snapshotInterval else { return }
        var w = BinaryWriter()
        sessions.encode(into: &w)
        w.write(lengthPrefixed: machine.snapshot())
        let snapshot = try raft.compact(through: applied, snapshotData: w.bytes)
        try storage.compact(snapshot)
    }

    private func restore(_ data: [UInt8]) throws {
        (sessions, machine) = try Self.decodeSnapshot(data, into: emptyMachine)
    }

    /// A node snapshot's sessions, and `empty` restored from its state machine part.
    static func decodeSnapshot(_ data: [UInt8], into empty: any ReplicatedStateMachine) throws(StateMachineError) -> (
        Sessions, any ReplicatedStateMachine
    ) {
        var r = BinaryReader(data[...])
        let restoredSessions: Sessions
        let machineBytes: [UInt8]
        do throws(MalformedData) {
            restoredSessions = try Sessions.decode(from: &r)
            machineBytes = try r.readLengthPrefixed()
            try r.expectEnd("the node snapshot")
        } catch {
            throw StateMachineError("corrupt snapshot at byte \(error.offset): \(error.reason)")
        }
        var restored = empty
        try restored.restore(machineBytes)
        return (restoredSessions, restored)
    }
}

/// Decodes a node snapshot (sessions, then the key-value store and the manifest) exactly as a
/// restarting node does; throws what it would. For the snapshot fuzz target.
package func decodeNodeSnapshot(_ data: [UInt8]) throws(StateMachineError) {
    _ = try Driver.decodeSnapshot(data, into: FlotillaStateMachine(manifest: ManifestStore()))
}

/// A node snapshot holding `machine`'s state and one session: the fuzz target's seed.
package func encodeNodeSnapshot(_ machine: FlotillaStateMachine, client: String = "c", sequence: UInt64 = 1) -> [UInt8] {
    var sessions = Sessions()
    sessions.record(client: client, sequence: sequence, index: 1, result: [1, 2, 3])
    var w = BinaryWriter()
    sessions.encode(into: &w)
    w.write(lengthPrefixed: machine.snapshot())
    return w.bytes
}
