/// One Raft node as a pure, deterministic state machine.
///
/// It performs no I/O, reads no clock and draws randomness only from the generator it is given.
/// The shell that owns it (a real server, or the simulator) feeds it inputs:
/// - ``tick()`` at a fixed interval: the only notion of time;
/// - ``step(_:)`` for every message received from a peer;
/// - ``propose(_:)``, ``proposeConfigurationChange(_:)``, ``readIndex(requestID:)``,
///   ``transferLeadership(to:)`` and ``compact(through:snapshotData:)`` for client requests;
///
/// and after each input asks for ``ready()``: what to persist, send and apply, in the order that
/// ``Ready`` documents, then reports it done with ``advance(_:)``. The same inputs in the same
/// order always produce the same outputs, which is what lets the simulator replay a run exactly.
///
/// The shape follows etcd-io/raft's `RawNode`: roles are states of one value, not subclasses;
/// time is a tick count; the core hands back a `Ready` value instead of calling out.
public struct RaftNode: Sendable {
    public let config: RaftConfig
    public var id: NodeID { config.id }

    public private(set) var term: Term = 0
    public private(set) var vote: NodeID = noNode
    public private(set) var role: Role = .follower
    /// The leader of the current term, if known.
    public private(set) var leader: NodeID = noNode

    private(set) var log: RaftLog
    private var random: any RandomNumberGenerator & Sendable

    private var electionElapsed = 0
    private var heartbeatElapsed = 0
    private var randomizedElectionTimeout = 0

    /// Votes received in the current (pre-)election.
    private var votes: [NodeID: Bool] = [:]
    /// Leader only: replication state of each other voter.
    private var progress: [NodeID: Progress] = [:]
    /// Leader only: the node leadership is being handed to.
    public private(set) var leadTransferee: NodeID = noNode

    private struct PendingRead: Sendable {
        var round: UInt64
        var index: Index
        var from: NodeID
        var requestID: UInt64
    }
    /// Leader only: the read round, raised for each read request and echoed by heartbeats.
    private var readRound: UInt64 = 0
    private var readAcks: [NodeID: UInt64] = [:]
    private var pendingReads: [PendingRead] = []
    /// Leader only: reads that arrived before the leader committed an entry of its own term.
    private var readsAwaitingCommit: [(from: NodeID, requestID: UInt64)] = []

    /// The latest snapshot (taken here or received), sent to followers that fell behind it.
    public private(set) var snapshot: Snapshot?
    private struct IncomingSnapshot: Sendable {
        var metadata: SnapshotMetadata
        var data: [UInt8]
    }
    private var incomingSnapshot: IncomingSnapshot?
    /// A received snapshot that the next `Ready` hands to the shell.
    private var pendingSnapshot: Snapshot?

    private var messages: [Message] = []
    private var readStates: [ReadState] = []
    private var prevHardState: HardState
    private var prevSoftState: SoftState
    private var knownConfiguration: Configuration

    /// Creates a node from what its storage holds.
    ///
    /// - Parameters:
    ///   - state: the persisted hard state, snapshot and log (empty for a brand-new node).
    ///   - bootstrap: the initial voters, used only while neither the snapshot nor the log names a
    ///     configuration. Every founding member is given the same one; a node added later is given
    ///     ``Configuration/empty`` and learns its configuration from the leader.
    ///   - random: the source of election-timeout jitter.
    public init(
        config: RaftConfig,
        state: PersistentState = PersistentState(),
        bootstrap: Configuration = .empty,
        random: some RandomNumberGenerator & Sendable
    ) throws(RaftError) {
        try config.validate()
        let snapIndex = state.snapshot?.metadata.index ?? 0
        var expected = snapIndex + 1
        var lastTerm = state.snapshot?.metadata.term ?? 0
        for e in state.entries {
            guard e.index == expected else {
                throw .corruptState("log entry \(e.index) found where \(expected) was expected")
            }
            guard e.term >= lastTerm else {
                throw .corruptState("log entry \(e.index) has term \(e.term), below the term \(lastTerm) before it")
            }
            expected += 1
            lastTerm = e.term
        }
        guard state.hardState.commit <= expected - 1 else {
            throw .corruptState("commit index \(state.hardState.commit) is beyond the last log entry \(expected - 1)")
        }
        guard state.hardState.term >= lastTerm else {
            throw .corruptState("term \(state.hardState.term) is below the last log entry's term \(lastTerm)")
        }
        self.config = config
        self.random = random
        log = RaftLog(
            snapshot: state.snapshot?.metadata, entries: state.entries,
            commit: state.hardState.commit, bootstrap: bootstrap)
        snapshot = state.snapshot
        term = state.hardState.term
        vote = state.hardState.vote
        knownConfiguration = log.configuration
        prevHardState = state.hardState
        prevSoftState = SoftState(role: .follower, leader: noNode)
        becomeFollower(term: term, leader: noNode)
        prevHardState = hardState
    }

    // MARK: - Observation

    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    public var softState: SoftState { SoftState(role: role, leader: leader) }
    public var commitIndex: Index { log.committed }
    public var appliedIndex: Index { log.applied }
    public var lastIndex: Index { log.lastIndex }
    public var lastTerm: Term { log.lastTerm }
    public var firstIndex: Index { log.firstIndex }
    /// The newest configuration in the log, committed or not: the one this node acts on.
    public var configuration: Configuration { log.configuration }
    public var committedConfiguration: Configuration { log.committedConfiguration }
    public func term(at index: Index) -> Term? { log.term(at: index) }
    public func entry(at index: Index) -> Entry? { log.entry(at: index) }

    public var status: Status {
        var peers: [Status.Peer] = []
        if role == .leader {
            for peerID in progress.keys.sorted() {
                let p = progress[peerID]!
                let state: String
                switch p.state {
                case .probe: state = "probe"
                case .replicate: state = "replicate"
                case .snapshot(let t): state = "snapshot(\(t.index))"
                }
                peers.append(.init(id: peerID, match: p.match, next: p.next, state: state, recentActive: p.recentActive))
            }
        }
        return Status(
            id: id, role: role, term: term, vote: vote, leader: leader, commitIndex: log.committed,
            appliedIndex: log.applied, lastIndex: log.lastIndex, lastTerm: log.lastTerm,
            snapshotIndex: log.snapshotIndex, configuration: log.configuration, peers: peers,
            leadTransferee: leadTransferee)
    }

    /// Whether this node may start an election: it is a voter of its latest configuration, or
    /// that configuration (which removes it) is not committed yet and the node may be the only
    /// one able to commit it (dissertation §4.2.2). It never counts its own vote in the latter case.
    private var promotable: Bool {
        log.configuration.contains(id) || (log.configurationIndex > log.committed && !log.configuration.voters.isEmpty)
    }
    private func bug(_ b: InjectedBug) -> Bool { !config.injectedBugs.isEmpty && config.injectedBugs.contains(b) }

    // MARK: - Ready / advance

    /// Whether ``ready()`` has anything for the shell.
    public var hasReady: Bool {
        softState != prevSoftState || hardState != prevHardState || pendingSnapshot != nil
            || !messages.isEmpty || !readStates.isEmpty || log.stableIndex < log.lastIndex
            || (pendingSnapshot == nil && log.committed > log.applied)
    }

    /// Collects what the shell must persist, send and apply. See ``Ready`` for the order.
    public mutating func ready() -> Ready {
        var rd = Ready()
        let ss = softState
        if ss != prevSoftState { rd.softState = ss }
        let hs = hardState
        if hs != prevHardState { rd.hardState = hs }
        rd.snapshot = pendingSnapshot
        rd.entries = log.unstableEntries
        if pendingSnapshot == nil { rd.committedEntries = log.committedEntriesToApply(max: config.maxApplyBatch) }
        rd.messages = messages
        messages = []
        rd.readStates = readStates
        readStates = []
        return rd
    }

    /// Tells the core the shell has persisted, sent and applied `rd`.
    public mutating func advance(_ rd: Ready) {
        if let ss = rd.softState { prevSoftState = ss }
        if let hs = rd.hardState { prevHardState = hs }
        if let s = rd.snapshot, pendingSnapshot?.metadata == s.metadata { pendingSnapshot = nil }
        if let last = rd.entries.last { log.stable(to: last.index, term: last.term) }
        if let last = rd.committedEntries.last { log.applied = max(log.applied, last.index) }
        // A leader counts its own log toward commitment only once it is on disk.
        if role == .leader, maybeCommit() { broadcastAppend() }
    }

    // MARK: - Time

    /// Advances time by one tick.
    public mutating func tick() {
        if role == .leader {
            tickLeader()
        } else {
            electionElapsed += 1
            if promotable && electionElapsed >= randomizedElectionTimeout {
                electionElapsed = 0
                campaign(config.preVote ? .preVote : .election)
            }
        }
    }

    private mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTimeout {
            electionElapsed = 0
            if config.checkQuorum && !quorumActive() {
                becomeFollower(term: term, leader: noNode)
                return
            }
            if leadTransferee != noNode { leadTransferee = noNode }
        }
        for peer in progress.keys {
            if case .snapshot(var t) = progress[peer]!.state {
                t.idleTicks += 1
                progress[peer]!.state = .snapshot(t)
            }
        }
        if heartbeatElapsed >= config.heartbeatInterval {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
    }

    /// Whether a majority of voters (this node included) was heard from since the last check;
    /// starts a new check period.
    private mutating func quorumActive() -> Bool {
        var active = 0
        for v in log.configuration.voters {
            if v == id {
                active += 1
            } else if progress[v]?.recentActive == true {
                active += 1
            }
        }
        for peer in progress.keys { progress[peer]!.recentActive = false }
        return active >= log.configuration.quorum
    }

    // MARK: - Role changes

    private mutating func reset(term newTerm: Term) {
        if newTerm != term {
            term = newTerm
            vote = noNode
        }
        leader = noNode
        electionElapsed = 0
        heartbeatElapsed = 0
        randomizedElectionTimeout = config.electionTimeout + Int.random(in: 0..<config.electionTimeout, using: &random)
        leadTransferee = noNode
        votes = [:]
        progress = [:]
        readAcks = [:]
        pendingReads = []
        readsAwaitingCommit = []
    }

    private mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    private mutating func becomeLeader() {
        reset(term: term)
        role = .leader
        leader = id
        for v in log.configuration.voters where v != id {
            var p = Progress(next: log.lastIndex + 1)
            p.recentActive = true
            progress[v] = p
        }
        // An entry of the new term: committing it commits every earlier entry (§5.4.2).
        _ = appendLocal(.empty)
    }

    private enum CampaignKind { case preVote, election, transfer }

    private mutating func campaign(_ kind: CampaignKind) {
        let voteTerm: Term
        if kind == .preVote {
            reset(term: term)
            role = .preCandidate
            voteTerm = term + 1
        } else {
            reset(term: term + 1)
            role = .candidate
            vote = id
            voteTerm = term
        }
        votes[id] = true
        if tally() == .won {
            kind == .preVote ? campaign(.election) : becomeLeader()
            return
        }
        let request = VoteRequest(
            preVote: kind == .preVote, lastIndex: log.lastIndex, lastTerm: log.lastTerm,
            transfer: kind == .transfer)
        for v in log.configuration.voters where v != id {
            send(to: v, .voteRequest(request), term: voteTerm)
        }
    }

    private enum Tally { case won, lost, pending }

    private func tally() -> Tally {
        let voters = log.configuration.voters
        var granted = 0
        var rejected = 0
        for v in voters {
            switch votes[v] {
            case true?: granted += 1
            case false?: rejected += 1
            case nil: break
            }
        }
        let quorum = log.configuration.quorum
        if granted >= quorum { return .won }
        if rejected > voters.count - quorum { return .lost }
        return .pending
    }

    // MARK: - Messages

    private mutating func send(to: NodeID, _ payload: Message.Payload, term: Term? = nil) {
        messages.append(Message(from: id, to: to, term: term ?? self.term, payload: payload))
    }

    /// Handles a message from a peer. Stale, duplicated and malformed messages are ignored.
    public mutating func step(_ m: Message) {
        guard m.to == id, m.from != id, m.from != noNode else { return }
        if case .append(let a) = m.payload {
            // Drop malformed appends rather than trusting them with the log.
            for (k, e) in a.entries.enumerated() where e.index != a.prevIndex + 1 + Index(k) { return }
        }
        if m.term > term {
            if case .voteRequest(let r) = m.payload, !r.transfer,
                config.checkQuorum, leader != noNode, electionElapsed < config.electionTimeout
            {
                // Leader lease: we heard from a live leader within the election timeout, so this
                // candidate is a disruptive node (e.g. one rejoining after a partition). Ignore it.
                return
            }
            switch m.payload {
            case .voteRequest(let r) where r.preVote:
                break  // a pre-vote never changes our term
            case .voteResponse(let r) where r.preVote && r.granted:
                break  // granted pre-votes carry the term we would campaign in
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: noNode)
            }
        } else if m.term < term {
            switch m.payload {
            case .append, .heartbeat:
                // A deposed leader: tell it the newer term so it steps down. (With pre-vote or
                // check-quorum its term may never rise otherwise.)
                if config.checkQuorum || config.preVote {
                    send(to: m.from, .appendResponse(AppendResponse(success: false, index: 0)))
                }
            case .voteRequest(let r) where r.preVote:
                send(to: m.from, .voteResponse(VoteResponse(preVote: true, granted: false)))
            default:
                break
            }
            return
        }

        if case .voteRequest(let r) = m.payload {
            handleVoteRequest(m, r)
            return
        }
        switch role {
        case .leader: stepLeader(m)
        case .candidate, .preCandidate: stepCandidate(m)
        case .follower: stepFollower(m)
        }
    }

    private mutating func handleVoteRequest(_ m: Message, _ r: VoteRequest) {
        let canVote =
            vote == m.from || (vote == noNode && leader == noNode) || (r.preVote && m.term > term)
            || (!r.preVote && bug(.voteTwicePerTerm))
        if canVote && log.isUpToDate(lastIndex: r.lastIndex, lastTerm: r.lastTerm) {
            // Answer with the request's term: for a pre-vote it is the term the candidate would use.
            send(to: m.from, .voteResponse(VoteResponse(preVote: r.preVote, granted: true)), term: m.term)
            if !r.preVote {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            send(to: m.from, .voteResponse(VoteResponse(preVote: r.preVote, granted: false)))
        }
    }

    private mutating func stepCandidate(_ m: Message) {
        switch m.payload {
        case .append, .heartbeat, .snapshot:
            // A leader exists for our term.
            becomeFollower(term: term, leader: m.from)
            stepFollower(m)
        case .voteResponse(let r) where r.preVote == (role == .preCandidate):
            if votes[m.from] == nil { votes[m.from] = r.granted }
            switch tally() {
            case .won:
                if role == .preCandidate {
                    campaign(.election)
                } else {
                    becomeLeader()
                    broadcastAppend()
                }
            case .lost:
                becomeFollower(term: term, leader: noNode)
            case .pending:
                break
            }
        default:
            break
        }
    }

    private mutating func stepFollower(_ m: Message) {
        switch m.payload {
        case .append(let a):
            electionElapsed = 0
            leader = m.from
            handleAppend(from: m.from, a)
        case .heartbeat(let h):
            electionElapsed = 0
            leader = m.from
            _ = log.commit(to: min(h.commit, log.lastIndex))
            send(to: m.from, .heartbeatResponse(HeartbeatResponse(readRound: h.readRound)))
        case .snapshot(let chunk):
            electionElapsed = 0
            leader = m.from
            handleSnapshotChunk(from: m.from, chunk)
        case .timeoutNow:
            if promotable { campaign(.transfer) }
        case .readIndexResponse(let requestID, let index):
            readStates.append(ReadState(requestID: requestID, index: index))
        default:
            break
        }
    }

    private mutating func handleAppend(from: NodeID, _ a: AppendRequest) {
        if a.prevIndex < log.committed {
            // Everything up to our commit index already matches the leader's log.
            send(to: from, .appendResponse(AppendResponse(success: true, index: log.committed)))
            return
        }
        let matches =
            log.matchTerm(a.prevIndex, a.prevTerm)
            || (bug(.skipLogMatchingCheck) && a.prevIndex <= log.lastIndex)
        if matches {
            let lastNew = a.prevIndex + Index(a.entries.count)
            guard log.append(a.entries) else {
                // Would overwrite a committed entry: impossible with a correct leader. Refuse.
                send(to: from, .appendResponse(AppendResponse(success: false, index: a.prevIndex, hintIndex: log.committed)))
                return
            }
            configurationMayHaveChanged()
            _ = log.commit(to: min(a.commit, lastNew))
            send(to: from, .appendResponse(AppendResponse(success: true, index: lastNew)))
        } else {
            let hint = log.findConflict(byTerm: a.prevTerm, atOrBefore: a.prevIndex)
            send(
                to: from,
                .appendResponse(AppendResponse(success: false, index: a.prevIndex, hintIndex: hint.index, hintTerm: hint.term)))
        }
    }

    private mutating func handleSnapshotChunk(from: NodeID, _ c: SnapshotChunk) {
        let meta = c.metadata
        func respond(_ me: inout RaftNode, accepted: Bool, next: Int, done: Bool, match: Index) {
            me.send(
                to: from,
                .snapshotResponse(SnapshotResponse(snapshotIndex: meta.index, accepted: accepted, nextOffset: next, done: done, matchIndex: match)))
        }
        if meta.index <= log.committed || log.matchTerm(meta.index, meta.term) {
            // Our log already holds the snapshot's last entry, so it matches the leader's up to
            // there: installing the snapshot would throw away newer entries we acknowledged.
            incomingSnapshot = nil
            _ = log.commit(to: meta.index)
            respond(&self, accepted: true, next: c.totalSize, done: true, match: max(meta.index, log.committed))
            return
        }
        if c.offset == 0 { incomingSnapshot = IncomingSnapshot(metadata: meta, data: []) }
        guard var incoming = incomingSnapshot, incoming.metadata == meta, incoming.data.count == c.offset else {
            let expected = incomingSnapshot?.metadata == meta ? incomingSnapshot!.data.count : 0
            respond(&self, accepted: false, next: expected, done: false, match: 0)
            return
        }
        incoming.data.append(contentsOf: c.data)
        if c.done || incoming.data.count >= c.totalSize {
            let s = Snapshot(metadata: meta, data: incoming.data)
            log.restore(meta)
            snapshot = s
            pendingSnapshot = s
            incomingSnapshot = nil
            configurationMayHaveChanged()
            respond(&self, accepted: true, next: incoming.data.count, done: true, match: meta.index)
        } else {
            incomingSnapshot = incoming
            respond(&self, accepted: true, next: incoming.data.count, done: false, match: 0)
        }
    }

    // MARK: - Leader

    private mutating func stepLeader(_ m: Message) {
        switch m.payload {
        case .appendResponse(let r):
            handleAppendResponse(from: m.from, r)
        case .heartbeatResponse(let r):
            guard progress[m.from] != nil else { return }
            progress[m.from]!.recentActive = true
            progress[m.from]!.probeSent = false
            if case .snapshot(var t) = progress[m.from]!.state {
                // No answer to the chunk in flight for a while: it was probably lost.
                if t.idleTicks >= config.electionTimeout / 2 {
                    t.idleTicks = 0
                    progress[m.from]!.state = .snapshot(t)
                    sendSnapshotChunk(to: m.from)
                }
            } else {
                if progress[m.from]!.state == .replicate
                    && progress[m.from]!.inflights.count >= config.maxInflightAppends
                {
                    // The window is full and the follower is alive: answers were probably lost.
                    // Free one slot so an append goes out; a gap makes the follower reject it and
                    // replication falls back to probing.
                    progress[m.from]!.inflights.removeFirst()
                }
                if progress[m.from]!.match < log.lastIndex { sendAppend(to: m.from) }
            }
            acknowledgeRead(from: m.from, round: r.readRound)
        case .snapshotResponse(let r):
            handleSnapshotResponse(from: m.from, r)
        case .readIndex(let requestID):
            handleReadIndex(from: m.from, requestID: requestID)
        default:
            break
        }
    }

    private mutating func handleAppendResponse(from: NodeID, _ r: AppendResponse) {
        guard progress[from] != nil else { return }
        progress[from]!.recentActive = true
        if !r.success {
            var hint = r.hintIndex
            if r.hintTerm > 0 { hint = log.findConflict(byTerm: r.hintTerm, atOrBefore: r.hintIndex).index }
            if progress[from]!.decrease(rejected: r.index, hint: hint) {
                if progress[from]!.state == .replicate { progress[from]!.becomeProbe() }
                _ = sendAppend(to: from)
            }
            return
        }
        guard progress[from]!.update(match: r.index) else { return }
        switch progress[from]!.state {
        case .probe:
            progress[from]!.becomeReplicate()
        case .snapshot(let t):
            if progress[from]!.match >= t.index { progress[from]!.becomeProbe() }
        case .replicate:
            progress[from]!.freeInflights(upTo: r.index)
        }
        if maybeCommit() {
            broadcastAppend()
        } else {
            while sendAppend(to: from, allowEmpty: false) {}
        }
        if from == leadTransferee && progress[from]?.match == log.lastIndex {
            send(to: from, .timeoutNow)
        }
    }

    private mutating func handleSnapshotResponse(from: NodeID, _ r: SnapshotResponse) {
        guard progress[from] != nil else { return }
        progress[from]!.recentActive = true
        guard case .snapshot(var t) = progress[from]!.state, t.index == r.snapshotIndex else { return }
        if r.done {
            _ = progress[from]!.update(match: r.matchIndex)
            progress[from]!.becomeProbe()
            _ = sendAppend(to: from)
        } else {
            t.offset = r.nextOffset
            t.idleTicks = 0
            progress[from]!.state = .snapshot(t)
            sendSnapshotChunk(to: from)
        }
    }

    /// Sends the entries `to` is missing (or a snapshot, if they are compacted away). Returns
    /// whether a message was sent.
    @discardableResult
    private mutating func sendAppend(to: NodeID, allowEmpty: Bool = true) -> Bool {
        guard var p = progress[to], !p.isPaused(maxInflight: config.maxInflightAppends) else { return false }
        let prevIndex = p.next - 1
        guard let prevTerm = log.term(at: prevIndex),
            let entries = log.entries(from: p.next, maxCount: config.maxEntriesPerAppend, maxBytes: config.maxAppendBytes)
        else {
            startSnapshot(to: to)
            return false
        }
        if entries.isEmpty && !allowEmpty { return false }
        send(to: to, .append(AppendRequest(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: log.committed)))
        switch p.state {
        case .replicate:
            if let last = entries.last {
                p.next = last.index + 1
                p.inflights.append(last.index)
            }
        case .probe:
            p.probeSent = true
        case .snapshot:
            break
        }
        progress[to] = p
        return true
    }

    private mutating func startSnapshot(to: NodeID) {
        guard let s = snapshot, progress[to]?.recentActive == true else { return }
        progress[to]!.becomeSnapshot(index: s.metadata.index)
        sendSnapshotChunk(to: to)
    }

    private mutating func sendSnapshotChunk(to: NodeID) {
        guard let s = snapshot, case .snapshot(var t) = progress[to]?.state else { return }
        if t.index != s.metadata.index || t.offset > s.data.count {
            // We compacted again since the transfer started: send the newer snapshot from the start.
            t = Progress.SnapshotTransfer(index: s.metadata.index, offset: 0)
            progress[to]!.state = .snapshot(t)
        }
        let end = min(s.data.count, t.offset + config.snapshotChunkSize)
        send(
            to: to,
            .snapshot(SnapshotChunk(
                metadata: s.metadata, totalSize: s.data.count, offset: t.offset,
                data: Array(s.data[t.offset..<end]), done: end == s.data.count)))
    }

    private mutating func broadcastAppend() {
        for v in log.configuration.voters where v != id { sendAppend(to: v) }
    }

    private mutating func broadcastHeartbeat() {
        for v in log.configuration.voters where v != id {
            guard let p = progress[v] else { continue }
            send(to: v, .heartbeat(Heartbeat(commit: min(p.match, log.committed), readRound: readRound)))
        }
    }

    /// Raises the commit index to the highest index stored on a majority, provided that entry is
    /// of the current term (§5.4.2: counting replicas of older-term entries is unsafe, Figure 8).
    private mutating func maybeCommit() -> Bool {
        let configuration = log.configuration
        guard !configuration.voters.isEmpty else { return false }
        var matches = configuration.voters.map { $0 == id ? log.stableIndex : (progress[$0]?.match ?? 0) }
        matches.sort(by: >)
        let index = matches[configuration.quorum - 1]
        guard index > log.committed else { return false }
        if !bug(.commitPreviousTermEntries) {
            guard log.term(at: index) == term else { return false }
        }
        _ = log.commit(to: index)
        didCommit()
        return true
    }

    private mutating func didCommit() {
        if log.term(at: log.committed) == term && !readsAwaitingCommit.isEmpty {
            let waiting = readsAwaitingCommit
            readsAwaitingCommit = []
            for r in waiting { handleReadIndex(from: r.from, requestID: r.requestID) }
        }
        if !log.committedConfiguration.contains(id) {
            // This leader was removed and the removal is committed: hand over and step down.
            let best = log.configuration.voters.filter { progress[$0]?.match == log.lastIndex }.first
            if let best { send(to: best, .timeoutNow) }
            becomeFollower(term: term, leader: noNode)
        }
    }

    /// Appends an entry of the current term to the leader's own log.
    private mutating func appendLocal(_ payload: Entry.Payload) -> ProposalTicket {
        let e = Entry(term: term, index: log.lastIndex + 1, payload: payload)
        _ = log.append([e])
        configurationMayHaveChanged()
        return ProposalTicket(index: e.index, term: e.term)
    }

    /// Keeps leader state in step with the configuration in the log (which takes effect as soon as
    /// its entry is appended, and reverts if the entry is overwritten).
    private mutating func configurationMayHaveChanged() {
        let c = log.configuration
        guard c != knownConfiguration else { return }
        knownConfiguration = c
        guard role == .leader else { return }
        for v in c.voters where v != id && progress[v] == nil {
            var p = Progress(next: log.lastIndex + 1)
            p.recentActive = true
            progress[v] = p
        }
        for peer in Array(progress.keys) where !c.contains(peer) { progress[peer] = nil }
        if leadTransferee != noNode && !c.contains(leadTransferee) { leadTransferee = noNode }
    }

    // MARK: - Client requests

    /// Appends a command to the leader's log. It is committed once the ticket's entry is applied
    /// with the ticket's term.
    public mutating func propose(_ command: [UInt8]) throws(RaftError) -> ProposalTicket {
        try propose([command])[0]
    }

    /// Appends several commands at once: they share append messages and one disk write.
    public mutating func propose(_ commands: [[UInt8]]) throws(RaftError) -> [ProposalTicket] {
        try checkCanPropose(count: commands.count)
        let tickets = commands.map { appendLocal(.command($0)) }
        broadcastAppend()
        return tickets
    }

    private func checkCanPropose(count: Int) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard leadTransferee == noNode else { throw .transferInProgress(to: leadTransferee) }
        guard Int(log.lastIndex - log.committed) + count <= config.maxUncommittedEntries else { throw .proposalQueueFull }
    }

    /// Proposes adding or removing one voter. Only one change may be in flight, and only once this
    /// leader has committed an entry of its own term (the fix for the single-server change bug
    /// described on raft-dev in 2015).
    public mutating func proposeConfigurationChange(_ change: ConfigurationChange) throws(RaftError) -> ProposalTicket {
        try checkCanPropose(count: 1)
        guard log.configurationIndex <= log.committed, log.term(at: log.committed) == term else {
            throw .configurationChangePending
        }
        let current = log.configuration
        let next = current.applying(change)
        switch change {
        case .addVoter(let v) where current.contains(v):
            throw .invalidConfigurationChange("node \(v) is already a voter")
        case .removeVoter(let v) where !current.contains(v):
            throw .invalidConfigurationChange("node \(v) is not a voter")
        default:
            break
        }
        guard !next.voters.isEmpty else { throw .invalidConfigurationChange("the cluster would have no voters left") }
        let ticket = appendLocal(.configuration(next))
        broadcastAppend()
        return ticket
    }

    /// Asks for a linearizable read. When leadership is confirmed, a ``ReadState`` with this
    /// `requestID` appears in a later ``Ready``; serve the read once the state machine has applied
    /// its index. On a follower, the request is forwarded to the leader. A request may be lost
    /// (leader change, lost message): retry after a timeout with a new id.
    public mutating func readIndex(requestID: UInt64) throws(RaftError) {
        if role == .leader {
            handleReadIndex(from: id, requestID: requestID)
        } else {
            guard leader != noNode else { throw .notLeader(leader: noNode) }
            send(to: leader, .readIndex(requestID: requestID))
        }
    }

    private mutating func handleReadIndex(from: NodeID, requestID: UInt64) {
        guard log.term(at: log.committed) == term else {
            // Until an entry of this term commits, the leader does not know the true commit index.
            readsAwaitingCommit.append((from, requestID))
            return
        }
        if bug(.readWithoutQuorum) || log.configuration.voters == [id] {
            releaseRead(to: from, requestID: requestID, index: log.committed)
            return
        }
        readRound += 1
        pendingReads.append(PendingRead(round: readRound, index: log.committed, from: from, requestID: requestID))
        broadcastHeartbeat()
    }

    private mutating func acknowledgeRead(from: NodeID, round: UInt64) {
        guard !pendingReads.isEmpty, round > (readAcks[from] ?? 0) else { return }
        readAcks[from] = round
        let configuration = log.configuration
        var rounds = configuration.voters.map { $0 == id ? readRound : (readAcks[$0] ?? 0) }
        rounds.sort(by: >)
        let confirmed = rounds[configuration.quorum - 1]
        var k = 0
        while k < pendingReads.count, pendingReads[k].round <= confirmed {
            let r = pendingReads[k]
            releaseRead(to: r.from, requestID: r.requestID, index: r.index)
            k += 1
        }
        pendingReads.removeFirst(k)
    }

    private mutating func releaseRead(to: NodeID, requestID: UInt64, index: Index) {
        if to == id {
            readStates.append(ReadState(requestID: requestID, index: index))
        } else {
            send(to: to, .readIndexResponse(requestID: requestID, index: index))
        }
    }

    /// Hands leadership to `target` (§3.10 of the dissertation): proposals are refused meanwhile;
    /// once `target` has the whole log it is told to campaign at once. Gives up after an election
    /// timeout.
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard target != id, log.configuration.contains(target), progress[target] != nil else {
            throw .invalidTransferTarget(target)
        }
        if leadTransferee == target { return }
        leadTransferee = target
        electionElapsed = 0
        if progress[target]!.match == log.lastIndex {
            send(to: target, .timeoutNow)
        } else {
            sendAppend(to: target)
        }
    }

    /// Records a snapshot the state machine took after applying `index`, and discards the log up
    /// to it. Returns the snapshot for the shell to persist (before it discards stored entries).
    public mutating func compact(through index: Index, snapshotData: [UInt8]) throws(RaftError) -> Snapshot {
        guard index <= log.applied else {
            throw .invalidCompaction("index \(index) is not applied yet (applied: \(log.applied))")
        }
        guard index > log.snapshotIndex, let t = log.term(at: index) else {
            throw .invalidCompaction("the log is already compacted through \(log.snapshotIndex)")
        }
        let s = Snapshot(
            metadata: SnapshotMetadata(index: index, term: t, configuration: log.configuration(at: index)),
            data: snapshotData)
        log.compact(through: index)
        snapshot = s
        return s
    }
}
