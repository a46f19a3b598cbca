import BenchStatistics
import ChaosCheck
import ControlPlane
import FaultProxy
import FlotillaProto
import Foundation
import GRPCCore
import LocalCluster
import Manifest
import Raft
import Synchronization

/// The chaos suite's scenarios (issue 6): faults injected into a real cluster under load.
enum ChaosScenario: String, CaseIterable, Sendable {
    case leaderKill = "leader-kill"
    case agentKill = "agent-kill"
    case partition
    case cascade
    case pause
    case disk
    case powerLoss = "power-loss"
    case wan

    var summary: String {
        switch self {
        case .leaderKill: return "SIGKILL the leader under load, restart it later"
        case .agentKill: return "SIGKILL an agent running a task; its task runs elsewhere"
        case .partition: return "zone split 3|2 with the leader on each side, the leader isolated, a one-way cut"
        case .cascade: return "a node and an agent fail at once, then the leader before recovery ends"
        case .pause: return "SIGSTOP the leader past the election timeout, then SIGCONT: it must step down"
        case .disk: return "the leader's fsync becomes slow (it must hand leadership over), then fails (it must stop)"
        case .powerLoss: return "SIGKILL every node and agent at once, restart them all"
        case .wan: return "two clouds 40 ± 10 ms apart (WAN timing), kill the leader"
        }
    }
}

/// How long and how hard a chaos run pushes.
struct ChaosSettings: Sendable {
    var nodes = 5
    var agents = 3
    var clients = 4
    /// Clients that send each operation to one random node, without retrying.
    var pinnedClients = 2
    var size: UInt32 = 128
    /// Load before the first fault (the throughput baseline is measured in it).
    var warmup = 3.0
    /// How long a fault lasts.
    var hold = 3.0
    /// Load after a fault heals, before the next.
    var recovery = 3.0
    var seed: UInt64 = 1
    var quick = false
}

/// When one fault struck and what the cluster did about it (times in seconds of the history clock).
struct Episode: Sendable {
    var scenario: ChaosScenario
    var name: String
    var faultAt: Double
    var endAt: Double = 0
    var detectMs: Double?
    var newLeaderMs: Double?
    var firstCommitMs: Double?
    /// When the leader declared the killed agent dead.
    var agentDeadMs: Double?
    /// Agents killed in the episode (for the reassignment time).
    var killedAgents: [String] = []
    /// Measured from a restart rather than from the fault (power loss).
    var fromRestart = false
    /// A leader cut off from every peer (or stopped) from `faultAt` to `endAt`: whatever it was
    /// sent in that time could not reach anyone, so none of it may commit.
    var deposed: NodeID?
}

/// What a scenario produced.
struct ChaosResult: Sendable {
    var scenario: ChaosScenario
    var seed: UInt64
    var report: CheckReport
    /// Broken expectations besides the checker's anomalies (a paused leader that did not step down, ...).
    var failures: [String]
    var output: PhaseOutput
    var dir: String
    var passed: Bool { report.isValid && failures.isEmpty }
}

/// The polling the observers do while a fault lasts.
private let pollInterval: Duration = .milliseconds(50)

/// Runs one scenario on a fresh cluster: load, faults, settle, check. Never throws for a broken
/// guarantee (that is the result's verdict); throws only if the run itself could not be made.
func runChaosScenario(_ scenario: ChaosScenario, settings: ChaosSettings, workDir: String, keep: Bool, progress: Progress) async throws -> ChaosResult {
    let dir = "\(workDir)/chaos-\(scenario.rawValue)"
    var scheduler = SchedulerConfig()
    scheduler.heartbeatInterval = scenario == .wan ? 500 : 250
    scheduler.deadAfter = scenario == .wan ? 3_000 : 1_500
    progress.line("[chaos] \(scenario.rawValue) (seed \(settings.seed)): \(scenario.summary)")
    let cluster = try await ChaosCluster.start(
        nodes: settings.nodes, agents: settings.agents, dir: dir, scheduler: scheduler, profile: scenario == .wan ? .wan : .lan,
        seed: settings.seed)
    if scenario == .wan {
        cluster.setLatency(across: .latency(40, jitter: 10), inside: .latency(0.5, jitter: 0.25))
    }
    let history = ChaosHistory()
    var failures: [String] = []
    var episodes: [Episode] = []
    var final: FinalState?
    var finalTasks: [Flotilla_V1_Task] = []
    do {
        (episodes, failures) = try await ClusterClient.withCluster(cluster.bench.addresses, timeout: .seconds(8), maxBackoff: .milliseconds(100)) { client in
            let stop = StopFlag()
            return try await withThrowingTaskGroup(of: ([Episode], [String])?.self) { group in
                for c in 0..<(settings.clients + settings.pinnedClients) {
                    group.addTask {
                        await runChaosClient(
                            c, pinned: c >= settings.clients, client: client, history: history, size: settings.size,
                            seed: settings.seed &* 1000 &+ UInt64(c), stop: stop)
                        return nil
                    }
                }
                group.addTask {
                    defer { stop.set() }
                    try await Task.sleep(for: .seconds(settings.warmup))
                    var driver = ChaosDriver(scenario: scenario, settings: settings, cluster: cluster, client: client, history: history, progress: progress)
                    try await driver.run()
                    try await Task.sleep(for: .seconds(settings.recovery))
                    return (driver.episodes, driver.failures)
                }
                var result: ([Episode], [String]) = ([], [])
                for try await r in group { if let r { result = r } }
                return result
            }
        }
        progress.line("[chaos] \(scenario.rawValue): settling (every fault healed, every process back)")
        (final, finalTasks) = try await settle(cluster)
    } catch {
        await cluster.stop(purge: false)
        progress.line("[chaos] \(scenario.rawValue): the run broke: \(error); logs kept in \(dir)")
        throw error
    }
    let ops = history.operations
    let report = HistoryChecker.report(history: ops, final: final!)
    let deposed = deposedLeaderCommits(episodes: episodes, operations: ops, final: final!)
    failures += deposed.failures
    var out = measure(scenario: scenario, episodes: episodes, history: history, tasks: finalTasks, report: report, settings: settings)
    out.clusterConfig = cluster.config.yaml
    if episodes.contains(where: { $0.deposed != nil }) {
        // How much the deposed-leader check had to look at.
        out.add("submissions_to_deposed_leader", "count", Double(deposed.checked), ["scenario": scenario.rawValue])
    }
    let passed = report.isValid && failures.isEmpty
    if !passed || keep {
        try? historyText(ops, report: report, failures: failures).write(toFile: dir + "/history.txt", atomically: true, encoding: .utf8)
    }
    await cluster.stop(purge: passed && !keep)
    return ChaosResult(scenario: scenario, seed: settings.seed, report: report, failures: failures, output: out, dir: dir)
}

/// Injects one scenario's faults, one episode after another, timing each recovery.
struct ChaosDriver {
    let scenario: ChaosScenario
    let settings: ChaosSettings
    let cluster: ChaosCluster
    let client: ClusterClient
    let history: ChaosHistory
    let progress: Progress
    var episodes: [Episode] = []
    var failures: [String] = []
    var rng: ChaosRandom

    init(scenario: ChaosScenario, settings: ChaosSettings, cluster: ChaosCluster, client: ClusterClient, history: ChaosHistory, progress: Progress) {
        self.scenario = scenario
        self.settings = settings
        self.cluster = cluster
        self.client = client
        self.history = history
        self.progress = progress
        rng = ChaosRandom(seed: settings.seed ^ 0xC4A0_5EED)
    }

    private var hold: Duration { .milliseconds(Int(settings.hold * 1000)) }
    private var recovery: Duration { .milliseconds(Int(settings.recovery * 1000)) }

    mutating func run() async throws {
        switch scenario {
        case .leaderKill, .wan:
            let old = try await leader()
            let e = begin("kill the leader (node \(old.id))")
            try cluster.signal(old.id, SIGKILL)
            await observe(e, old: old, down: [old.id], until: hold + .seconds(10))
            try await sleepUntil(e.faultAt + settings.hold)
            _ = try cluster.local.start(old.id)
            finish()
        case .agentKill:
            let (agent, task) = try await busyAgent()
            var e = begin("kill agent \(agent)" + (task.map { " while it runs task \($0)" } ?? ""))
            e.killedAgents = [agent]
            episodes[episodes.count - 1] = e
            try cluster.signalAgent(agent, SIGKILL)
            await observe(e, old: nil, down: [], agent: agent, until: hold + .seconds(5))
            try await sleepUntil(e.faultAt + settings.hold)
            _ = try cluster.local.startAgent(agent)
            finish()
        case .partition:
            try await partitionEpisodes()
        case .cascade:
            try await cascade()
        case .pause:
            let old = try await leader()
            let e = begin("SIGSTOP the leader (node \(old.id))")
            try cluster.signal(old.id, SIGSTOP)
            // Longer than the election timeout, whatever --hold says.
            let pause = max(hold, .seconds(2))
            let prober = probeDeposed(old.id, for: pause, episode: episodes.count)
            await observe(e, old: old, down: [old.id], until: pause)
            try await sleepUntil(e.faultAt + seconds(pause))
            try cluster.signal(old.id, SIGCONT)
            episodes[episodes.count - 1].deposed = old.id
            if !(await steppedDown(old, within: .seconds(10))) {
                failures.append("pause: node \(old.id), leader in term \(old.term), still claims leadership 10 s after SIGCONT")
            }
            await prober.value
            finish()
        case .disk:
            try await diskEpisodes()
        case .powerLoss:
            let old = try await leader()
            var e = begin("SIGKILL every node and agent at once")
            for id in cluster.nodeIDs { try? cluster.signal(id, SIGKILL) }
            for a in cluster.local.agentIDs() { try? cluster.signalAgent(a, SIGKILL) }
            try await Task.sleep(for: .seconds(1))
            for id in cluster.nodeIDs { _ = try cluster.local.start(id) }
            for a in cluster.local.agentIDs() { _ = try cluster.local.startAgent(a) }
            // Recovery is timed from the restart.
            e.faultAt = history.now()
            e.fromRestart = true
            episodes[episodes.count - 1] = e
            await observe(e, old: (0, old.term), down: [], until: .seconds(30))
            try await sleepUntil(e.faultAt + settings.hold)
            finish()
        }
    }

    // MARK: Scenarios with several episodes

    private mutating func partitionEpisodes() async throws {
        let zones = Dictionary(grouping: cluster.nodeIDs, by: cluster.zone)
        let ordered = zones.values.sorted { $0.count > $1.count }
        let majority = Set(ordered[0]), minority = Set(ordered.dropFirst().flatMap { $0 })
        // 1. Zone split with the leader in the majority: the majority carries on.
        var old = try await leader(in: majority)
        var e = begin("zone split \(majority.sorted())|\(minority.sorted()), leader \(old.id) in the majority")
        cluster.cut(majority, minority)
        await observe(e, old: old, down: [], expectNewLeader: false, until: hold)
        try await heal(after: e)
        // 2. Zone split with the leader in the minority: the majority elects a new one; the old
        // leader commits nothing and serves no read (the pinned clients try).
        old = try await leader(in: minority)
        e = begin("zone split, leader \(old.id) in the minority")
        cluster.cut(majority, minority)
        episodes[episodes.count - 1].deposed = old.id
        var prober = probeDeposed(old.id, for: hold, episode: episodes.count)
        await observe(e, old: old, down: [], until: hold + .seconds(10))
        try await heal(after: e)
        await prober.value
        // 3. The leader alone.
        old = try await leader()
        let others = Set(cluster.nodeIDs).subtracting([old.id])
        e = begin("isolate the leader (node \(old.id))")
        cluster.cut([old.id], others)
        episodes[episodes.count - 1].deposed = old.id
        prober = probeDeposed(old.id, for: hold, episode: episodes.count)
        await observe(e, old: old, down: [], until: hold + .seconds(10))
        try await heal(after: e)
        await prober.value
        // 4. One way: the leader still sends but hears nobody (check-quorum must depose it).
        old = try await leader()
        e = begin("one-way cut: nobody reaches the leader (node \(old.id)), it reaches everybody")
        cluster.cut(Set(cluster.nodeIDs).subtracting([old.id]), [old.id], oneWay: true)
        await observe(e, old: old, down: [], until: hold + .seconds(10))
        try await heal(after: e)
    }

    private mutating func cascade() async throws {
        let old = try await leader()
        let followers = cluster.nodeIDs.filter { $0 != old.id }
        let first = rng.pick(followers)
        let (agent, _) = try await busyAgent()
        var e = begin("kill node \(first) and agent \(agent) at once, then the leader (node \(old.id)) 300 ms later")
        e.killedAgents = [agent]
        episodes[episodes.count - 1] = e
        try cluster.signal(first, SIGKILL)
        try cluster.signalAgent(agent, SIGKILL)
        try await Task.sleep(for: .milliseconds(300))
        try cluster.signal(old.id, SIGKILL)
        await observe(e, old: old, down: [first, old.id], agent: agent, until: hold + .seconds(5))
        try await sleepUntil(e.faultAt + settings.hold)
        _ = try cluster.local.start(first)
        _ = try cluster.local.start(old.id)
        _ = try cluster.local.startAgent(agent)
        finish()
        try await Task.sleep(for: recovery)
    }

    private mutating func diskEpisodes() async throws {
        // 1. Slow fsync on the leader: it must hand leadership over.
        var old = try await leader()
        // 70 ms: heartbeats still arrive within the election timeout (100 ms on a LAN), so no
        // follower would depose it; the leader must notice and hand over by itself.
        var e = begin("the leader's (node \(old.id)) fsync takes 70 ms")
        try cluster.setDiskFault(old.id, "delay 70")
        await observe(e, old: old, down: [], until: hold + .seconds(5))
        if episodes.last?.newLeaderMs == nil {
            failures.append("disk: node \(old.id) kept leading with a 70 ms fsync for \(settings.hold + 5) s")
        } else if !((try? String(contentsOfFile: cluster.local.logPath(old.id), encoding: .utf8)) ?? "").contains("disk too slow to lead") {
            failures.append("disk: node \(old.id) lost leadership with a slow disk, but not by handing it over (its log does not say 'disk too slow to lead')")
        }
        try await sleepUntil(e.faultAt + settings.hold)
        try cluster.setDiskFault(old.id, "")
        finish()
        try await Task.sleep(for: recovery)
        // 2. A failing fsync on the leader: it must stop, and lose nothing acknowledged.
        old = try await leader()
        e = begin("the leader's (node \(old.id)) next fsync fails")
        let pid = cluster.local.pid(old.id)
        try cluster.setDiskFault(old.id, "fail")
        await observe(e, old: old, down: [old.id], until: hold + .seconds(5))
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while let pid, processIsAlive(pid), ContinuousClock.now < deadline { try await Task.sleep(for: pollInterval) }
        if let pid, processIsAlive(pid) {
            failures.append("disk: node \(old.id) still runs 10 s after its fsync failed")
            kill(pid, SIGKILL)
            try await Task.sleep(for: .milliseconds(200))
        } else {
            let log = (try? String(contentsOfFile: cluster.local.logPath(old.id), encoding: .utf8)) ?? ""
            if !log.contains("storage failed") { failures.append("disk: node \(old.id) stopped without saying its storage failed") }
        }
        try await sleepUntil(e.faultAt + settings.hold)
        try cluster.setDiskFault(old.id, "")
        _ = try cluster.local.start(old.id)
        finish()
        try await Task.sleep(for: recovery)
    }

    // MARK: Steps

    private mutating func begin(_ name: String) -> Episode {
        let e = Episode(scenario: scenario, name: name, faultAt: history.now())
        episodes.append(e)
        progress.line("[chaos] \(scenario.rawValue): \(name)")
        return e
    }

    private mutating func finish() { episodes[episodes.count - 1].endAt = history.now() }

    private mutating func heal(after e: Episode) async throws {
        try await sleepUntil(e.faultAt + settings.hold)
        cluster.healNetwork()
        finish()
        try await Task.sleep(for: recovery)
    }

    private func sleepUntil(_ t: Double) async throws {
        let left = t - history.now()
        if left > 0 { try await Task.sleep(for: .milliseconds(Int(left * 1000))) }
    }

    private func seconds(_ d: Duration) -> Double { millis(d) / 1000 }

    /// The current leader (waits up to 10 s for one).
    private func leader() async throws -> (id: NodeID, term: UInt64) {
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while ContinuousClock.now < deadline {
            if let l = await cluster.currentLeader(client) { return l }
            try await Task.sleep(for: pollInterval)
        }
        throw BenchError("\(scenario.rawValue): no leader for 10 s before a fault")
    }

    /// A leader among `nodes`: moves leadership there first if needed.
    private mutating func leader(in nodes: Set<NodeID>) async throws -> (id: NodeID, term: UInt64) {
        var current = try await leader()
        var tries = 0
        while !nodes.contains(current.id) && tries < 5 {
            let target = rng.pick(nodes.sorted())
            try? await client.callOnce(on: cluster.address(current.id)) {
                _ = try await Flotilla_V1_ControlPlane.Client(wrapping: $0).transferLeadership(.with { $0.target = target })
            }
            try await Task.sleep(for: .milliseconds(300))
            current = try await leader()
            tries += 1
        }
        guard nodes.contains(current.id) else { throw BenchError("could not move leadership to one of \(nodes.sorted())") }
        return current
    }

    /// An agent running a task now (or, if none is, any live agent), and the task.
    private mutating func busyAgent() async throws -> (String, UInt64?) {
        for _ in 0..<40 {
            let running = try? await client.call(timeout: .seconds(2)) {
                try await TasksClient(wrapping: $0).listTasks(.with { $0.state = "running"; $0.limit = 1000 })
            }
            let candidates = (running?.tasks ?? []).compactMap { t in t.attempts.last.map { ($0.agent, t.id) } }
                .filter { cluster.local.isAgentRunning($0.0) }
            if !candidates.isEmpty { return rng.pick(candidates) }
            try await Task.sleep(for: pollInterval)
        }
        let live = cluster.local.agentIDs().filter(cluster.local.isAgentRunning)
        guard !live.isEmpty else { throw BenchError("no live agent to kill") }
        return (rng.pick(live), nil)
    }

    /// Sends a submission to `node` every 100 ms for `duration` without waiting for answers (a
    /// stopped or cut-off node answers nothing): material for the deposed-leader check.
    private func probeDeposed(_ node: NodeID, for duration: Duration, episode: Int) -> Task<Void, Never> {
        let address = cluster.address(node), client = client, history = history, size = settings.size
        return Task {
            await withTaskGroup(of: Void.self) { group in
                let end = ContinuousClock.now.advanced(by: duration)
                var k = 0
                while ContinuousClock.now < end {
                    k += 1
                    let key = "pin-deposed-\(episode)-\(k)@\(node)"
                    group.addTask { await pinnedSubmit(key: key, node: address, client: client, c: -2, history: history, size: size, seed: 9) }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    private func steppedDown(_ old: (id: NodeID, term: UInt64), within: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: within)
        while ContinuousClock.now < deadline {
            if let s = await client.status(of: cluster.address(old.id), timeout: .milliseconds(500)), s.role != "leader" || s.term > old.term {
                return true
            }
            try? await Task.sleep(for: pollInterval)
        }
        return false
    }

    /// Times the cluster's reaction to the episode's fault, for at most `until`: when a
    /// surviving node first noticed (a new term, or no leader), when a new leader was elected
    /// (a higher term than `old`'s), when a submission made after the fault first committed, and,
    /// for `agent`, when the leader declared it dead.
    private mutating func observe(
        _ e: Episode, old: (id: NodeID, term: UInt64)?, down: Set<NodeID>, agent: String? = nil, expectNewLeader: Bool = true, until: Duration
    ) async {
        let start = e.faultAt
        let history = history, cluster = cluster, client = client
        let probeKey = "probe-\(scenario.rawValue)-\(episodes.count)"
        let size = settings.size
        let probeNodes = cluster.nodeIDs.filter { !down.contains($0) }.map(cluster.address)
        let window = start + max(10, seconds(until))
        // The first commit after the fault, as a client sees it: every reachable node is probed
        // independently (one attempt at a time, 1 s each; a follower refuses at once), with one
        // key, so that at most one task is created; the first acknowledgement wins.
        async let commit: Double? = withTaskGroup(of: Double?.self) { group in
            for node in probeNodes {
                group.addTask {
                    while history.now() < window && !Task.isCancelled {
                        if await pinnedSubmit(key: probeKey, node: node, client: client, c: -1, history: history, size: size, seed: 7, timeout: .seconds(1)) {
                            return (history.now() - start) * 1000
                        }
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    return nil
                }
            }
            for await t in group {
                if let t {
                    group.cancelAll()
                    return t
                }
            }
            return nil
        }
        async let agentDead: Double? = {
            guard let agent else { return nil }
            while history.now() < start + 30 {
                let agents = try? await client.call(timeout: .seconds(1)) { try await TasksClient(wrapping: $0).listAgents(.init()) }
                if agents?.agents.first(where: { $0.id == agent })?.state == "dead" { return (history.now() - start) * 1000 }
                try? await Task.sleep(for: pollInterval)
            }
            return nil
        }()
        var detect: Double?
        var elected: Double?
        if let old {
            let watched = cluster.nodeIDs.filter { !down.contains($0) }
            let deadline = start + seconds(until)
            while history.now() < deadline && elected == nil {
                // All nodes at once, so that one slow to answer does not delay what the others show.
                let statuses = await withTaskGroup(of: Flotilla_V1_NodeStatus?.self) { group in
                    for id in watched { group.addTask { await client.status(of: cluster.address(id), timeout: .milliseconds(200)) } }
                    var all: [Flotilla_V1_NodeStatus] = []
                    for await s in group { if let s { all.append(s) } }
                    return all
                }
                let t = (history.now() - start) * 1000
                for s in statuses {
                    if detect == nil, s.id != old.id, s.term > old.term || s.leaderID != old.id { detect = t }
                    if s.role == "leader", s.term > old.term {
                        elected = t
                        if detect == nil { detect = t }
                    }
                }
                try? await Task.sleep(for: pollInterval)
            }
            if expectNewLeader && elected == nil && !e.fromRestart {
                failures.append("\(e.name): no new leader within \(seconds(until)) s")
            }
            if e.fromRestart && elected == nil { failures.append("\(e.name): no leader within 30 s of the restart") }
        }
        let (c, a) = await (commit, agentDead)
        let k = episodes.count - 1
        episodes[k].newLeaderMs = elected
        episodes[k].detectMs = old != nil ? detect : a
        episodes[k].agentDeadMs = a
        episodes[k].firstCommitMs = c
        if c == nil { failures.append("\(e.name): no submission committed within the window") }
        if agent != nil && a == nil { failures.append("\(e.name): agent \(agent!) was not declared dead within 30 s") }
    }
}

// MARK: - Settle and measure

/// Heals every fault, restarts every process, waits for every task to be terminal, then reads
/// every node's manifest (again, until they agree or 10 s pass).
private func settle(_ cluster: ChaosCluster) async throws -> (FinalState, [Flotilla_V1_Task]) {
    try await cluster.restoreAll()
    guard try await cluster.bench.waitForLeader(seconds: 30) != nil else { throw BenchError("no leader after healing everything") }
    try await cluster.bench.waitForAgents(live: Set(cluster.local.agentIDs()), seconds: 60)
    return try await ClusterClient.withCluster(cluster.bench.addresses, timeout: .seconds(30), maxBackoff: .milliseconds(100)) { client in
        let deadline = Date().addingTimeInterval(300)
        while true {
            let openTasks = try await client.listTasks().tasks.filter { !["succeeded", "failed", "cancelled"].contains($0.state) }
            if openTasks.isEmpty { break }
            guard Date() < deadline else {
                let sample = openTasks.prefix(10).map { t in
                    "\(t.id) \(t.state)" + (t.attempts.last.map { " (attempt \($0.number) on \($0.agent), \($0.outcome))" } ?? "")
                }
                throw BenchError("\(openTasks.count) tasks still not terminal 5 minutes after healing: \(sample.joined(separator: ", "))")
            }
            _ = try? await client.awaitTasks(openTasks.map(\.id), seconds: 60)
        }
        var nodes: [UInt64: [UInt64: FinalTask]] = [:]
        var tasks: [Flotilla_V1_Task] = []
        var unreadable: [String] = []
        for attempt in 0..<40 {
            nodes = [:]
            unreadable = []
            for n in cluster.config.nodes {
                do {
                    let list = try await client.callOnce(on: n.address) {
                        try await TasksClient(wrapping: $0).listTasks(.with { $0.limit = 100_000 })
                    }
                    if tasks.isEmpty || n.id == cluster.config.nodes[0].id { tasks = list.tasks }
                    nodes[n.id] = Dictionary(uniqueKeysWithValues: list.tasks.map { ($0.id, FinalTask(key: $0.key, observation($0))) })
                } catch {
                    unreadable.append("node \(n.id): \(error)")
                }
            }
            if (unreadable.isEmpty && Set(nodes.values.map { $0 }).count == 1) || attempt == 39 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        if !unreadable.isEmpty { throw BenchError("after healing, a node's manifest could not be read: \(unreadable.joined(separator: "; "))") }
        return (FinalState(nodes: nodes), tasks)
    }
}

/// Submissions sent to a leader while it was cut off from every peer or stopped (pinned clients
/// name the node in the key) could not reach anyone: none may be acknowledged, and none may be in
/// the settled manifest. (Not checked for the one-way cut: there the old leader still reaches its
/// followers, and what it appended may legitimately commit under the next leader.)
private func deposedLeaderCommits(
    episodes: [Episode], operations: [ChaosCheck.Operation], final: FinalState
) -> (failures: [String], checked: Int) {
    let keys = Set(final.nodes.values.flatMap { $0.values.compactMap(\.key) })
    var failures: [String] = []
    var checked = 0
    for e in episodes {
        guard let node = e.deposed else { continue }
        // 50 ms after the fault: a request sent just before it may have been replicated in time.
        for op in operations where op.invokedAt > e.faultAt + 0.05 && op.invokedAt < e.endAt {
            guard case .submit(let key, _, let outcome) = op.kind, key.hasPrefix("pin"), key.hasSuffix("@\(node)") else { continue }
            checked += 1
            if case .ok = outcome, op.completedAt != nil {
                failures.append("\(e.name): node \(node) acknowledged submission \"\(key)\" (op \(op.id)) while cut off or stopped")
            } else if keys.contains(key) {
                failures.append("\(e.name): submission \"\(key)\" (op \(op.id)), sent to node \(node) while it was cut off or stopped, committed")
            }
        }
    }
    return (failures, checked)
}

/// Per episode: detection, new leader, first commit, time to full throughput, throughput dip,
/// reassignment; per scenario: the checker's counts.
private func measure(
    scenario: ChaosScenario, episodes: [Episode], history: ChaosHistory, tasks: [Flotilla_V1_Task], report: CheckReport, settings: ChaosSettings
) -> PhaseOutput {
    var out = PhaseOutput()
    let s = ["scenario": scenario.rawValue]
    // Acknowledged submissions per half second: the control plane's throughput.
    let bin = 0.5
    let acks = history.ackTimes
    func rate(_ t: Double) -> Double { Double(acks.filter { $0 >= t && $0 < t + bin }.count) / bin }
    let warm = stride(from: 1.0, to: max(1.0, settings.warmup - bin), by: bin).map(rate).sorted()
    let baseline = warm.isEmpty ? 0 : warm[warm.count / 2]
    out.add("baseline_submissions_per_s", "ops/s", baseline, s)
    for (k, e) in episodes.enumerated() {
        var l = s
        l["episode"] = String(k + 1)
        l["fault"] = e.name
        if e.fromRestart { l["from"] = "restart" }
        if let v = e.detectMs { out.add("detect_ms", "ms", v, l) }
        if let v = e.newLeaderMs { out.add("new_leader_ms", "ms", v, l) }
        if let v = e.firstCommitMs { out.add("first_commit_ms", "ms", v, l) }
        if let v = e.agentDeadMs { out.add("agent_declared_dead_ms", "ms", v, l) }
        // Throughput after the fault: the dip, and when it was back at 90 % of the baseline.
        let windowEnd = k + 1 < episodes.count ? episodes[k + 1].faultAt : (acks.last ?? e.faultAt)
        // Whole bins only (the last one may be cut short by the next fault or the end of the load).
        let bins = stride(from: e.faultAt, through: windowEnd - bin, by: bin).map { ($0, rate($0)) }
        if baseline > 0, !bins.isEmpty {
            let low = bins.map(\.1).min()!
            out.add("throughput_dip_pct", "%", max(0, (baseline - low) / baseline * 100), l)
            if let back = bins.first(where: { $0.1 >= 0.9 * baseline }) {
                out.add("time_to_full_throughput_ms", "ms", (back.0 - e.faultAt) * 1000, l)
            } else {
                out.notes.append("\(scenario.rawValue), \(e.name): throughput never came back to 90 % of \(format(baseline)) ops/s in the window")
            }
            for (t, r) in bins { out.add("submissions_per_s", "ops/s", r, l, at: t - e.faultAt) }
        }
        // Reassignment: a killed agent's task assigned to another agent.
        if !e.killedAgents.isEmpty {
            let killWall = history.wallMs(at: e.faultAt)
            let reassigned = tasks.filter { $0.attempts.contains { e.killedAgents.contains($0.agent) && $0.outcome == "abandoned" } }
                .compactMap { $0.attempts.first { Double($0.assignedAtMs) > killWall && !e.killedAgents.contains($0.agent) }?.assignedAtMs }.min()
            if let reassigned { out.add("reassignment_ms", "ms", Double(reassigned) - killWall, l) }
        }
    }
    if scenario == .wan {
        let before = history.submitLatencies(from: 1, to: settings.warmup)
        if let p50 = (try? Summary(before))?.p50 { out.add("wan_submit_p50_ms", "ms", p50, s) }
    }
    let count: (AnomalyKind) -> Double = { k in Double(report.anomalies.filter { $0.kind == k }.count) }
    out.add("tasks_lost", "tasks", count(.lostSubmission), s)
    out.add("duplicate_completions", "tasks", count(.succeededTwice) + count(.duplicateSubmission), s)
    out.add("anomalies", "count", Double(report.anomalies.count), s)
    out.add("operations", "count", Double(report.operations), s)
    out.add("acknowledged_submissions", "count", Double(report.acknowledged), s)
    out.add("unknown_submissions", "count", Double(report.unknown), s)
    out.add("reads", "count", Double(report.reads), s)
    out.add("tasks", "count", Double(report.tasks), s)
    return out
}

/// The history and the verdict as text, kept beside the logs of a failed run.
private func historyText(_ ops: [ChaosCheck.Operation], report: CheckReport, failures: [String]) -> String {
    var lines = ["# verdict", report.description] + failures.map { "failure: \($0)" } + ["", "# operations (id client invoked completed kind)"]
    for op in ops {
        lines.append("\(op.id) \(op.client) \(String(format: "%.3f", op.invokedAt)) \(op.completedAt.map { String(format: "%.3f", $0) } ?? "-") \(op.kind)")
    }
    return lines.joined(separator: "\n") + "\n"
}
