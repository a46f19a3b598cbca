import Manifest
import Raft

/// One seeded run of the task-execution side of a cluster: Raft nodes that replicate the
/// ``TaskManifest`` and, while they lead, run the ``Scheduler``; node agents that register,
/// heartbeat, run their assignments and report; and clients that submit tasks. Everything lives in
/// one process and is driven by one random generator, so the same seed replays the same run.
///
/// The nodes follow the control plane (`Orchestrator`, `AgentsService`, `TasksService`, `Driver`):
/// each applies committed commands to its own manifest; a leader keeps the agents' heartbeats in
/// memory (reset when a new reign starts), runs a scheduling pass every 20–50 ms unless the
/// previous pass's proposals are still pending, pushes an assignment down the agent's stream when
/// the `assign` applies on it, and answers a (re)registration with the agent's active attempts.
/// The agents follow `AgentRuntime`: a heartbeat every interval (following "not leader" hints),
/// re-registration when told to or when their stream ends, reports kept in an outbox and retried
/// until a leader records or refuses them, and abandoned attempts stopped.
///
/// During the fault phase the network delays, drops and duplicates messages, partitions nodes from
/// each other and agents from nodes; nodes crash (keeping only their `MemoryStorage`) and restart;
/// a nemesis may strike new leaders; agents crash (restarting with a new incarnation) or stall —
/// sometimes for longer than the dead-agent timeout, after which they report their stale results.
/// Then faults stop, and every acknowledged submission's tasks must reach a terminal state.
/// The checks (``ManifestViolation/Property``) run on every apply of every node.
public final class ManifestSimulator {
    public let seed: UInt64
    public let options: ManifestSimulationOptions

    /// Tasks of this size fail on every agent.
    static let poisonSize: UInt32 = 13

    // MARK: - Model

    struct AttemptKey: Hashable, Comparable, CustomStringConvertible {
        var task: TaskID
        var attempt: UInt32
        static func < (a: Self, b: Self) -> Bool { (a.task, a.attempt) < (b.task, b.attempt) }
        var description: String { "t\(task)#\(attempt)" }
    }

    enum ReportOutcome: Hashable {
        case started
        case completed(TaskResult)
        case failed(String)
    }

    struct AgentReport: Hashable {
        var key: AttemptKey
        var outcome: ReportOutcome
        var description: String {
            switch outcome {
            case .started: "started \(key)"
            case .completed: "complete \(key)"
            case .failed(let why): "fail \(key) (\(why))"
            }
        }
    }

    /// An agent's call to a node.
    enum AgentCall {
        case register
        case heartbeat(running: [AttemptKey])
        case report(AgentReport)
    }

    /// What a node sends an agent: replies to its calls, and its assignment stream.
    enum AgentMessage {
        case notLeader(request: UInt64, hint: NodeID)
        case registered(request: UInt64)
        case registerRefused(request: UInt64, String)
        case heartbeat(request: UInt64, reregister: Bool, abandon: [AttemptKey], hasStream: Bool)
        case reported(request: UInt64, recorded: Bool, String)
        /// The call failed (connection refused, proposal lost or timed out): retry.
        case failed(request: UInt64, String)
        case assignment(AttemptKey, TaskSpec)
        case streamEnded
    }

    enum ClientAnswer {
        case notLeader(NodeID)
        case submitted(first: TaskID, count: UInt32, existing: Bool)
        case refused(String)
        case failed(String)
    }

    private enum Event {
        case tick(Int, life: Int)
        case pass(Int, life: Int)
        case raft(Message)
        case agentCall(node: Int, agent: Int, life: Int, incarnation: UInt64, request: UInt64, AgentCall)
        case clientCall(node: Int, submission: Int, send: UInt64)
        case toAgent(Int, life: Int, from: Int, AgentMessage)
        case toClient(Int, send: UInt64, from: Int, ClientAnswer)
        case agentHeartbeat(Int, life: Int)
        case agentFinish(Int, life: Int, AttemptKey, run: UInt64)
        case agentTimeout(Int, life: Int, request: UInt64)
        case agentWake(Int, life: Int)
        case agentRestart(Int)
        case clientNew
        case clientDuplicate(Int)
        case clientSend(Int, send: UInt64)
        case clientTimeout(Int, send: UInt64)
        case restart(Int)
        case fault
        case heal
        case healAgents
        case endFaults
        case livenessCheck
        case strikeLeader(Int, term: Term)
    }

    /// Who waits for a proposal.
    private enum Waiter {
        case duty
        case client(submission: Int, send: UInt64)
        case register(agent: Int, life: Int, incarnation: UInt64, request: UInt64)
        case report(agent: Int, life: Int, request: UInt64)
    }

    /// How a proposal ended: applied with a reply, or lost (overwritten, timed out, unknown).
    private enum Outcome {
        case success(ManifestReply)
        case failure(String)
    }

    private struct Proposal {
        var term: Term
        var deadline: UInt64
        var waiter: Waiter
    }

    private struct Success {
        var attempt: UInt32
        var agent: AgentID
        var result: TaskResult
        var index: Index
        var node: NodeID
    }

    private struct Node {
        let id: NodeID
        let tickInterval: UInt64
        /// This node's wall clock runs ahead of simulated time by this many milliseconds.
        let skew: UInt64
        var raft: RaftNode?
        var storage = MemoryStorage()
        var storedLastIndex: Index = 0
        var manifest = TaskManifest()
        /// Raised on every crash, so that the timers of an earlier life stop.
        var life = 0
        // The orchestrator (leader memory, lost on a crash).
        var isLeader = false
        var term: Term = 0
        var hint: NodeID = noNode
        var since: Millis = 0
        var heartbeats: [AgentID: LeaderView.Heartbeat] = [:]
        /// Open assignment streams: agent → the process (life, incarnation) that opened it.
        var streams: [Int: (life: Int, incarnation: UInt64)] = [:]
        /// Indexes of the last pass's proposals: the next pass waits for them (as `pass()` awaits).
        var passWaiting: Set<Index> = []
        /// Pass proposals that will never be answered (``ControlPlaneFlaw/overwritePendingProposal``).
        var passHung = 0
        // The driver.
        var proposals: [Index: Proposal] = [:]
        // The checker's view of this node.
        var succeeded: [TaskID: Success] = [:]
        var up: Bool { raft != nil }
    }

    private struct Agent {
        let id: AgentID
        let zone: String
        let slots: UInt16
        var up = false
        /// Process starts: events of an earlier process are dropped.
        var life = 0
        var incarnation: UInt64 = 0
        var stalledUntil: UInt64 = 0
        var target = 0
        var streamNode: Int?
        var registerWanted = true
        var register: UInt64?
        var heartbeat: UInt64?
        var report: UInt64?
        var seen: Set<AttemptKey> = []
        var running: [AttemptKey: UInt64] = [:]
        var specs: [AttemptKey: TaskSpec] = [:]
        var abandoned: Set<AttemptKey> = []
        var outbox: [AgentReport] = []
        var nextRequest: UInt64 = 1
        var nextRun: UInt64 = 1
    }

    private enum SubmissionState { case inFlight, acked, abandoned, refused }

    private struct Submission {
        var key: String
        var spec: TaskSpec
        var count: UInt32
        var target: Int
        var send: UInt64 = 0
        var sends = 0
        var state = SubmissionState.inFlight
        var duplicateOf: Int?
    }

    // MARK: - State

    private var rng: SplitMix64
    private var now: UInt64 = 0
    private var queue = EventQueue<Event>()
    private var nodes: [Node] = []
    private var agents: [Agent] = []
    private var submissions: [Submission] = []
    private var raftChecker = SafetyChecker()
    private var stats = ManifestSimulationStats()
    private var violation: ManifestViolation?
    private var raftConfigs: [RaftConfig] = []
    private var founding = Configuration.empty
    private var scheduler = SchedulerConfig()
    private var compactionThreshold: Index = 100
    private var strikeNewLeaders = 0.0
    private var poisonRate = 0.1

    // Network.
    private var blocked: [Bool] = []  // node-to-node: blocked[from * n + to] (indexes)
    private var agentCut: [Bool] = []  // agent-node links, both ways: agentCut[agent * n + node]
    private var dropRate = 0.0
    private var duplicateRate = 0.0
    private var minDelay: UInt64 = 100
    private var maxDelay: UInt64 = 3_000
    private var longDelayRate = 0.0

    // Clients.
    private var clientTarget: Int?
    private var nextSend: UInt64 = 1
    private var nextKey = 1
    private var keyAcks: [String: (first: TaskID, count: UInt32)] = [:]
    private var keyCreated: [String: (first: TaskID, count: UInt32, index: Index)] = [:]
    private var ackedTasks: Set<TaskID> = []

    // Global history, for the cross-node checks.
    /// The reply every node gave at each index (`replies[i - 1]`; nil for non-command entries).
    private var replies: [ManifestReply?] = []
    /// Manifest snapshot bytes after some indexes (every `snapshotStride`, and compactions).
    private var states: [Index: (bytes: [UInt8], node: NodeID)] = [:]
    private let snapshotStride: Index = 32
    private var globalSuccess: [TaskID: Success] = [:]
    /// When a task was re-queued by its agent's death (first apply anywhere), until its next assignment.
    private var requeuedAt: [TaskID: UInt64] = [:]
    /// What the last `applyChecked` saw: the agent's active attempts before, and whether the
    /// command ended an agent's life (dead, left, or replaced by a new incarnation).
    private var lastActiveBefore: [(TaskID, UInt32)] = []
    private var lastAgentGone = false

    // Phases.
    private var faultsActive: Bool
    /// Clients submit new work until faults stop (even in a run without faults).
    private var submitting = true
    private var finished = false
    private var livenessDeadline: UInt64 = .max
    private var maxEvents: Int { 500 * Int(options.faultMilliseconds + options.livenessMilliseconds) + 1_000_000 }

    // Trace and fingerprint.
    private var trace: [String?]
    private var traceNext = 0
    private var fingerprint: UInt64 = 0xcbf2_9ce4_8422_2325
    private let wantTrace: Bool

    public init(seed: UInt64, options: ManifestSimulationOptions) {
        self.seed = seed
        self.options = options
        rng = SplitMix64(seed: seed ^ 0x6d61_6e69_6665_7374)  // "manifest": not the Raft simulator's runs
        faultsActive = options.faults
        trace = Array(repeating: nil, count: max(options.traceLength, 1))
        wantTrace = options.traceLength > 0
    }

    // MARK: - Randomness, trace, failures

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

    private func fail(_ property: ManifestViolation.Property, _ detail: @autoclosure () -> String) {
        guard violation == nil, !options.disabledChecks.contains(property) else { return }
        violation = ManifestViolation(property: property, timeMicros: now, detail: detail())
    }

    private func nodeName(_ k: Int) -> String { "n\(k + 1)" }
    private func nowMillis(_ k: Int) -> Millis { now / 1000 + nodes[k].skew }

    // MARK: - Run

    /// Runs the simulation to its end (success, or the first violation).
    public func run() -> ManifestSimulationResult {
        setUp()
        queue.push(.endFaults, at: options.faultMilliseconds * 1000)
        while !finished, let (time, event) = queue.pop() {
            now = time
            raftChecker.now = time
            stats.events += 1
            handle(event)
            if violation == nil, options.raftChecks, let v = raftChecker.violation { fail(.raft, v.description) }
            if violation != nil { break }
            if stats.events > maxEvents {
                fail(.liveness, "more than \(maxEvents) events: a message storm (\(queue.count) events queued)")
                break
            }
            if now > livenessDeadline {
                livenessFailure()
                break
            }
        }
        if !finished && violation == nil { fail(.liveness, "the event queue ran dry before the run finished") }
        stats.leadersElected = raftChecker.leadersElected
        stats.tasksSubmitted = ackedTasks.count
        var lines: [String] = []
        if violation != nil {
            for k in 0..<trace.count {
                if let line = trace[(traceNext + k) % trace.count] { lines.append(line) }
            }
            lines.append(contentsOf: nodes.indices.map(describeNode))
            lines.append(contentsOf: agents.indices.map(describeAgent))
        }
        return ManifestSimulationResult(
            seed: seed, options: options, violation: violation, fingerprint: fingerprint, stats: stats, trace: lines)
    }

    private func setUp() {
        let n = options.nodes
        founding = Configuration(voters: (1...n).map { NodeID($0) })
        blocked = Array(repeating: false, count: n * n)
        let agentCount = random(in: 3...6)
        agentCut = Array(repeating: false, count: agentCount * n)
        scheduler.heartbeatInterval = 100
        scheduler.deadAfter = random(in: 400...1_000)
        // Longer than the liveness bound: an attempt lost for good shows up as a liveness violation
        // instead of being quietly repaired by its timeout. (Some tasks set short timeouts of their own.)
        scheduler.defaultTaskTimeout = 60_000
        scheduler.maxAssignmentsPerPass = pick([1, 2, 4, 512])!
        compactionThreshold = Index(random(in: 30...300))
        poisonRate = pick([0.05, 0.1, 0.2])!
        let preVote = chance(0.85)
        let checkQuorum = chance(0.85)
        let heartbeat = random(in: 1...3)
        let maxEntries = pick([1, 4, 16, 64, 256])!
        if options.faults { strikeNewLeaders = pick([0, 0, 0.3, 0.7])! }
        for k in 0..<n {
            var config = RaftConfig(id: NodeID(k + 1))
            config.electionTimeout = 10
            config.heartbeatInterval = heartbeat
            config.preVote = preVote
            config.checkQuorum = checkQuorum
            config.maxEntriesPerAppend = maxEntries
            config.maxInflightAppends = random(in: 1...8)
            raftConfigs.append(config)
            let interval = UInt64(random(in: 9_500...10_500))
            nodes.append(Node(id: NodeID(k + 1), tickInterval: interval, skew: random(in: 0...20)))
            start(k)
            queue.push(.tick(k, life: 0), at: random(in: 0...interval))
            queue.push(.pass(k, life: 0), at: random(in: 0...50_000))
        }
        for a in 0..<agentCount {
            agents.append(Agent(id: "a\(a + 1)", zone: pick(["z1", "z2"])!, slots: UInt16(random(in: 1...2))))
            queue.push(.agentRestart(a), at: random(in: 0...300_000))
        }
        record("start: \(n) nodes, \(agentCount) agents \(agents.map { "\($0.id)/\($0.zone)/\($0.slots)" }), deadAfter \(scheduler.deadAfter) ms, assignments per pass \(scheduler.maxAssignmentsPerPass), compact every \(compactionThreshold), poison \(poisonRate), preVote \(preVote), checkQuorum \(checkQuorum), strike new leaders \(strikeNewLeaders)")
        queue.push(.clientNew, at: random(in: 50_000...300_000))
        if options.faults { queue.push(.fault, at: random(in: 200_000...600_000)) }
    }

    private func handle(_ event: Event) {
        switch event {
        case .tick(let k, let life):
            guard nodes[k].up, nodes[k].life == life else { return }
            mix(1, now, UInt64(k))
            nodes[k].raft!.tick()
            process(k)
            expireProposals(k)
            queue.push(.tick(k, life: life), at: now + nodes[k].tickInterval)
        case .pass(let k, let life):
            guard nodes[k].up, nodes[k].life == life else { return }
            schedulingPass(k)
            queue.push(.pass(k, life: life), at: now + random(in: 20_000...50_000))
        case .raft(let m):
            deliverRaft(m)
        case .agentCall(let k, let a, let life, let incarnation, let request, let call):
            if agentCut[a * nodes.count + k] {
                stats.messagesDropped += 1
                return
            }
            mix(6, now, UInt64(k), UInt64(a), request)
            guard nodes[k].up else {
                reply(a, life, from: k, .failed(request: request, "connection refused"))
                return
            }
            nodeHandle(k, agent: a, life: life, incarnation: incarnation, request: request, call)
        case .clientCall(let k, let s, let send):
            mix(7, now, UInt64(k), UInt64(s))
            guard nodes[k].up else {
                answer(s, send, from: k, .failed("connection refused"))
                return
            }
            nodeHandleSubmit(k, submission: s, send: send)
        case .toAgent(let a, let life, let from, let message):
            guard agents[a].up, agents[a].life == life else { return }
            switch message {
            case .assignment, .streamEnded: break  // on an open stream: already in flight
            default:
                if agentCut[a * nodes.count + from] {
                    stats.messagesDropped += 1
                    return
                }
            }
            if deferIfStalled(a, event) { return }
            mix(8, now, UInt64(a), UInt64(from))
            agentReceive(a, from: from, message)
        case .toClient(let s, let send, let from, let answer):
            mix(9, now, UInt64(s), send)
            clientReceive(s, send: send, from: from, answer)
        case .agentHeartbeat(let a, let life):
            guard agents[a].up, agents[a].life == life else { return }
            if deferIfStalled(a, event) { return }
            mix(10, now, UInt64(a))
            agentHeartbeat(a)
            queue.push(.agentHeartbeat(a, life: life), at: now + scheduler.heartbeatInterval * 1000)
        case .agentFinish(let a, let life, let key, let run):
            guard agents[a].up, agents[a].life == life else { return }
            if deferIfStalled(a, event) { return }
            mix(11, now, UInt64(a), key.task)
            agentFinish(a, key, run: run)
        case .agentTimeout(let a, let life, let request):
            guard agents[a].up, agents[a].life == life else { return }
            if deferIfStalled(a, event) { return }
            agentTimeout(a, request)
        case .agentWake(let a, let life):
            guard agents[a].up, agents[a].life == life else { return }
            if deferIfStalled(a, event) { return }
            agentPump(a)
        case .agentRestart(let a):
            guard !agents[a].up else { return }
            startAgent(a)
        case .clientNew:
            guard submitting else { return }
            newSubmission(copying: nil)
            queue.push(.clientNew, at: now + random(in: 50_000...400_000))
        case .clientDuplicate(let s):
            newSubmission(copying: s)
        case .clientSend(let s, let send):
            guard submissions[s].state == .inFlight, submissions[s].send == send else { return }
            clientSend(s)
        case .clientTimeout(let s, let send):
            guard submissions[s].state == .inFlight, submissions[s].send == send else { return }
            clientTimedOut(s)
        case .restart(let k):
            guard !nodes[k].up else { return }
            restart(k)
        case .fault:
            guard faultsActive else { return }
            injectFault()
            queue.push(.fault, at: now + random(in: 50_000...500_000))
        case .heal:
            healNodes()
        case .healAgents:
            healAgents()
        case .endFaults:
            endFaults()
        case .livenessCheck:
            livenessCheck()
            if !finished { queue.push(.livenessCheck, at: now + 100_000) }
        case .strikeLeader(let k, let term):
            guard faultsActive, let r = nodes[k].raft, r.role == .leader, r.term == term else { return }
            if chance(0.5) {
                crash(k)
                queue.push(.restart(k), at: now + random(in: 50_000...1_000_000))
            } else {
                isolate(k)
                stats.partitions += 1
                record("nemesis: leader \(nodeName(k)) isolated")
                queue.push(.heal, at: now + random(in: 100_000...1_000_000))
            }
        }
    }

    // MARK: - Nodes: Raft

    private func start(_ k: Int) {
        let state = nodes[k].storage.load()
        nodes[k].storedLastIndex = state.entries.last?.index ?? state.snapshot?.metadata.index ?? 0
        do {
            nodes[k].raft = try RaftNode(config: raftConfigs[k], state: state, bootstrap: founding, random: SplitMix64(seed: rng.next()))
        } catch {
            fail(.liveness, "\(nodeName(k)) could not restart from its storage: \(error)")
            return
        }
        nodes[k].manifest = TaskManifest()
        nodes[k].succeeded = [:]
        if let s = state.snapshot { restoreManifest(k, s) }
        nodes[k].manifest.injectedBugs = options.injectedBugs
    }

    private func restart(_ k: Int) {
        start(k)
        guard nodes[k].up else { return }
        mix(4, now, UInt64(k))
        let r = nodes[k].raft!
        record("\(nodeName(k)) restarted (term \(r.term), log \(r.firstIndex - 1)...\(r.lastIndex), commit \(r.commitIndex))")
        queue.push(.tick(k, life: nodes[k].life), at: now + random(in: 0...nodes[k].tickInterval))
        queue.push(.pass(k, life: nodes[k].life), at: now + random(in: 0...50_000))
        process(k)
    }

    private func crash(_ k: Int) {
        guard nodes[k].up else { return }
        // Its clients' connections reset: agents with a stream here learn it ended.
        closeStreams(k)
        nodes[k].raft = nil
        nodes[k].life += 1
        nodes[k].isLeader = false
        nodes[k].term = 0
        nodes[k].hint = noNode
        nodes[k].heartbeats = [:]
        nodes[k].passWaiting = []
        nodes[k].passHung = 0
        nodes[k].proposals = [:]  // callers never hear back: they time out
        stats.nodeCrashes += 1
        mix(3, now, UInt64(k))
        record("\(nodeName(k)) crashed")
    }

    /// Drains a node's `Ready`s: persist, send, apply, advance.
    private func process(_ k: Int) {
        while nodes[k].raft!.hasReady {
            let rd = nodes[k].raft!.ready()
            if options.raftChecks {
                raftChecker.willPersist(rd, node: nodes[k].raft!, storedLastIndex: nodes[k].storedLastIndex)
            }
            nodes[k].storage.persist(rd)
            if let s = rd.snapshot { nodes[k].storedLastIndex = s.metadata.index }
            if let last = rd.entries.last { nodes[k].storedLastIndex = last.index }
            if let ss = rd.softState {
                record("\(nodeName(k)) is \(ss.role.rawValue) of term \(nodes[k].raft!.term) (leader \(ss.leader))")
                if ss.role == .leader && faultsActive && chance(strikeNewLeaders) {
                    let delay: UInt64 = chance(0.5) ? random(in: 1_000...60_000) : random(in: 60_000...600_000)
                    queue.push(.strikeLeader(k, term: nodes[k].raft!.term), at: now + delay)
                }
            }
            for m in rd.messages { sendRaft(m) }
            if let s = rd.snapshot { installSnapshot(k, s) }
            for e in rd.committedEntries {
                apply(k, e)
                if violation != nil { return }
            }
            nodes[k].raft!.advance(rd)
        }
        compactIfNeeded(k)
        if options.raftChecks { raftChecker.didStep(nodes[k].raft!) }
    }

    private func compactIfNeeded(_ k: Int) {
        let raft = nodes[k].raft!
        let applied = raft.appliedIndex
        guard applied >= raft.firstIndex - 1 + compactionThreshold else { return }
        let bytes = nodes[k].manifest.snapshot()
        compareState(k, at: applied, bytes)
        do {
            let s = try nodes[k].raft!.compact(through: applied, snapshotData: bytes)
            nodes[k].storage.compact(s)
        } catch {
            fail(.liveness, "\(nodeName(k)) could not compact through its applied index \(applied): \(error)")
        }
    }

    private func installSnapshot(_ k: Int, _ s: Snapshot) {
        stats.snapshotsInstalled += 1
        record("\(nodeName(k)) installed snapshot at \(s.metadata.index) term \(s.metadata.term)")
        restoreManifest(k, s)
        nodes[k].manifest.injectedBugs = options.injectedBugs
        // Proposals the snapshot covers can no longer be told apart: their outcome is unknown.
        for index in nodes[k].proposals.keys.sorted() where index <= s.metadata.index {
            let p = nodes[k].proposals.removeValue(forKey: index)!
            resolve(k, index: index, p.waiter, .failure("outcome unknown (covered by a snapshot)"))
        }
    }

    /// Restores a node's manifest from a snapshot, checking it against the history.
    private func restoreManifest(_ k: Int, _ s: Snapshot) {
        do {
            nodes[k].manifest = try TaskManifest(snapshot: s.data)
        } catch {
            fail(.manifestsAgree, "\(nodeName(k)) cannot decode the manifest snapshot at index \(s.metadata.index): \(error.reason)")
            return
        }
        compareState(k, at: s.metadata.index, s.data)
        nodes[k].succeeded = [:]
        for id in nodes[k].manifest.tasks.keys.sorted() { checkTask(k, id, index: s.metadata.index) }
    }

    private func expireProposals(_ k: Int) {
        guard !nodes[k].proposals.isEmpty else { return }
        for index in nodes[k].proposals.keys.sorted() where nodes[k].proposals[index]!.deadline <= now {
            let p = nodes[k].proposals.removeValue(forKey: index)!
            resolve(k, index: index, p.waiter, .failure("timed out"))
        }
    }

    /// Proposes a command with a waiter; the caller runs `process` afterwards.
    private func propose(_ k: Int, _ command: ManifestCommand, _ waiter: Waiter) -> RaftError? {
        do {
            let t = try nodes[k].raft!.propose(command.encoded)
            if let old = nodes[k].proposals.removeValue(forKey: t.index) {
                // The log was truncated below a pending proposal, and this node leads again.
                if options.flaws.contains(.overwritePendingProposal) {
                    // Today's `Driver`: the old caller is never answered.
                    if case .duty = old.waiter {
                        nodes[k].passWaiting.remove(t.index)
                        nodes[k].passHung += 1
                    }
                    record("\(nodeName(k)) overwrites the pending proposal at \(t.index): its caller never hears back")
                } else {
                    resolve(k, index: t.index, old.waiter, .failure("proposal lost (index \(t.index) reused)"))
                }
            }
            nodes[k].proposals[t.index] = Proposal(term: t.term, deadline: now + 5_000_000, waiter: waiter)
            if case .duty = waiter { nodes[k].passWaiting.insert(t.index) }
            mix(5, now, UInt64(k), t.index)
            return nil
        } catch {
            return error
        }
    }

    /// Answers whoever waited for a proposal.
    private func resolve(_ k: Int, index: Index, _ waiter: Waiter, _ outcome: Outcome) {
        switch waiter {
        case .duty:
            nodes[k].passWaiting.remove(index)
        case .client(let s, let send):
            switch outcome {
            case .success(.submitted(let first, let count, let existing)): answer(s, send, from: k, .submitted(first: first, count: count, existing: existing))
            case .success(.refused(let why)): answer(s, send, from: k, .refused(why))
            case .success(.done): answer(s, send, from: k, .failed("unexpected reply to a submission"))
            case .failure(let why): answer(s, send, from: k, .failed(why))
            }
        case .register(let a, let life, let incarnation, let request):
            switch outcome {
            case .success(.refused(let why)): reply(a, life, from: k, .registerRefused(request: request, why))
            case .success:
                // The agent then opens its assignment stream, which needs a leader.
                guard nodes[k].isLeader else {
                    reply(a, life, from: k, .notLeader(request: request, hint: nodes[k].hint))
                    return
                }
                openStream(k, agent: a, life: life, incarnation: incarnation)
                reply(a, life, from: k, .registered(request: request))
            case .failure(let why): reply(a, life, from: k, .failed(request: request, why))
            }
        case .report(let a, let life, let request):
            switch outcome {
            case .success(.refused(let why)): reply(a, life, from: k, .reported(request: request, recorded: false, why))
            case .success: reply(a, life, from: k, .reported(request: request, recorded: true, ""))
            case .failure(let why): reply(a, life, from: k, .failed(request: request, why))
            }
        }
    }

    // MARK: - Nodes: applying and checking

    private func apply(_ k: Int, _ e: Entry) {
        let i = e.index
        var command: ManifestCommand?
        var result: ManifestReply?
        if case .command(let bytes) = e.payload {
            do {
                command = try ManifestCommand(decoding: bytes)
            } catch {
                fail(.manifestsAgree, "\(nodeName(k)) cannot decode the command at index \(i): \(error.reason)")
                return
            }
            result = applyChecked(k, command!, index: i)
        }
        if options.raftChecks { raftChecker.didApply(e, node: nodes[k].id, digest: 0) }
        // Every node gives the same reply at the same index.
        let first = i == Index(replies.count) + 1
        if first {
            replies.append(result)
            if let command, let result { firstApply(k, command, result, index: i) }
        } else if i <= Index(replies.count), replies[Int(i - 1)] != result {
            fail(.manifestsAgree, "\(nodeName(k)) replied \(describe(result)) to \(describe(command)) at index \(i), another node replied \(describe(replies[Int(i - 1)]))")
        }
        if i % snapshotStride == 0 { checkState(k, at: i) }
        if let p = nodes[k].proposals.removeValue(forKey: i) {
            if p.term == e.term, let result {
                resolve(k, index: i, p.waiter, .success(result))
            } else {
                resolve(k, index: i, p.waiter, .failure("proposal lost (index \(i) holds an entry of term \(e.term))"))
            }
        }
        if case .assign(let task, let attempt, let agent, _)? = command, result == .done,
            let a = agents.firstIndex(where: { $0.id == agent }), let spec = nodes[k].manifest[task]?.spec
        {
            push(k, agent: a, AttemptKey(task: task, attempt: attempt), spec)
        }
    }

    /// Applies a command to a node's manifest and checks what it did.
    private func applyChecked(_ k: Int, _ command: ManifestCommand, index i: Index) -> ManifestReply {
        let n = nodeName(k)
        var before: TaskRecord?
        var agentBefore: AgentRecord?
        var activeBefore: [(TaskID, UInt32)] = []
        var taskID: TaskID?
        var agentID: AgentID?
        var report: (attempt: UInt32, agent: AgentID)?
        switch command {
        case .started(let task, let attempt, let agent, _), .complete(let task, let attempt, let agent, _, _),
            .fail(let task, let attempt, let agent, _, _):
            taskID = task
            report = (attempt, agent)
        case .assign(let task, _, _, _), .cancel(let task, _, _), .retry(let task, _): taskID = task
        case .agentJoined(let agent, _, _, _, _, _), .agentDead(let agent, _, _), .agentLeft(let agent, _): agentID = agent
        case .submit, .pauseJob, .resumeJob: break
        }
        lastActiveBefore = []
        lastAgentGone = false
        if let taskID { before = nodes[k].manifest[taskID] }
        if let agentID {
            agentBefore = nodes[k].manifest.agents[agentID]
            activeBefore = activeAttempts(of: agentID, in: nodes[k].manifest)
        }

        let reply = nodes[k].manifest.apply(command)

        // The fence: a report is recorded only if it names the task's active attempt and its agent.
        if let report, reply == .done {
            let active = before?.activeAttempt
            if active?.number != report.attempt || active?.agent != report.agent {
                let current = active.map { "attempt \($0.number) by \($0.agent)" } ?? "no active attempt (task \(before.map { "\($0.state)" } ?? "unknown"))"
                fail(.fencedReports, "\(n) recorded \(describe(command)) at index \(i), but the task's current attempt was \(current)")
            }
        }
        if let taskID { checkTask(k, taskID, index: i) }
        for (id, _) in activeBefore { checkTask(k, id, index: i) }

        // A dead (or restarted) agent's tasks are re-queued at once.
        if let agentID, reply == .done {
            var gone: String?
            switch command {
            case .agentDead: gone = "agentDead(\(agentID))"
            case .agentLeft: gone = "agentLeft(\(agentID))"
            case .agentJoined(_, _, _, let incarnation, _, _):
                if let old = agentBefore, old.state != .live || old.incarnation != incarnation {
                    gone = "agentJoined(\(agentID)) of a new incarnation \(incarnation) (was \(old.incarnation), \(old.state))"
                }
            default: break
            }
            if let gone {
                lastActiveBefore = activeBefore
                lastAgentGone = true
                checkRequeued(k, agentID, activeBefore, after: gone, index: i)
            }
        }
        return reply
    }

    /// The active attempts of an agent, found from the tasks themselves (not the manifest's index).
    private func activeAttempts(of agent: AgentID, in m: TaskManifest) -> [(TaskID, UInt32)] {
        var out: [(TaskID, UInt32)] = []
        for (id, t) in m.tasks {
            if let a = t.activeAttempt, a.agent == agent { out.append((id, a.number)) }
        }
        return out.sorted { $0.0 < $1.0 }
    }

    private func checkRequeued(_ k: Int, _ agent: AgentID, _ activeBefore: [(TaskID, UInt32)], after what: String, index i: Index) {
        let m = nodes[k].manifest
        let still = activeAttempts(of: agent, in: m)
        if !still.isEmpty || !(m.activeByAgent[agent] ?? []).isEmpty {
            let list = still.map { "t\($0.0)#\($0.1)" }.joined(separator: ", ")
            fail(.deadAgentRequeued, "\(nodeName(k)) applied \(what) at index \(i), yet \(agent) still has active attempts [\(list)] (index: \((m.activeByAgent[agent] ?? []).sorted()))")
            return
        }
        for (id, number) in activeBefore {
            guard let t = m[id] else { continue }
            let attempt = t.attempts.first { $0.number == number }
            guard case .abandoned? = attempt?.outcome else {
                fail(.deadAgentRequeued, "\(nodeName(k)) applied \(what) at index \(i): task \(id)'s attempt \(number) on \(agent) is \(attempt.map { "\($0.outcome)" } ?? "gone"), not abandoned")
                return
            }
            let requeued = t.state == .pending && m.pending.contains(id)
            let spent = t.state == .failed && t.failures >= t.spec.maxAttempts
            if !requeued && !spent {
                fail(.deadAgentRequeued, "\(nodeName(k)) applied \(what) at index \(i): task \(id), active on \(agent) before, is \(t.state) (failures \(t.failures)/\(t.spec.maxAttempts)\(t.state == .pending ? ", missing from the pending queue" : "")), not pending again")
                return
            }
        }
    }

    /// At most one succeeded attempt per task; once succeeded, a task's state, result and
    /// succeeded attempt never change; the result is the one its attempt produced.
    private func checkTask(_ k: Int, _ id: TaskID, index i: Index) {
        let n = nodeName(k)
        guard let t = nodes[k].manifest[id] else {
            if nodes[k].succeeded[id] != nil { fail(.succeededTwice, "\(n): succeeded task \(id) vanished at index \(i)") }
            return
        }
        let wins = t.attempts.filter { $0.outcome == .succeeded }
        if wins.count > 1 {
            fail(.succeededTwice, "\(n) at index \(i): task \(id) has \(wins.count) succeeded attempts: \(describeAttempts(t))")
            return
        }
        if let s = nodes[k].succeeded[id] {
            if t.state != .succeeded || t.result != s.result || wins.first?.number != s.attempt {
                fail(.succeededTwice, "\(n) at index \(i): task \(id) succeeded at index \(s.index) with attempt \(s.attempt) by \(s.agent) (result of \(describeResult(s.result))); now it is \(t.state), result of \(t.result.map(describeResult) ?? "none"), attempts \(describeAttempts(t))")
            }
            return
        }
        guard t.state == .succeeded else { return }
        guard let w = wins.first, let result = t.result else {
            fail(.succeededTwice, "\(n) at index \(i): task \(id) is succeeded without a succeeded attempt or a result: \(describeAttempts(t))")
            return
        }
        if t.spec.size == Self.poisonSize {
            fail(.wrongResult, "\(n) at index \(i): poison task \(id) (which fails on every agent) succeeded: \(describeAttempts(t)), result of \(describeResult(result))")
            return
        }
        if result != Self.result(task: id, attempt: w.number, agent: w.agent) {
            fail(.wrongResult, "\(n) at index \(i): task \(id) succeeded with attempt \(w.number) by \(w.agent), but its result is the one of \(describeResult(result))")
            return
        }
        let success = Success(attempt: w.number, agent: w.agent, result: result, index: i, node: nodes[k].id)
        nodes[k].succeeded[id] = success
        if let g = globalSuccess[id] {
            if g.attempt != w.number || g.agent != w.agent || g.result != result {
                fail(.succeededTwice, "task \(id) succeeded with attempt \(g.attempt) by \(g.agent) on n\(g.node) (index \(g.index)), but with attempt \(w.number) by \(w.agent) on \(n) (index \(i))")
            }
        } else {
            globalSuccess[id] = success
        }
    }

    /// Every `snapshotStride` indexes: the manifest equals other nodes' at the same index, and its
    /// derived indexes match its tasks; succeeded tasks are re-checked.
    private func checkState(_ k: Int, at i: Index) {
        let bytes = nodes[k].manifest.snapshot()
        compareState(k, at: i, bytes)
        checkIndexes(k, at: i, bytes)
        for id in nodes[k].succeeded.keys.sorted() { checkTask(k, id, index: i) }
    }

    private func compareState(_ k: Int, at i: Index, _ bytes: [UInt8]) {
        guard let known = states[i] else {
            states[i] = (bytes, nodes[k].id)
            return
        }
        guard known.bytes != bytes else { return }
        var where_ = "\(bytes.count) bytes vs \(known.bytes.count)"
        if let mine = try? TaskManifest(snapshot: bytes), let theirs = try? TaskManifest(snapshot: known.bytes) {
            if let id = Set(mine.tasks.keys).union(theirs.tasks.keys).sorted().first(where: { mine[$0] != theirs[$0] }) {
                where_ = "task \(id): \(mine[id].map(describeTask) ?? "missing") vs \(theirs[id].map(describeTask) ?? "missing")"
            } else if let id = Set(mine.agents.keys).union(theirs.agents.keys).sorted().first(where: { mine.agents[$0] != theirs.agents[$0] }) {
                where_ = "agent \(id): \(String(describing: mine.agents[id])) vs \(String(describing: theirs.agents[id]))"
            }
        }
        fail(.manifestsAgree, "\(nodeName(k))'s manifest after index \(i) differs from n\(known.node)'s: \(where_)")
    }

    private func checkIndexes(_ k: Int, at i: Index, _ bytes: [UInt8]) {
        guard let rebuilt = try? TaskManifest(snapshot: bytes) else {
            fail(.manifestsAgree, "\(nodeName(k))'s manifest at index \(i) does not survive its own snapshot")
            return
        }
        let m = nodes[k].manifest
        let counts = m.counts.filter { $0.value != 0 }
        let expected = rebuilt.counts.filter { $0.value != 0 }
        if m.pending != rebuilt.pending {
            fail(.manifestIndexes, "\(nodeName(k)) at index \(i): pending queue \(m.pending), but the pending tasks are \(rebuilt.pending)")
        } else if m.activeByAgent != rebuilt.activeByAgent {
            fail(.manifestIndexes, "\(nodeName(k)) at index \(i): active attempts per agent \(m.activeByAgent.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.sorted())" }), but the tasks say \(rebuilt.activeByAgent.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.sorted())" })")
        } else if counts != expected {
            fail(.manifestIndexes, "\(nodeName(k)) at index \(i): counts \(counts), but the tasks say \(expected)")
        }
    }

    /// Bookkeeping on the first apply of an index anywhere: stats, keys, re-queue times.
    private func firstApply(_ k: Int, _ command: ManifestCommand, _ result: ManifestReply, index i: Index) {
        record("i=\(i) \(nodeName(k)) applied \(describe(command)) → \(describe(result))")
        let m = nodes[k].manifest
        switch command {
        case .submit(let key, _, _, _):
            guard !key.isEmpty, case .submitted(let first, let count, let existing) = result else { break }
            if let created = keyCreated[key] {
                if !existing {
                    fail(.idempotentSubmit, "key \(key) created tasks \(first)..<\(first + UInt64(count)) at index \(i), after creating \(created.first)..<\(created.first + UInt64(created.count)) at index \(created.index)")
                } else if created.first != first || created.count != count {
                    fail(.idempotentSubmit, "key \(key) returned tasks \(first)..<\(first + UInt64(count)) at index \(i), but it created \(created.first)..<\(created.first + UInt64(created.count)) at index \(created.index)")
                }
            } else if existing {
                fail(.idempotentSubmit, "key \(key) returned existing tasks \(first)..<\(first + UInt64(count)) at index \(i) before ever creating any")
            } else {
                keyCreated[key] = (first, count, i)
            }
        case .assign(let task, _, _, _):
            guard result == .done else { break }
            stats.assignments += 1
            if let since = requeuedAt.removeValue(forKey: task) {
                stats.requeues += 1
                stats.requeueMillis += (now - since) / 1000
            }
        case .agentDead, .agentJoined, .agentLeft:
            guard result == .done, lastAgentGone else { break }
            if case .agentDead = command { stats.agentsDeclaredDead += 1 }
            if case .agentJoined = command { stats.agentRejoins += 1 }
            // Tasks this agent lost: pending again, waiting for their next assignment.
            for (id, _) in lastActiveBefore where m[id]?.state == .pending { requeuedAt[id] = now }
        default: break
        }
    }

    // MARK: - Nodes: the orchestrator and the services

    /// A scheduling pass (`Orchestrator.pass`): follow the role, then propose the leader's duties.
    private func schedulingPass(_ k: Int) {
        guard nodes[k].passWaiting.isEmpty, nodes[k].passHung == 0 else { return }
        let r = nodes[k].raft!
        let leading = r.role == .leader
        if leading && (!nodes[k].isLeader || nodes[k].term != r.term) {
            // A new reign: every agent must reach this node before it gets work, and gets
            // `deadAfter` from now to do so.
            nodes[k].since = nowMillis(k)
            nodes[k].heartbeats = [:]
            record("\(nodeName(k)) begins its reign of term \(r.term)")
        }
        nodes[k].isLeader = leading
        nodes[k].term = r.term
        nodes[k].hint = r.leader
        guard leading else {
            closeStreams(k)
            return
        }
        let view = LeaderView(now: nowMillis(k), leaderSince: nodes[k].since, heartbeats: nodes[k].heartbeats)
        let duties = Scheduler.duties(manifest: nodes[k].manifest, view: view, config: scheduler)
        guard !duties.isEmpty else { return }
        for command in duties {
            if propose(k, command, .duty) != nil { break }
        }
        process(k)
    }

    private func closeStreams(_ k: Int) {
        for a in nodes[k].streams.keys.sorted() {
            let s = nodes[k].streams[a]!
            if !agentCut[a * nodes.count + k] {
                queue.push(.toAgent(a, life: s.life, from: k, .streamEnded), at: now + delay())
            }
        }
        nodes[k].streams = [:]
    }

    /// Opens an agent's assignment stream: its active attempts first, then each new assignment.
    private func openStream(_ k: Int, agent a: Int, life: Int, incarnation: UInt64) {
        nodes[k].streams[a] = (life, incarnation)
        let m = nodes[k].manifest
        let id = agents[a].id
        guard m.agents[id]?.incarnation == incarnation else { return }
        for task in (m.activeByAgent[id] ?? []).sorted() {
            guard let t = m[task], let attempt = t.activeAttempt else { continue }
            push(k, agent: a, AttemptKey(task: task, attempt: attempt.number), t.spec)
        }
    }

    /// Sends an assignment down the agent's stream, if it has one here. A stream over a cut link breaks.
    private func push(_ k: Int, agent a: Int, _ key: AttemptKey, _ spec: TaskSpec) {
        guard let s = nodes[k].streams[a] else { return }
        if agentCut[a * nodes.count + k] {
            nodes[k].streams[a] = nil
            record("\(nodeName(k))'s assignment stream to \(agents[a].id) broke")
            return
        }
        queue.push(.toAgent(a, life: s.life, from: k, .assignment(key, spec)), at: now + delay())
    }

    private func nodeHandle(_ k: Int, agent a: Int, life: Int, incarnation: UInt64, request: UInt64, _ call: AgentCall) {
        let id = agents[a].id
        guard nodes[k].isLeader else {
            reply(a, life, from: k, .notLeader(request: request, hint: nodes[k].hint))
            return
        }
        let nowMs = nowMillis(k)
        switch call {
        case .heartbeat(let running):
            nodes[k].heartbeats[id] = LeaderView.Heartbeat(at: nowMs, incarnation: incarnation)
            let m = nodes[k].manifest
            let hasStream = nodes[k].streams[a]?.life == life
            guard let record = m.agents[id], record.state == .live, record.incarnation == incarnation else {
                reply(a, life, from: k, .heartbeat(request: request, reregister: true, abandon: [], hasStream: hasStream))
                return
            }
            let stale = running.filter { key in
                if options.flaws.contains(.abandonUnknownAttempts) {
                    // Today's `Orchestrator.heartbeat`: whatever this manifest does not show as the
                    // agent's active attempt — wrong when this manifest is behind the log.
                    guard let active = m[key.task]?.activeAttempt else { return true }
                    return active.number != key.attempt || active.agent != id
                }
                // Only attempts this manifest shows as over (ended, or another agent's): a manifest
                // behind the log (a deposed or new leader's) may not know a newer assignment yet,
                // but an attempt that ended stays ended in every later state.
                guard let t = m[key.task], let attempt = t.attempts.first(where: { $0.number == key.attempt }) else { return false }
                return attempt.outcome != .active || attempt.agent != id
            }
            reply(a, life, from: k, .heartbeat(request: request, reregister: false, abandon: stale, hasStream: hasStream))
        case .register:
            nodes[k].heartbeats[id] = LeaderView.Heartbeat(at: nowMs, incarnation: incarnation)
            let agent = agents[a]
            let known = nodes[k].manifest.agents[id].map {
                $0.state == .live && $0.incarnation == incarnation && $0.zone == agent.zone && $0.slots == agent.slots
            } ?? false
            if known {
                openStream(k, agent: a, life: life, incarnation: incarnation)
                reply(a, life, from: k, .registered(request: request))
                return
            }
            let command = ManifestCommand.agentJoined(agent: id, zone: agent.zone, slots: agent.slots, incarnation: incarnation, info: "sim", at: nowMs)
            if let error = propose(k, command, .register(agent: a, life: life, incarnation: incarnation, request: request)) {
                reply(a, life, from: k, refusal(request, error))
            } else {
                process(k)
            }
        case .report(let report):
            let command: ManifestCommand
            switch report.outcome {
            case .started: command = .started(task: report.key.task, attempt: report.key.attempt, agent: id, at: nowMs)
            case .completed(let result):
                command = .complete(task: report.key.task, attempt: report.key.attempt, agent: id, result: result, at: nowMs)
            case .failed(let why): command = .fail(task: report.key.task, attempt: report.key.attempt, agent: id, reason: why, at: nowMs)
            }
            if let error = propose(k, command, .report(agent: a, life: life, request: request)) {
                reply(a, life, from: k, refusal(request, error))
            } else {
                process(k)
            }
        }
    }

    private func refusal(_ request: UInt64, _ error: RaftError) -> AgentMessage {
        if case .notLeader(let l) = error { return .notLeader(request: request, hint: l) }
        return .failed(request: request, "\(error)")
    }

    private func nodeHandleSubmit(_ k: Int, submission s: Int, send: UInt64) {
        let sub = submissions[s]
        let command = ManifestCommand.submit(key: sub.key, spec: sub.spec, count: sub.count, at: nowMillis(k))
        if let error = propose(k, command, .client(submission: s, send: send)) {
            if case .notLeader(let l) = error {
                answer(s, send, from: k, .notLeader(l))
            } else {
                answer(s, send, from: k, .failed("\(error)"))
            }
        } else {
            record("client → \(nodeName(k)): submission #\(s) (key '\(sub.key)', \(sub.count) tasks) proposed")
            process(k)
        }
    }

    // MARK: - Network

    private func delay() -> UInt64 {
        if chance(longDelayRate) { return random(in: 30_000...300_000) }
        return random(in: minDelay...maxDelay)
    }

    private func sendRaft(_ m: Message) {
        stats.messagesSent += 1
        if chance(dropRate) {
            stats.messagesDropped += 1
            return
        }
        queue.push(.raft(m), at: now + delay())
        if chance(duplicateRate) { queue.push(.raft(m), at: now + delay()) }
    }

    private func deliverRaft(_ m: Message) {
        let to = Int(m.to) - 1
        guard to >= 0, to < nodes.count, nodes[to].up else { return }
        if blocked[(Int(m.from) - 1) * nodes.count + to] {
            stats.messagesDropped += 1
            return
        }
        mix(2, now, m.from, m.to, m.term)
        nodes[to].raft!.step(m)
        process(to)
    }

    /// A node's reply to an agent's call (a unary RPC: lost with the network's drop rate).
    private func reply(_ a: Int, _ life: Int, from k: Int, _ message: AgentMessage) {
        stats.messagesSent += 1
        if chance(dropRate) {
            stats.messagesDropped += 1
            return
        }
        queue.push(.toAgent(a, life: life, from: k, message), at: now + delay())
    }

    private func answer(_ s: Int, _ send: UInt64, from k: Int, _ answer: ClientAnswer) {
        stats.messagesSent += 1
        if chance(dropRate) {
            stats.messagesDropped += 1
            return
        }
        queue.push(.toClient(s, send: send, from: k, answer), at: now + delay())
    }

    private func call(_ a: Int, _ call: AgentCall) -> UInt64 {
        let request = agents[a].nextRequest
        agents[a].nextRequest += 1
        stats.messagesSent += 1
        let k = agents[a].target
        if chance(dropRate) {
            stats.messagesDropped += 1
        } else {
            queue.push(
                .agentCall(node: k, agent: a, life: agents[a].life, incarnation: agents[a].incarnation, request: request, call),
                at: now + delay())
        }
        return request
    }

    // MARK: - Agents

    private func deferIfStalled(_ a: Int, _ event: Event) -> Bool {
        guard agents[a].stalledUntil > now else { return false }
        queue.push(event, at: agents[a].stalledUntil)
        return true
    }

    private func otherNode(than k: Int) -> Int {
        guard nodes.count > 1 else { return k }
        let j = random(in: 0...(nodes.count - 2))
        return j >= k ? j + 1 : j
    }

    private func startAgent(_ a: Int) {
        let life = agents[a].life + 1
        var agent = Agent(id: agents[a].id, zone: agents[a].zone, slots: agents[a].slots)
        agent.up = true
        agent.life = life
        agent.incarnation = rng.next() | 1
        agent.target = random(in: 0...(nodes.count - 1))
        agents[a] = agent
        mix(12, now, UInt64(a))
        record("\(agent.id) starts, incarnation \(agent.incarnation % 100_000)")
        agentPump(a)
        queue.push(.agentHeartbeat(a, life: life), at: now + random(in: 0...(scheduler.heartbeatInterval * 1000)))
    }

    private func crashAgent(_ a: Int) {
        guard agents[a].up else { return }
        agents[a].up = false
        agents[a].life += 1
        stats.agentCrashes += 1
        mix(13, now, UInt64(a))
        record("\(agents[a].id) crashed (running \(agents[a].running.keys.sorted()), outbox \(agents[a].outbox.count))")
    }

    /// Sends what is due: a registration, the first report of the outbox.
    private func agentPump(_ a: Int) {
        if agents[a].registerWanted && agents[a].register == nil {
            let request = call(a, .register)
            agents[a].register = request
            queue.push(.agentTimeout(a, life: agents[a].life, request: request), at: now + 300_000)
        }
        if agents[a].report == nil, let report = agents[a].outbox.first {
            let request = call(a, .report(report))
            agents[a].report = request
            queue.push(.agentTimeout(a, life: agents[a].life, request: request), at: now + 300_000)
        }
    }

    private func agentHeartbeat(_ a: Int) {
        if agents[a].heartbeat != nil {
            // The last one timed out: try another node.
            agents[a].target = otherNode(than: agents[a].target)
        }
        let request = call(a, .heartbeat(running: agents[a].running.keys.sorted()))
        agents[a].heartbeat = request
    }

    private func agentTimeout(_ a: Int, _ request: UInt64) {
        if agents[a].register == request {
            agents[a].register = nil
            agents[a].target = otherNode(than: agents[a].target)
        } else if agents[a].report == request {
            agents[a].report = nil
            if chance(0.5) { agents[a].target = otherNode(than: agents[a].target) }
        } else {
            return
        }
        agentPump(a)
    }

    private func agentReceive(_ a: Int, from k: Int, _ message: AgentMessage) {
        let name = agents[a].id
        switch message {
        case .notLeader(let request, let hint):
            guard clearRequest(a, request) else { return }
            let h = Int(hint) - 1
            agents[a].target = hint != noNode && h != k && h < nodes.count ? h : otherNode(than: k)
            queue.push(.agentWake(a, life: agents[a].life), at: now + random(in: 5_000...30_000))
        case .failed(let request, let why):
            guard clearRequest(a, request) else { return }
            if why == "connection refused" || chance(0.3) { agents[a].target = otherNode(than: k) }
            queue.push(.agentWake(a, life: agents[a].life), at: now + random(in: 20_000...60_000))
        case .registered(let request):
            guard agents[a].register == request else { return }
            agents[a].register = nil
            agents[a].registerWanted = false
            agents[a].streamNode = k
            agents[a].target = k
            record("\(name) registered with \(nodeName(k))")
        case .registerRefused(let request, let why):
            guard agents[a].register == request else { return }
            agents[a].register = nil
            record("\(name)'s registration refused by \(nodeName(k)): \(why)")
            queue.push(.agentWake(a, life: agents[a].life), at: now + 100_000)
        case .heartbeat(let request, let reregister, let abandon, let hasStream):
            guard agents[a].heartbeat == request else { return }
            agents[a].heartbeat = nil
            agents[a].target = k
            for key in abandon {
                agents[a].abandoned.insert(key)
                agents[a].specs[key] = nil
                if agents[a].running.removeValue(forKey: key) != nil {
                    stats.attemptsAbandoned += 1
                    record("\(name) abandons \(key) as \(nodeName(k)) says")
                }
            }
            if reregister || !hasStream {
                if agents[a].streamNode == k || reregister { agents[a].streamNode = nil }
                if !agents[a].registerWanted {
                    record("\(name) registers again with \(nodeName(k)) (\(reregister ? "unknown or dead there" : "no stream there"))")
                }
                agents[a].registerWanted = true
                agentPump(a)
            }
        case .reported(let request, let recorded, let why):
            guard agents[a].report == request else { return }
            agents[a].report = nil
            let report = agents[a].outbox.removeFirst()
            if recorded {
                stats.reportsRecorded += 1
            } else {
                if case .started = report.outcome {} else { stats.staleReportsRefused += 1 }
                record("\(name)'s report \(report.description) refused by \(nodeName(k)): \(why)")
            }
            agentPump(a)
        case .assignment(let key, let spec):
            accept(a, key, spec, from: k)
        case .streamEnded:
            guard agents[a].streamNode == k else { return }
            agents[a].streamNode = nil
            agents[a].registerWanted = true
            queue.push(.agentWake(a, life: agents[a].life), at: now + 50_000)
        }
    }

    /// Forgets the call `request` if it is outstanding; false for a stale reply.
    private func clearRequest(_ a: Int, _ request: UInt64) -> Bool {
        if agents[a].register == request {
            agents[a].register = nil
        } else if agents[a].report == request {
            agents[a].report = nil
        } else if agents[a].heartbeat == request {
            agents[a].heartbeat = nil
        } else {
            return false
        }
        return true
    }

    private func accept(_ a: Int, _ key: AttemptKey, _ spec: TaskSpec, from k: Int) {
        guard !agents[a].seen.contains(key) else { return }
        agents[a].seen.insert(key)
        let run = agents[a].nextRun
        agents[a].nextRun += 1
        agents[a].running[key] = run
        agents[a].specs[key] = spec
        agents[a].outbox.append(AgentReport(key: key, outcome: .started))
        let duration: UInt64 = spec.size == Self.poisonSize ? random(in: 5_000...40_000) : random(in: 20_000...400_000)
        record("\(agents[a].id) runs \(key) (from \(nodeName(k)), \(duration / 1000) ms)")
        queue.push(.agentFinish(a, life: agents[a].life, key, run: run), at: now + duration)
        agentPump(a)
    }

    private func agentFinish(_ a: Int, _ key: AttemptKey, run: UInt64) {
        guard agents[a].running[key] == run else { return }
        agents[a].running[key] = nil
        let spec = agents[a].specs.removeValue(forKey: key)!
        guard !agents[a].abandoned.contains(key) else { return }
        let outcome: ReportOutcome
        if spec.size == Self.poisonSize {
            outcome = .failed("poison")
        } else if chance(0.03) {
            outcome = .failed("flaky")
        } else {
            outcome = .completed(Self.result(task: key.task, attempt: key.attempt, agent: agents[a].id))
        }
        agents[a].outbox.append(AgentReport(key: key, outcome: outcome))
        agentPump(a)
    }

    /// The result an agent produces for an attempt: it names the attempt, so a result recorded
    /// against the wrong attempt is seen.
    static func result(task: TaskID, attempt: UInt32, agent: AgentID) -> TaskResult {
        var r = TaskResult()
        r.fingerprint = Double(task) * 1_000 + Double(attempt)
        r.kernel = agent
        r.verified = true
        return r
    }

    // MARK: - Clients

    private func newSubmission(copying original: Int?) {
        var sub: Submission
        if let original {
            sub = submissions[original]
            sub.duplicateOf = original
            sub.spec.seed &+= 1000  // a different spec under the same key: the first one's tasks come back
            sub.count = UInt32(random(in: 1...4))
        } else {
            let poison = chance(poisonRate)
            var spec = TaskSpec(size: poison ? Self.poisonSize : pick([64, 128, 256, 512])!)
            spec.seed = rng.next() % 1_000_000
            spec.zone = chance(0.3) ? pick(["z1", "z2"])! : ""
            spec.maxAttempts = UInt8(poison ? random(in: 1...3) as Int : random(in: 2...5) as Int)
            spec.timeoutMillis = chance(0.25) ? random(in: 200...800) : 0
            var key = ""
            if chance(0.6) {
                key = "k\(nextKey)"
                nextKey += 1
            }
            sub = Submission(key: key, spec: spec, count: UInt32(random(in: 1...4)), target: 0)
        }
        sub.state = .inFlight
        sub.sends = 0
        sub.target = clientTarget ?? random(in: 0...(nodes.count - 1))
        submissions.append(sub)
        stats.submissions += 1
        clientSend(submissions.count - 1)
    }

    private func clientSend(_ s: Int) {
        let send = nextSend
        nextSend += 1
        submissions[s].send = send
        submissions[s].sends += 1
        stats.messagesSent += 1
        if chance(dropRate) {
            stats.messagesDropped += 1
        } else {
            queue.push(.clientCall(node: submissions[s].target, submission: s, send: send), at: now + delay())
        }
        queue.push(.clientTimeout(s, send: send), at: now + random(in: 300_000...800_000))
    }

    private func clientTimedOut(_ s: Int) {
        if submissions[s].key.isEmpty && submitting && chance(0.5) {
            // No key: a blind retry could submit twice. Give up; the outcome is unknown.
            submissions[s].state = .abandoned
            record("client gives up on submission #\(s) (no key, outcome unknown)")
            return
        }
        submissions[s].target = random(in: 0...(nodes.count - 1))
        clientSend(s)
    }

    private func clientReceive(_ s: Int, send: UInt64, from k: Int, _ answer: ClientAnswer) {
        guard submissions[s].state == .inFlight, submissions[s].send == send else { return }
        switch answer {
        case .notLeader(let hint):
            let h = Int(hint) - 1
            let target = hint != noNode && h != k && h < nodes.count ? h : otherNode(than: k)
            submissions[s].target = target
            clientTarget = target
            queue.push(.clientSend(s, send: send), at: now + random(in: 5_000...20_000))
        case .failed:
            if chance(0.5) { submissions[s].target = otherNode(than: k) }
            queue.push(.clientSend(s, send: send), at: now + random(in: 20_000...50_000))
        case .refused(let why):
            submissions[s].state = .refused
            fail(.liveness, "a valid submission #\(s) (key '\(submissions[s].key)') was refused: \(why)")
        case .submitted(let first, let count, let existing):
            acknowledge(s, first: first, count: count, existing: existing, from: k)
        }
    }

    private func acknowledge(_ s: Int, first: TaskID, count: UInt32, existing: Bool, from k: Int) {
        submissions[s].state = .acked
        clientTarget = k
        stats.submissionsAcknowledged += 1
        if existing { stats.idempotentReplays += 1 }
        let sub = submissions[s]
        record("client: submission #\(s) (key '\(sub.key)') acknowledged by \(nodeName(k)): tasks \(first)..<\(first + UInt64(count))\(existing ? " (existing)" : "") after \(sub.sends) send(s)")
        if !sub.key.isEmpty {
            if let prev = keyAcks[sub.key] {
                if prev.first != first || prev.count != count {
                    fail(.idempotentSubmit, "submission #\(s) with key \(sub.key) got tasks \(first)..<\(first + UInt64(count)) (existing: \(existing)), an earlier one with the same key \(prev.first)..<\(prev.first + UInt64(prev.count))")
                    return
                }
            } else {
                keyAcks[sub.key] = (first, count)
            }
            if let created = keyCreated[sub.key], created.first != first || created.count != count {
                fail(.idempotentSubmit, "submission #\(s) with key \(sub.key) got tasks \(first)..<\(first + UInt64(count)), but the key created \(created.first)..<\(created.first + UInt64(created.count))")
                return
            }
        } else if count != sub.count {
            fail(.idempotentSubmit, "submission #\(s) of \(sub.count) tasks (no key) was acknowledged with \(count)")
            return
        }
        for id in first..<(first + UInt64(count)) { ackedTasks.insert(id) }
        if !sub.key.isEmpty && submitting && chance(0.3) {
            queue.push(.clientDuplicate(s), at: now + random(in: 50_000...2_000_000))
        }
    }

    // MARK: - Faults

    private func isolate(_ k: Int) {
        for j in nodes.indices where j != k {
            blocked[k * nodes.count + j] = true
            blocked[j * nodes.count + k] = true
        }
    }

    private func healNodes() {
        if blocked.contains(true) { record("node partition healed") }
        for i in blocked.indices { blocked[i] = false }
    }

    private func healAgents() {
        if agentCut.contains(true) { record("agent links healed") }
        for i in agentCut.indices { agentCut[i] = false }
    }

    private var currentLeader: Int? {
        var best: (Int, Term)?
        for k in nodes.indices {
            guard let r = nodes[k].raft, r.role == .leader else { continue }
            if best == nil || r.term > best!.1 { best = (k, r.term) }
        }
        return best?.0
    }

    private func injectFault() {
        switch pick([0, 0, 1, 1, 2, 3, 3, 4, 4, 4, 5, 5])! {
        case 0: partitionNodes()
        case 1:
            let up = nodes.indices.filter { nodes[$0].up }
            let victim = chance(0.4) ? currentLeader ?? pick(up) : pick(up)
            guard let victim else { return }
            crash(victim)
            queue.push(.restart(victim), at: now + random(in: 50_000...1_500_000))
        case 2: changeNetwork()
        case 3:
            guard let a = pick(agents.indices.filter { agents[$0].up }) else { return }
            crashAgent(a)
            queue.push(.agentRestart(a), at: now + random(in: 100_000...2_000_000))
        case 4:
            guard let a = pick(agents.indices.filter { agents[$0].up && agents[$0].stalledUntil <= now }) else { return }
            let long = chance(0.5)
            let length = long ? random(in: scheduler.deadAfter...3_000) : random(in: 50...scheduler.deadAfter)
            agents[a].stalledUntil = now + length * 1000
            stats.agentStalls += 1
            if length > scheduler.deadAfter { stats.longStalls += 1 }
            mix(14, now, UInt64(a), length)
            record("\(agents[a].id) stalls for \(length) ms (running \(agents[a].running.keys.sorted()))")
        default: partitionAgents()
        }
    }

    private func partitionNodes() {
        healNodes()
        let n = nodes.count
        guard n > 1 else { return }
        stats.partitions += 1
        var ids = Array(0..<n)
        ids.shuffle(using: &rng)
        let description: String
        func block(_ from: [Int], _ to: [Int]) {
            for a in from { for b in to where a != b { blocked[a * n + b] = true } }
        }
        switch random(in: 0...3) {
        case 0:
            let cut = random(in: 1...(n - 1))
            let a = Array(ids[..<cut]), b = Array(ids[cut...])
            block(a, b)
            block(b, a)
            description = "split \(a.sorted().map(nodeName)) | \(b.sorted().map(nodeName))"
        case 1:
            guard let l = currentLeader else { return }
            isolate(l)
            description = "leader \(nodeName(l)) isolated"
        case 2:
            let cut = random(in: 1...(n - 1))
            let a = Array(ids[..<cut]), b = Array(ids[cut...])
            block(b, a)
            description = "one-way: \(b.sorted().map(nodeName)) cannot reach \(a.sorted().map(nodeName))"
        default:
            for a in ids { for b in ids where a != b && chance(0.3) { block([a], [b]) } }
            description = "random one-way link cuts"
        }
        record("partition: \(description)")
        queue.push(.heal, at: now + random(in: 50_000...1_500_000))
    }

    private func partitionAgents() {
        healAgents()
        stats.agentPartitions += 1
        let n = nodes.count
        let description: String
        switch random(in: 0...2) {
        case 0:
            let a = random(in: 0...(agents.count - 1))
            for k in 0..<n { agentCut[a * n + k] = true }
            description = "\(agents[a].id) cut from every node"
        case 1:
            guard let l = currentLeader else { return }
            let a = random(in: 0...(agents.count - 1))
            agentCut[a * n + l] = true
            description = "\(agents[a].id) cut from the leader \(nodeName(l))"
        default:
            for i in agentCut.indices where chance(0.3) { agentCut[i] = true }
            description = "random agent links cut"
        }
        record("agent partition: \(description)")
        queue.push(.healAgents, at: now + random(in: 50_000...2_000_000))
    }

    private func changeNetwork() {
        dropRate = pick([0, 0, 0.01, 0.05, 0.2])!
        duplicateRate = pick([0, 0, 0.02, 0.1])!
        minDelay = random(in: 50...1_000)
        maxDelay = minDelay + random(in: 500...20_000)
        longDelayRate = pick([0, 0, 0.01, 0.05])!
        record("network: drop \(dropRate), duplicate \(duplicateRate), delay \(minDelay)...\(maxDelay)µs, long \(longDelayRate)")
    }

    // MARK: - Liveness

    private func endFaults() {
        faultsActive = false
        submitting = false
        healNodes()
        healAgents()
        dropRate = 0
        duplicateRate = 0
        longDelayRate = 0
        minDelay = 100
        maxDelay = 2_000
        record("faults end: network healed, crashed nodes and agents restart")
        for k in nodes.indices where !nodes[k].up { restart(k) }
        for a in agents.indices where !agents[a].up { startAgent(a) }
        livenessDeadline = now + options.livenessMilliseconds * 1000
        queue.push(.livenessCheck, at: now + 100_000)
    }

    /// Done when every submission is answered, every acknowledged task is terminal on the leader,
    /// and every node has applied the same log: then all manifests must be identical.
    private func livenessCheck() {
        guard !submissions.contains(where: { $0.state == .inFlight }) else { return }
        guard let l = currentLeader else { return }
        let m = nodes[l].manifest
        guard ackedTasks.allSatisfy({ m[$0]?.state.isTerminal == true }) else { return }
        let commit = nodes[l].raft!.commitIndex
        guard nodes.allSatisfy({ $0.up && $0.raft!.appliedIndex == commit }) else { return }
        let reference = m.snapshot()
        for k in nodes.indices where k != l {
            compareState(k, at: commit, nodes[k].manifest.snapshot())
        }
        compareState(l, at: commit, reference)
        checkIndexes(l, at: commit, reference)
        for id in ackedTasks.sorted() {
            let t = m[id]!
            if t.spec.size == Self.poisonSize {
                stats.poisonTasks += 1
                if t.state != .failed { fail(.wrongResult, "poison task \(id) ended \(t.state): \(describeAttempts(t))") }
            }
            switch t.state {
            case .succeeded: stats.tasksSucceeded += 1
            case .failed: stats.tasksFailed += 1
            default: break
            }
        }
        record("liveness: \(ackedTasks.count) acknowledged tasks terminal, \(nodes.count) manifests identical at index \(commit)")
        finished = true
    }

    private func livenessFailure() {
        if let s = submissions.firstIndex(where: { $0.state == .inFlight }) {
            fail(.liveness, "submission #\(s) (key '\(submissions[s].key)') was never acknowledged within \(options.livenessMilliseconds) ms after faults stopped (\(submissions[s].sends) sends); \(clusterState())")
            return
        }
        guard let l = currentLeader else {
            fail(.liveness, "no leader within \(options.livenessMilliseconds) ms after faults stopped; \(clusterState())")
            return
        }
        let m = nodes[l].manifest
        let open = ackedTasks.sorted().filter { m[$0]?.state.isTerminal != true }
        if !open.isEmpty {
            let details = open.prefix(3).map { id -> String in
                guard let t = m[id] else { return "task \(id): unknown to the leader \(nodeName(l))" }
                var s = describeTask(t)
                if let a = t.activeAttempt, let ai = agents.firstIndex(where: { $0.id == a.agent }) {
                    let agent = agents[ai]
                    let key = AttemptKey(task: id, attempt: a.number)
                    s += "; \(a.agent) \(agent.up ? "up" : "down"), \(m.agents[a.agent].map { "\($0.state) in the manifest" } ?? "unknown"), seen \(agent.seen.contains(key)), running \(agent.running[key] != nil), abandoned \(agent.abandoned.contains(key)), outbox \(agent.outbox.map(\.description)), stream \(agent.streamNode.map(nodeName) ?? "none")"
                }
                return s
            }
            fail(.terminal, "\(open.count) acknowledged task(s) not terminal \(options.livenessMilliseconds) ms after faults stopped (leader \(nodeName(l))): \(details.joined(separator: " | "))")
            return
        }
        fail(.liveness, "the nodes did not converge on one applied index within \(options.livenessMilliseconds) ms after faults stopped; \(clusterState())")
    }

    // MARK: - Descriptions

    private func clusterState() -> String {
        nodes.indices.map { k -> String in
            guard let r = nodes[k].raft else { return "\(nodeName(k)) down" }
            return "\(nodeName(k)) \(r.role.rawValue) t\(r.term) commit \(r.commitIndex) applied \(r.appliedIndex)"
        }.joined(separator: "; ")
    }

    private func describeNode(_ k: Int) -> String {
        guard let r = nodes[k].raft else { return "final: \(nodeName(k)) down" }
        let m = nodes[k].manifest
        return "final: \(nodeName(k)) \(r.role.rawValue) term \(r.term) commit \(r.commitIndex) applied \(r.appliedIndex); manifest: \(m.tasks.count) tasks, \(m.counts.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); agents \(m.agents.keys.sorted().map { "\($0) \(m.agents[$0]!.state)" }); orchestrator \(nodes[k].isLeader ? "leads term \(nodes[k].term) since \(nodes[k].since) ms" : "follows"), pass waits for \(nodes[k].passWaiting.sorted())\(nodes[k].passHung > 0 ? " and \(nodes[k].passHung) lost proposal(s)" : ""), proposals \(nodes[k].proposals.keys.sorted())"
    }

    private func describeAgent(_ a: Int) -> String {
        let g = agents[a]
        return "final: \(g.id) \(g.up ? "up" : "down") incarnation \(g.incarnation % 100_000), target \(nodeName(g.target)), stream \(g.streamNode.map(nodeName) ?? "none"), running \(g.running.keys.sorted()), outbox \(g.outbox.map(\.description))"
    }

    private func describe(_ c: ManifestCommand?) -> String {
        guard let c else { return "a non-command entry" }
        switch c {
        case .submit(let key, let spec, let count, _): return "submit(key '\(key)', \(count)×size \(spec.size))"
        case .assign(let t, let n, let agent, _): return "assign(t\(t)#\(n) → \(agent))"
        case .started(let t, let n, let agent, _): return "started(t\(t)#\(n) by \(agent))"
        case .complete(let t, let n, let agent, _, _): return "complete(t\(t)#\(n) by \(agent))"
        case .fail(let t, let n, let agent, let why, _): return "fail(t\(t)#\(n) by \(agent): \(why))"
        case .cancel(let t, _, _): return "cancel(t\(t))"
        case .retry(let t, _): return "retry(t\(t))"
        case .agentJoined(let agent, _, _, let inc, _, _): return "agentJoined(\(agent), incarnation \(inc % 100_000))"
        case .agentLeft(let agent, _): return "agentLeft(\(agent))"
        case .agentDead(let agent, let why, _): return "agentDead(\(agent): \(why))"
        case .pauseJob(let job, _): return "pauseJob(\(job))"
        case .resumeJob(let job, _): return "resumeJob(\(job))"
        }
    }

    private func describe(_ r: ManifestReply?) -> String {
        guard let r else { return "nothing" }
        switch r {
        case .submitted(let first, let count, let existing): return "tasks \(first)..<\(first + UInt64(count))\(existing ? " (existing)" : "")"
        case .done: return "done"
        case .refused(let why): return "refused (\(why))"
        }
    }

    private func describeAttempts(_ t: TaskRecord) -> String {
        "[" + t.attempts.map { "#\($0.number) \($0.agent) \($0.outcome)" }.joined(separator: "; ") + "]"
    }

    private func describeResult(_ r: TaskResult) -> String {
        let code = UInt64(r.fingerprint)
        return "t\(code / 1000)#\(code % 1000) by \(r.kernel)"
    }

    private func describeTask(_ t: TaskRecord) -> String {
        "task \(t.id) \(t.state) (failures \(t.failures)/\(t.spec.maxAttempts), size \(t.spec.size), timeout \(t.spec.timeoutMillis)) attempts \(describeAttempts(t))"
    }
}
