import FlotillaProto
public import Manifest
import Raft
import Synchronization

/// The leader's side of task execution, on every node (only the leader's is active): it follows
/// the node's role, keeps agents' heartbeats in memory, runs the ``Scheduler`` and proposes its
/// decisions, and pushes each committed assignment down the agent's assignment stream.
///
/// Nothing here is replicated except through commands, and every command is re-checked when
/// applied, so a decision taken on a stale view (this node was just deposed, an agent just
/// re-registered) is refused by the manifest instead of being recorded.
public final class Orchestrator: Sendable {
    public let node: NodeRuntime
    public let store: ManifestStore
    public let config: SchedulerConfig
    /// Longest pause between two scheduling passes when nothing happens.
    private let idlePass: Duration

    struct Leadership: Sendable, Hashable {
        var isLeader = false
        var term: Term = 0
        var leader: NodeID = noNode
        var since: Millis = 0
    }

    private struct AgentStream {
        var incarnation: UInt64
        var token: UInt64
        var continuation: AsyncStream<Flotilla_V1_Assignment>.Continuation
    }

    private struct State {
        var leadership = Leadership()
        var heartbeats: [AgentID: LeaderView.Heartbeat] = [:]
        var streams: [AgentID: AgentStream] = [:]
        var nextToken: UInt64 = 1
    }

    private let state = Mutex(State())
    private let kick: AsyncStream<Void>.Continuation
    private let kicks: AsyncStream<Void>

    public init(node: NodeRuntime, store: ManifestStore, config: SchedulerConfig, idlePass: Duration = .milliseconds(50)) {
        self.node = node
        self.store = store
        self.config = config
        self.idlePass = idlePass
        (kicks, kick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        store.observe { [weak self] command, reply in self?.applied(command, reply) }
    }

    var leadership: Leadership { state.withLock { $0.leadership } }

    /// Follows the node's role and schedules while it leads, until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { [kick] in
                // A pass at least every `idlePass`, and right after anything that frees or needs a slot.
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.idlePass)
                    kick.yield()
                }
            }
            for await _ in kicks {
                if Task.isCancelled { break }
                await pass()
            }
            group.cancelAll()
        }
        closeStreams()
    }

    private func pass() async {
        guard let status = try? await node.status() else { return }
        let now = wallClockMillis()
        let (isLeader, since, beats) = state.withLock { s -> (Bool, Millis, [AgentID: LeaderView.Heartbeat]) in
            let leading = status.role == .leader
            if leading && (!s.leadership.isLeader || s.leadership.term != status.term) {
                // A new reign: every agent must reach this node before it gets work, and gets
                // `deadAfter` from now to do so.
                s.leadership.since = now
                s.heartbeats = [:]
            }
            s.leadership.isLeader = leading
            s.leadership.term = status.term
            s.leadership.leader = status.leader
            return (leading, s.leadership.since, s.heartbeats)
        }
        guard isLeader else {
            closeStreams()
            return
        }
        let view = LeaderView(now: now, leaderSince: since, heartbeats: beats)
        let duties = store.read { Scheduler.duties(manifest: $0, view: view, config: config) }
        guard !duties.isEmpty else { return }
        await withDiscardingTaskGroup { group in
            for command in duties {
                group.addTask { _ = try? await self.node.propose(command.encoded) }
            }
        }
    }

    /// On the node thread, after a manifest command is applied.
    private func applied(_ command: ManifestCommand, _ reply: ManifestReply) {
        if case .assign(let task, let attempt, let agent, _) = command, reply == .done {
            let spec = store.read { $0[task]?.spec }
            if let spec {
                let assignment = Flotilla_V1_Assignment.with {
                    $0.taskID = task
                    $0.attempt = attempt
                    $0.spec = spec.proto
                }
                state.withLock { _ = $0.streams[agent]?.continuation.yield(assignment) }
            }
        }
        switch command {
        case .submit, .complete, .fail, .cancel, .retry, .agentJoined, .agentDead, .agentLeft, .resumeJob: kick.yield()
        default: break
        }
    }

    // MARK: Agents' calls (served by the leader only)

    /// Fails with ``NodeError/notLeader(leader:)`` unless this node leads.
    func requireLeader() throws(NodeError) {
        let l = leadership
        if !l.isLeader { throw .notLeader(leader: l.leader) }
    }

    /// Records a heartbeat; returns whether the agent must register again, and which of the
    /// attempts it runs are no longer current.
    func heartbeat(agent: AgentID, incarnation: UInt64, running: [(TaskID, UInt32)]) throws(NodeError) -> (reregister: Bool, abandon: [(TaskID, UInt32)]) {
        try requireLeader()
        let now = wallClockMillis()
        state.withLock { $0.heartbeats[agent] = LeaderView.Heartbeat(at: now, incarnation: incarnation) }
        return store.read { m in
            guard let a = m.agents[agent], a.state == .live, a.incarnation == incarnation else { return (true, []) }
            let stale = running.filter { task, attempt in
                guard let active = m[task]?.activeAttempt else { return true }
                return active.number != attempt || active.agent != agent
            }
            return (false, stale)
        }
    }

    /// Registers an agent (a replicated `agentJoined`, unless this incarnation is already live).
    func register(agent: AgentID, zone: String, slots: UInt16, incarnation: UInt64, info: String) async throws(NodeError) {
        try requireLeader()
        let now = wallClockMillis()
        state.withLock { $0.heartbeats[agent] = LeaderView.Heartbeat(at: now, incarnation: incarnation) }
        let known = store.read { m in
            m.agents[agent].map { $0.state == .live && $0.incarnation == incarnation && $0.zone == zone && $0.slots == slots } ?? false
        }
        if known { return }
        let command = ManifestCommand.agentJoined(agent: agent, zone: zone, slots: slots, incarnation: incarnation, info: info, at: now)
        let result = try await node.propose(command.encoded)
        if case .refused(let why)? = try? ManifestReply(decoding: result.result) { throw .invalidRequest(why) }
    }

    /// Opens the agent's assignment stream: its active attempts first, then each new assignment.
    func openAssignments(agent: AgentID, incarnation: UInt64) throws(NodeError) -> (AsyncStream<Flotilla_V1_Assignment>, UInt64) {
        try requireLeader()
        let (stream, continuation) = AsyncStream.makeStream(of: Flotilla_V1_Assignment.self)
        let token = state.withLock { s -> UInt64 in
            s.streams[agent]?.continuation.finish()
            let token = s.nextToken
            s.nextToken += 1
            s.streams[agent] = AgentStream(incarnation: incarnation, token: token, continuation: continuation)
            return token
        }
        // Registered first, then the current work: an assignment committed in between is sent
        // twice at worst, and the agent ignores an attempt it already has.
        let current = store.read { m -> [Flotilla_V1_Assignment] in
            guard m.agents[agent]?.incarnation == incarnation else { return [] }
            return (m.activeByAgent[agent] ?? []).sorted().compactMap { id in
                guard let t = m[id], let a = t.activeAttempt else { return nil }
                return .with {
                    $0.taskID = id
                    $0.attempt = a.number
                    $0.spec = t.spec.proto
                }
            }
        }
        for a in current { continuation.yield(a) }
        return (stream, token)
    }

    func closeAssignments(agent: AgentID, token: UInt64) {
        state.withLock { s in
            if s.streams[agent]?.token == token {
                s.streams[agent]?.continuation.finish()
                s.streams[agent] = nil
            }
        }
    }

    private func closeStreams() {
        state.withLock { s in
            for stream in s.streams.values { stream.continuation.finish() }
            s.streams = [:]
        }
    }

    /// The last heartbeat this node (as leader) received from each agent.
    func heartbeats() -> [AgentID: LeaderView.Heartbeat] { state.withLock { $0.heartbeats } }
}
