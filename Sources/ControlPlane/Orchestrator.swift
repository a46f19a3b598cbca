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

    private struct Waiter {
        var remaining: Set<TaskID>
        var continuation: CheckedContinuation<Bool, Never>
        /// The timeout, cancelled when the tasks end first.
        var timer: Task<Void, Never>?
    }

    private struct State {
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 1
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
            // The role is followed on its own, every 20 ms, so that a pass waiting for its
            // proposals (up to the request timeout, when this node was just deposed) does not
            // leave a stale "leader" flag that agents' calls would trust.
            group.addTask {
                while !Task.isCancelled {
                    await self.refreshLeadership()
                    try? await Task.sleep(for: .milliseconds(20))
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

    /// Reads the node's role; starts a new reign (grace period, fresh heartbeats) or ends one.
    private func refreshLeadership() async {
        guard let status = try? await node.status() else { return }
        let now = wallClockMillis()
        let leading = state.withLock { s -> Bool in
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
            return leading
        }
        if !leading { closeStreams() }
    }

    private func pass() async {
        await refreshLeadership()
        let now = wallClockMillis()
        let (isLeader, since, beats) = state.withLock { s in (s.leadership.isLeader, s.leadership.since, s.heartbeats) }
        guard isLeader else { return }
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
        switch command {
        case .complete(let task, _, _, _, _), .fail(let task, _, _, _, _), .cancel(let task, _, _): wake(checking: [task])
        case .agentJoined, .agentDead, .agentLeft: wake(checking: nil)
        default: break
        }
    }

    // MARK: Waiting for tasks

    /// Returns true once every task in `ids` is terminal on this node, false after `timeout`.
    public func awaitTerminal(_ ids: Set<TaskID>, timeout: Duration) async -> Bool {
        let id = state.withLock { s -> UInt64 in
            defer { s.nextWaiter += 1 }
            return s.nextWaiter
        }
        // A caller that goes away (its RPC cancelled: the client's deadline passed or it hung up)
        // takes its waiter and timer with it, so abandoned waits cannot pile up for an hour.
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                // Registered first, then checked and timed: nothing can resume it before it exists,
                // and a transition applied in between is not missed.
                state.withLock { $0.waiters[id] = Waiter(remaining: ids, continuation: continuation) }
                let timer = Task {
                    try? await Task.sleep(for: timeout)
                    self.endWait(id)
                }
                state.withLock { $0.waiters[id]?.timer = timer }
                if Task.isCancelled { endWait(id) }
                wake(checking: nil, only: id)
            }
        } onCancel: {
            endWait(id)
        }
    }

    /// Ends a wait before its tasks are all terminal (timeout or cancellation): answers false.
    private func endWait(_ id: UInt64) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(returning: false)
    }

    /// How many callers are waiting in ``awaitTerminal(_:timeout:)`` (for tests).
    package var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Resumes the waiters whose tasks are all terminal (checking only `tasks`, or all of theirs).
    private func wake(checking tasks: Set<TaskID>?, only: UInt64? = nil) {
        let candidates = state.withLock { s in
            s.waiters.filter { (only == nil || $0.key == only) && (tasks == nil || !$0.value.remaining.isDisjoint(with: tasks!)) }
                .map { ($0.key, $0.value.remaining) }
        }
        guard !candidates.isEmpty else { return }
        let updated = store.read { m in
            candidates.map { id, remaining in (id, remaining.filter { m[$0].map { !$0.state.isTerminal } ?? false }) }
        }
        let finished = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            var out: [CheckedContinuation<Bool, Never>] = []
            for (id, remaining) in updated {
                if remaining.isEmpty {
                    if let w = s.waiters.removeValue(forKey: id) {
                        w.timer?.cancel()
                        out.append(w.continuation)
                    }
                } else {
                    s.waiters[id]?.remaining = remaining
                }
            }
            return out
        }
        for c in finished { c.resume(returning: true) }
    }

    // MARK: Agents' calls (served by the leader only)

    /// Fails with ``NodeError/notLeader(leader:)`` unless this node leads now: asks the node
    /// itself (one round trip through its inbox), not the flag the 20 ms refresh keeps.
    func requireLeader() async throws(NodeError) {
        let status = try await node.status()
        if status.role != .leader { throw .notLeader(leader: status.leader) }
    }

    /// Records a heartbeat; returns whether the agent must register again, and which of the
    /// attempts it runs are no longer current.
    func heartbeat(agent: AgentID, incarnation: UInt64, running: [(TaskID, UInt32)]) async throws(NodeError) -> (reregister: Bool, abandon: [(TaskID, UInt32)]) {
        try await requireLeader()
        let now = wallClockMillis()
        state.withLock { $0.heartbeats[agent] = LeaderView.Heartbeat(at: now, incarnation: incarnation) }
        return store.read { m in
            guard let a = m.agents[agent], a.state == .live, a.incarnation == incarnation else { return (true, []) }
            // Only attempts this node knows to be over. Its manifest may lag the log (a new leader
            // catching up, a deposed one): an attempt it has not seen yet is left running. An
            // ended attempt stays ended in every later state, so this is safe on a stale node.
            let stale = running.filter { task, attempt in
                guard let t = m[task], let a = t.attempts.first(where: { $0.number == attempt }) else { return false }
                return a.outcome != .active || a.agent != agent
            }
            return (false, stale)
        }
    }

    /// Registers an agent (a replicated `agentJoined`, unless this incarnation is already live).
    func register(agent: AgentID, zone: String, slots: UInt16, incarnation: UInt64, info: String) async throws(NodeError) {
        try await requireLeader()
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

    /// An agent stopping of its own accord: it is marked left and its active attempts go back to
    /// the queue now, not once it would be declared dead. Only the incarnation that registered
    /// may leave (a late request of an earlier process must not remove its successor). Returns
    /// whether it left, and how many attempts were re-queued.
    func leave(agent: AgentID, incarnation: UInt64) async throws(NodeError) -> (left: Bool, requeued: Int) {
        try await requireLeader()
        let active: Int? = store.read { m in
            guard let a = m.agents[agent], a.state == .live, a.incarnation == incarnation else { return nil }
            return m.activeByAgent[agent]?.count ?? 0
        }
        guard let active else { return (false, 0) }
        let result = try await node.propose(ManifestCommand.agentLeft(agent: agent, at: wallClockMillis()).encoded)
        if case .refused? = try? ManifestReply(decoding: result.result) { return (false, 0) }
        state.withLock { s in
            s.heartbeats[agent] = nil
            s.streams[agent]?.continuation.finish()
        }
        return (true, active)
    }

    /// Opens the agent's assignment stream: its active attempts first, then each new assignment.
    func openAssignments(agent: AgentID, incarnation: UInt64) async throws(NodeError) -> (AsyncStream<Flotilla_V1_Assignment>, UInt64) {
        try await requireLeader()
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
