import Raft

/// The Global Task Manifest: every task, its attempts and result, and every agent the cluster
/// knows. It is the replicated state machine of the control plane: every node applies the same
/// commands in the same order and reaches the same manifest, byte for byte (``snapshot()``).
///
/// Execution is at-least-once, recording is exactly-once: each assignment is an attempt with a
/// number, and a report (started, complete, fail) is recorded only if it names the task's current
/// active attempt and its agent. A report from a superseded attempt (an agent declared dead that
/// comes back with a result, an assignment made by a deposed leader) is refused, so a task never
/// has two outcomes.
public struct TaskManifest: Sendable {
    public internal(set) var tasks: [TaskID: TaskRecord] = [:]
    public internal(set) var agents: [AgentID: AgentRecord] = [:]
    public internal(set) var pausedJobs: Set<String> = []
    /// The next task id.
    public internal(set) var nextTaskID: TaskID = 1
    /// Idempotency keys and the tasks they created.
    var keys: [String: (first: TaskID, count: UInt32)] = [:]
    /// Pending task ids in ascending order: the scheduler places the oldest first.
    public internal(set) var pending: [TaskID] = []
    /// Task ids with an active attempt, per agent.
    public internal(set) var activeByAgent: [AgentID: Set<TaskID>] = [:]
    /// How many tasks are in each state.
    public internal(set) var counts: [TaskState: Int] = [:]
    /// Test-only: deliberate bugs that the manifest simulator's tests switch on to show its checkers
    /// catch them (`ManifestSimulationTests`). Empty everywhere else; neither replicated nor part of
    /// ``snapshot()`` (a manifest restored from a snapshot starts without them).
    package var injectedBugs: Set<ManifestBug> = []

    public init() {}

    /// The most tasks one submission creates: the one limit the service checks requests against
    /// (`RequestLimits.tasksPerSubmission`) and the manifest re-checks on apply. (It was 1,000,000
    /// here against 100,000 in the service; a fuzzed million-task command took a minute to apply.)
    public static let maxTasksPerSubmission: UInt32 = 100_000

    public subscript(task: TaskID) -> TaskRecord? { tasks[task] }

    /// Tasks in id order, optionally only those in `state`; at most `limit`, starting after `after`.
    /// Any `after` and `limit` are safe: the scan never steps past the last id, so no id a client
    /// sends (up to `UInt64.max`) can overflow it.
    public func list(state: TaskState? = nil, after: TaskID = 0, limit: Int = .max) -> [TaskRecord] {
        var out: [TaskRecord] = []
        guard after < nextTaskID, limit > 0 else { return out }
        var id = after + 1
        while id < nextTaskID && out.count < limit {
            if let t = tasks[id], state == nil || t.state == state { out.append(t) }
            id += 1
        }
        return out
    }

    /// Free slots of a live agent.
    public func freeSlots(_ agent: AgentID) -> Int {
        guard let a = agents[agent], a.state == .live else { return 0 }
        return max(0, Int(a.slots) - (activeByAgent[agent]?.count ?? 0))
    }

    /// Recomputes what is derived from the tasks (after a restore).
    mutating func rebuildIndexes() {
        pending = []
        activeByAgent = [:]
        counts = [:]
        for id in tasks.keys.sorted() {
            let t = tasks[id]!
            counts[t.state, default: 0] += 1
            if t.state == .pending { pending.append(id) }
            if let a = t.activeAttempt { activeByAgent[a.agent, default: []].insert(id) }
        }
    }

    // MARK: Applying commands

    /// Applies a command; deterministic.
    public mutating func apply(_ command: ManifestCommand) -> ManifestReply {
        var reply = ManifestReply.done
        switch command {
        case .submit(let key, let spec, let count, let at): return submit(key: key, spec: spec, count: count, at: at)
        case .assign(let task, let attempt, let agent, let at): return assign(task, attempt, agent, at)
        case .started(let task, let attempt, let agent, let at):
            guard case .ok(var t) = fenced(task, attempt, agent, &reply) else { return reply }
            t.attempts[t.attempts.count - 1].startedAt = at
            if t.state == .assigned { setState(&t, .running) }
            tasks[task] = t
            return .done
        case .complete(let task, let attempt, let agent, let result, let at):
            guard case .ok(var t) = fenced(task, attempt, agent, &reply, outcome: true) else { return reply }
            t.attempts[t.attempts.count - 1].outcome = .succeeded
            t.attempts[t.attempts.count - 1].endedAt = at
            t.result = result
            t.endedAt = at
            deactivate(task, agent)
            setState(&t, .succeeded)
            tasks[task] = t
            return .done
        case .fail(let task, let attempt, let agent, let reason, let at):
            guard case .ok(var t) = fenced(task, attempt, agent, &reply, outcome: true) else { return reply }
            endAttempt(&t, .failed(reason), at: at)
            tasks[task] = t
            return .done
        case .cancel(let task, let reason, let at): return cancel(task, reason, at)
        case .retry(let task, _): return retry(task)
        case .agentJoined(let agent, let zone, let slots, let incarnation, let info, let at):
            return agentJoined(agent, zone: zone, slots: slots, incarnation: incarnation, info: info, at: at)
        case .agentLeft(let agent, let at): return agentGone(agent, state: .left, reason: "left", at: at)
        case .agentDead(let agent, let reason, let at): return agentGone(agent, state: .dead, reason: reason, at: at)
        case .pauseJob(let job, _):
            pausedJobs.insert(job)
            return .done
        case .resumeJob(let job, _):
            pausedJobs.remove(job)
            return .done
        }
    }

    private mutating func submit(key: String, spec: TaskSpec, count: UInt32, at: Millis) -> ManifestReply {
        if !key.isEmpty, injectedBugs.isEmpty || !injectedBugs.contains(.ignoreSubmissionKeys), let existing = keys[key] {
            return .submitted(first: existing.first, count: existing.count, existing: true)
        }
        if let problem = spec.problem { return .refused(problem) }
        guard count >= 1, count <= Self.maxTasksPerSubmission else {
            return .refused("count must be between 1 and \(Self.maxTasksPerSubmission), not \(count)")
        }
        let first = nextTaskID
        for k in 0..<UInt64(count) {
            var s = spec
            s.seed = spec.seed &+ k
            let id = first + k
            tasks[id] = TaskRecord(
                id: id, key: key, spec: s, state: .pending, submittedAt: at, endedAt: nil, attempts: [], failures: 0,
                result: nil, reason: "")
            pending.append(id)  // ids only grow: `pending` stays sorted
            counts[.pending, default: 0] += 1
        }
        nextTaskID += UInt64(count)
        if !key.isEmpty { keys[key] = (first, count) }
        return .submitted(first: first, count: count, existing: false)
    }

    private mutating func assign(_ id: TaskID, _ attempt: UInt32, _ agent: AgentID, _ at: Millis) -> ManifestReply {
        guard var t = tasks[id] else { return .refused("no task \(id)") }
        guard t.state == .pending else { return .refused("task \(id) is \(t.state), not pending") }
        guard attempt == UInt32(t.attempts.count) + 1 else {
            return .refused("task \(id)'s next attempt is \(t.attempts.count + 1), not \(attempt)")
        }
        guard freeSlots(agent) > 0 else {
            return .refused(agents[agent]?.state == .live ? "agent \(agent) has no free slot" : "agent \(agent) is not live")
        }
        t.attempts.append(Attempt(number: attempt, agent: agent, assignedAt: at, startedAt: nil, endedAt: nil, outcome: .active))
        removePending(id)
        activeByAgent[agent, default: []].insert(id)
        setState(&t, .assigned)
        tasks[id] = t
        return .done
    }

    private enum Fenced {
        case ok(TaskRecord)
        case refused
    }

    /// The task, if the report names its active attempt and that attempt's agent (the fence);
    /// otherwise sets `reply` to the refusal. `outcome`: the report is a complete or a fail.
    private func fenced(_ id: TaskID, _ attempt: UInt32, _ agent: AgentID, _ reply: inout ManifestReply, outcome: Bool = false) -> Fenced {
        guard let t = tasks[id] else {
            reply = .refused("no task \(id)")
            return .refused
        }
        if outcome, !injectedBugs.isEmpty, injectedBugs.contains(.unfencedReports), !t.attempts.isEmpty { return .ok(t) }
        guard let active = t.activeAttempt, active.number == attempt, active.agent == agent else {
            reply = .refused("attempt \(attempt) of task \(id) by \(agent) is not the task's current attempt (task is \(t.state))")
            return .refused
        }
        return .ok(t)
    }

    /// Ends the active attempt without success: the task goes back to pending, or fails for good
    /// when its attempts are used up.
    private mutating func endAttempt(_ t: inout TaskRecord, _ outcome: AttemptOutcome, at: Millis) {
        let k = t.attempts.count - 1
        let agent = t.attempts[k].agent
        t.attempts[k].outcome = outcome
        t.attempts[k].endedAt = at
        deactivate(t.id, agent)
        t.failures += 1
        if t.failures >= t.spec.maxAttempts {
            t.reason = "failed after \(t.failures) attempt\(t.failures == 1 ? "" : "s"); last: \(outcome)"
            t.endedAt = at
            setState(&t, .failed)
        } else {
            setState(&t, .pending)
            insertPending(t.id)
        }
    }

    private mutating func cancel(_ id: TaskID, _ reason: String, _ at: Millis) -> ManifestReply {
        guard var t = tasks[id] else { return .refused("no task \(id)") }
        guard !t.state.isTerminal else { return .refused("task \(id) is already \(t.state)") }
        if t.state == .pending { removePending(id) }
        if let active = t.activeAttempt {
            t.attempts[t.attempts.count - 1].outcome = .abandoned("cancelled")
            t.attempts[t.attempts.count - 1].endedAt = at
            deactivate(id, active.agent)
        }
        t.reason = reason.isEmpty ? "cancelled" : reason
        t.endedAt = at
        setState(&t, .cancelled)
        tasks[id] = t
        return .done
    }

    private mutating func retry(_ id: TaskID) -> ManifestReply {
        guard var t = tasks[id] else { return .refused("no task \(id)") }
        guard t.state == .failed || t.state == .cancelled else { return .refused("task \(id) is \(t.state): only failed or cancelled tasks are retried") }
        t.failures = 0
        t.reason = ""
        t.endedAt = nil
        setState(&t, .pending)
        insertPending(id)
        tasks[id] = t
        return .done
    }

    private mutating func agentJoined(
        _ id: AgentID, zone: String, slots: UInt16, incarnation: UInt64, info: String, at: Millis
    ) -> ManifestReply {
        guard !id.isEmpty, id.utf8.count <= 256 else { return .refused("an agent id must have 1 to 256 bytes") }
        if let a = agents[id], a.state == .live, a.incarnation == incarnation {
            // The same process registering again (e.g. with a new leader): refresh, keep its work.
            // Zero slots is how a draining agent asks for no new work while it finishes its own.
            agents[id]!.zone = zone
            agents[id]!.slots = slots
            agents[id]!.info = info
            return .done
        }
        guard slots >= 1 else { return .refused("an agent needs at least one slot") }
        // A new process: whatever the previous incarnation was running is gone.
        abandonAll(of: id, reason: "agent \(id) restarted", at: at)
        agents[id] = AgentRecord(id: id, zone: zone, slots: slots, incarnation: incarnation, state: .live, since: at, reason: "", info: info)
        return .done
    }

    private mutating func agentGone(_ id: AgentID, state: AgentRecord.State, reason: String, at: Millis) -> ManifestReply {
        guard let a = agents[id] else { return .refused("no agent \(id)") }
        guard a.state == .live else { return .refused("agent \(id) is already \(a.state)") }
        let keepWork = state == .dead && !injectedBugs.isEmpty && injectedBugs.contains(.noRequeueOnDeath)
        if !keepWork { abandonAll(of: id, reason: state == .dead ? "agent \(id) declared dead: \(reason)" : "agent \(id) left", at: at) }
        agents[id]!.state = state
        agents[id]!.since = at
        agents[id]!.reason = reason
        return .done
    }

    private mutating func abandonAll(of agent: AgentID, reason: String, at: Millis) {
        // Sorted: the order must not depend on hashing.
        for id in (activeByAgent[agent] ?? []).sorted() {
            guard var t = tasks[id] else { continue }
            endAttempt(&t, .abandoned(reason), at: at)
            tasks[id] = t
        }
        activeByAgent[agent] = nil
    }

    private mutating func setState(_ t: inout TaskRecord, _ state: TaskState) {
        counts[t.state, default: 0] -= 1
        counts[state, default: 0] += 1
        t.state = state
    }

    private mutating func deactivate(_ id: TaskID, _ agent: AgentID) {
        activeByAgent[agent]?.remove(id)
        if activeByAgent[agent]?.isEmpty == true { activeByAgent[agent] = nil }
    }

    private mutating func insertPending(_ id: TaskID) {
        var lo = 0
        var hi = pending.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pending[mid] < id { lo = mid + 1 } else { hi = mid }
        }
        if lo == pending.count || pending[lo] != id { pending.insert(id, at: lo) }
    }

    private mutating func removePending(_ id: TaskID) {
        var lo = 0
        var hi = pending.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pending[mid] < id { lo = mid + 1 } else { hi = mid }
        }
        if lo < pending.count && pending[lo] == id { pending.remove(at: lo) }
    }
}

/// Deliberate manifest bugs, for the simulator's tests only (see ``TaskManifest/injectedBugs``).
package enum ManifestBug: String, Sendable, Hashable, CaseIterable {
    /// No fence: a complete or fail naming any attempt of the task (a superseded one, another
    /// agent's) is recorded against the task as if it were the current attempt.
    case unfencedReports
    /// `agentDead` marks the agent dead but leaves its attempts active: its tasks are not re-queued.
    case noRequeueOnDeath
    /// A submission whose key was seen before creates new tasks (idempotency lost): for the chaos
    /// suite's test that its checker catches a real cluster's duplicates.
    case ignoreSubmissionKeys
}
