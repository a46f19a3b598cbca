/// The failure-detection and placement parameters of the leader.
public struct SchedulerConfig: Sendable, Hashable {
    /// How often agents heartbeat the leader.
    public var heartbeatInterval: Millis = 1_000
    /// An agent not heard from for this long is declared dead and its tasks re-queued. A new
    /// leader counts from the moment it took over (a grace period for agents to find it).
    public var deadAfter: Millis = 5_000
    /// An attempt running longer than this (unless its task sets its own) is failed and re-queued.
    public var defaultTaskTimeout: Millis = 30 * 60 * 1_000
    /// At most this many assignments per scheduling pass.
    public var maxAssignmentsPerPass = 512

    public init() {}

    /// Why these values cannot work together, or nil.
    public var problem: String? {
        if heartbeatInterval == 0 { return "heartbeat interval must be positive" }
        if deadAfter < 2 * heartbeatInterval {
            return "dead-agent timeout (\(deadAfter) ms) must be at least twice the heartbeat interval (\(heartbeatInterval) ms)"
        }
        if defaultTaskTimeout == 0 { return "task timeout must be positive" }
        return nil
    }
}

/// What the leader knows beyond the manifest: the time, when it became leader, and the last
/// heartbeat it received from each agent (kept in memory, never replicated).
public struct LeaderView: Sendable {
    public struct Heartbeat: Sendable, Hashable {
        public var at: Millis
        public var incarnation: UInt64
        public init(at: Millis, incarnation: UInt64) {
            self.at = at
            self.incarnation = incarnation
        }
    }
    public var now: Millis
    public var leaderSince: Millis
    public var heartbeats: [AgentID: Heartbeat]

    public init(now: Millis, leaderSince: Millis, heartbeats: [AgentID: Heartbeat]) {
        self.now = now
        self.leaderSince = leaderSince
        self.heartbeats = heartbeats
    }
}

/// The leader's decisions, as a pure function of the manifest and what the leader has seen: which
/// agents to declare dead, which attempts have timed out, and where to place pending tasks. The
/// node proposes the commands; applying them re-checks everything, so a decision made on a stale
/// view (a deposed leader, a race) is refused rather than recorded.
public enum Scheduler {
    public static func duties(manifest: TaskManifest, view: LeaderView, config: SchedulerConfig) -> [ManifestCommand] {
        var commands: [ManifestCommand] = []
        let now = view.now

        // 1. Failure detection.
        var dying: Set<AgentID> = []
        var placeable: [AgentID] = []
        for id in manifest.agents.keys.sorted() {
            let agent = manifest.agents[id]!
            guard agent.state == .live else { continue }
            let beat = view.heartbeats[id]
            let heard = beat.map { $0.incarnation == agent.incarnation ? $0.at : 0 } ?? 0
            let last = max(heard, view.leaderSince)
            if now > last && now - last > config.deadAfter {
                dying.insert(id)
                let why = heard == 0 ? "no heartbeat since this leader took over" : "no heartbeat for \(now - heard) ms"
                commands.append(.agentDead(agent: id, reason: why, at: now))
            } else if heard > 0 {
                // Only agents that reached this leader get work: they know where to report it.
                placeable.append(id)
            }
        }

        // 2. Timeouts of running attempts (agents being declared dead lose theirs anyway).
        for agent in manifest.activeByAgent.keys.sorted() where !dying.contains(agent) {
            for id in manifest.activeByAgent[agent]!.sorted() {
                guard let t = manifest[id], let a = t.activeAttempt else { continue }
                let timeout = t.spec.timeoutMillis > 0 ? t.spec.timeoutMillis : config.defaultTaskTimeout
                if now > a.assignedAt && now - a.assignedAt > timeout {
                    commands.append(
                        .fail(task: id, attempt: a.number, agent: a.agent, reason: "timed out after \(timeout) ms", at: now))
                }
            }
        }

        // 3. Placement: oldest pending task first, on the least loaded live agent with a free
        // slot, preferring an agent that has not failed this task before, then the task's zone.
        var free: [AgentID: Int] = [:]
        for id in placeable { free[id] = manifest.freeSlots(id) }
        var assigned = 0
        for id in manifest.pending {
            guard assigned < config.maxAssignmentsPerPass, free.values.contains(where: { $0 > 0 }) else { break }
            guard let t = manifest[id], !manifest.pausedJobs.contains(t.spec.job) else { continue }
            let triedBy = Set(t.attempts.map(\.agent))
            var best: (agent: AgentID, key: (Int, Int, Double, Int))?
            for agent in placeable {
                let slots = free[agent]!
                guard slots > 0, let record = manifest.agents[agent] else { continue }
                let busy = Int(record.slots) - slots
                let key = (
                    triedBy.contains(agent) ? 1 : 0,
                    t.spec.zone.isEmpty || record.zone == t.spec.zone ? 0 : 1,
                    Double(busy) / Double(record.slots),
                    busy
                )
                if best == nil || key < best!.key || (key == best!.key && agent < best!.agent) { best = (agent, key) }
            }
            guard let choice = best else { continue }
            commands.append(.assign(task: id, attempt: UInt32(t.attempts.count) + 1, agent: choice.agent, at: now))
            free[choice.agent]! -= 1
            assigned += 1
        }
        return commands
    }
}
