package import Manifest

/// What one run of the ``ManifestSimulator`` does. Everything not set here is drawn from the seed.
public struct ManifestSimulationOptions: Sendable, Hashable {
    /// Control-plane nodes (Raft voters): 3 or 5 are typical.
    public var nodes: Int = 3
    /// How long faults are injected (and clients submit), in simulated milliseconds.
    public var faultMilliseconds: UInt64 = 4_000
    /// After faults stop, every acknowledged submission's tasks must be terminal within this.
    public var livenessMilliseconds: UInt64 = 10_000
    /// Node and agent crashes, stalls, partitions and message loss. Off: a quiet cluster.
    public var faults: Bool = true
    /// Also watch the Raft layer with ``SafetyChecker`` (election safety, log matching, ...).
    public var raftChecks: Bool = true
    /// How many events the trace of a failing run shows.
    public var traceLength: Int = 200
    /// Flaws of today's control plane to model (the simulator found them; see ``ControlPlaneFlaw``).
    /// Empty: the nodes behave as the fixed control plane would.
    public var flaws: Set<ControlPlaneFlaw> = []
    /// Deliberate manifest bugs, to show the checkers catch them.
    package var injectedBugs: Set<ManifestBug> = []
    /// Checks to skip (to show that another check catches a bug too).
    package var disabledChecks: Set<ManifestViolation.Property> = []

    public init(nodes: Int = 3) { self.nodes = nodes }

    public func validate() throws(SimulationError) {
        guard (1...9).contains(nodes) else { throw .invalidOption("--nodes must be between 1 and 9, got \(nodes)") }
        guard faultMilliseconds <= 3_600_000 else { throw .invalidOption("fault time must be at most one simulated hour") }
        guard livenessMilliseconds >= 1_000 else { throw .invalidOption("liveness bound must be at least 1000 ms") }
    }
}

/// Behaviours of the control plane (`Sources/ControlPlane`) that the manifest simulator found to
/// break liveness. The simulator models the nodes itself; by default it models them fixed, and
/// with a flaw switched on it behaves as today's code does, so the failing seeds stay reproducible.
public enum ControlPlaneFlaw: String, Sendable, Hashable, CaseIterable {
    /// `Orchestrator.heartbeat` tells an agent to abandon every running attempt that the node's
    /// own manifest does not show as the agent's active one. A deposed leader that still believes
    /// it leads (or a new leader that has not applied the whole log yet) does not know the newest
    /// assignments, so the agent drops an attempt that is current in the committed manifest, and
    /// never runs it again (it has seen it): the task stays assigned until its timeout (30 minutes
    /// by default). Fixed: abandon only attempts the manifest shows as over — ended, or another
    /// agent's — which stays true in every later state.
    case abandonUnknownAttempts
    /// `Driver.propose` stores a proposal at its log index, overwriting a pending proposal at the
    /// same index (possible when the node's log was truncated below it and the node leads again)
    /// without answering it. The overwritten caller waits forever; when it is the orchestrator's
    /// scheduling pass (which awaits its proposals), that node never schedules again, even as
    /// leader. Fixed: fail the overwritten proposal (proposal lost) first.
    case overwritePendingProposal
}

/// A broken promise of the task manifest, the scheduler or the agents' protocol.
public struct ManifestViolation: Sendable, Hashable, CustomStringConvertible {
    public enum Property: String, Sendable, Hashable, CaseIterable {
        /// A task has two succeeded attempts, or a succeeded task's state, result or succeeded
        /// attempt changed afterwards, on some node (or two nodes disagree on which attempt succeeded).
        case succeededTwice
        /// A recorded result is not the one the succeeded attempt produced (or a poison task, which
        /// fails on every agent, succeeded).
        case wrongResult
        /// A report (started, complete, fail) that did not name the task's active attempt and its
        /// agent was recorded: the fence let a stale attempt through.
        case fencedReports
        /// Right after `agentDead` (or a new incarnation's `agentJoined`) applied, the agent still
        /// had an active attempt, or one of its tasks was not pending again (nor failed for good).
        case deadAgentRequeued
        /// Two nodes that applied the same index hold different manifests (or replied differently).
        case manifestsAgree
        /// The manifest's derived indexes (pending, active per agent, counts) disagree with its tasks.
        case manifestIndexes
        /// A submission retried with the same idempotency key got different tasks, or created twice.
        case idempotentSubmit
        /// Once faults stopped, an acknowledged submission's tasks did not all reach a terminal state in time.
        case terminal
        /// Once faults stopped, the cluster did not recover (no leader, a submission never
        /// acknowledged, nodes never converged, a message storm).
        case liveness
        /// The Raft layer broke one of its own properties (``SafetyChecker``).
        case raft
    }

    public var property: Property
    public var timeMicros: UInt64
    public var detail: String

    public var description: String {
        "\(property.rawValue) violated at t=\(formatMillis(timeMicros)): \(detail)"
    }
}

/// Counters of what a manifest run did, to show the faults were real and the work got done.
public struct ManifestSimulationStats: Sendable, Hashable {
    public var events = 0
    public var messagesSent = 0
    public var messagesDropped = 0
    public var leadersElected = 0
    public var nodeCrashes = 0
    public var partitions = 0
    public var snapshotsInstalled = 0
    public var agentCrashes = 0
    public var agentStalls = 0
    /// Stalls longer than the dead-agent timeout.
    public var longStalls = 0
    public var agentPartitions = 0
    /// Client submissions (first sends; duplicates of an acknowledged key included).
    public var submissions = 0
    public var submissionsAcknowledged = 0
    /// Acknowledgements that returned an earlier submission's tasks (same key).
    public var idempotentReplays = 0
    /// Distinct tasks of acknowledged submissions.
    public var tasksSubmitted = 0
    public var tasksSucceeded = 0
    public var tasksFailed = 0
    public var poisonTasks = 0
    public var assignments = 0
    public var agentsDeclaredDead = 0
    /// `agentJoined`s that replaced a dead agent or an earlier incarnation.
    public var agentRejoins = 0
    public var reportsRecorded = 0
    /// Reports of superseded attempts that came back refused: the fence at work.
    public var staleReportsRefused = 0
    /// Attempts the leader told an agent to abandon.
    public var attemptsAbandoned = 0
    /// Tasks re-queued by an agent's death or restart, and then assigned again.
    public var requeues = 0
    /// Total simulated milliseconds from those deaths to the re-assignments.
    public var requeueMillis: UInt64 = 0

    public var meanRequeueMillis: Double? { requeues == 0 ? nil : Double(requeueMillis) / Double(requeues) }

    public init() {}

    public mutating func add(_ o: ManifestSimulationStats) {
        events += o.events; messagesSent += o.messagesSent; messagesDropped += o.messagesDropped
        leadersElected += o.leadersElected; nodeCrashes += o.nodeCrashes; partitions += o.partitions
        snapshotsInstalled += o.snapshotsInstalled; agentCrashes += o.agentCrashes; agentStalls += o.agentStalls
        longStalls += o.longStalls; agentPartitions += o.agentPartitions; submissions += o.submissions
        submissionsAcknowledged += o.submissionsAcknowledged; idempotentReplays += o.idempotentReplays
        tasksSubmitted += o.tasksSubmitted; tasksSucceeded += o.tasksSucceeded; tasksFailed += o.tasksFailed
        poisonTasks += o.poisonTasks; assignments += o.assignments; agentsDeclaredDead += o.agentsDeclaredDead
        agentRejoins += o.agentRejoins; reportsRecorded += o.reportsRecorded
        staleReportsRefused += o.staleReportsRefused; attemptsAbandoned += o.attemptsAbandoned
        requeues += o.requeues; requeueMillis += o.requeueMillis
    }
}

/// The outcome of one seed of the manifest simulator.
public struct ManifestSimulationResult: Sendable {
    public var seed: UInt64
    public var options: ManifestSimulationOptions
    /// The first violation found (a run stops there), or nil.
    public var violation: ManifestViolation?
    /// A digest of every event of the run: equal for two runs of the same seed.
    public var fingerprint: UInt64
    public var stats: ManifestSimulationStats
    /// The last events before the end of the run, oldest first (only for a failing run).
    public var trace: [String]
}

/// Runs many seeds of the manifest simulator in parallel and summarises them.
public enum ManifestSimulationRunner {
    public struct Summary: Sendable {
        public var seedsRun = 0
        /// Failing seeds, in seed order, each replayed once more with its trace.
        public var failures: [ManifestSimulationResult] = []
        public var stats = ManifestSimulationStats()
        public var violations: Int { failures.count }
    }

    public static func run(
        seeds: Range<UInt64>, options: ManifestSimulationOptions, jobs: Int,
        progress: (@Sendable (_ done: Int, _ failures: Int) -> Void)? = nil
    ) async -> Summary {
        var untraced = options
        untraced.traceLength = 0
        let fast = untraced
        var summary = Summary()
        await withTaskGroup(of: ManifestSimulationResult.self) { group in
            var next = seeds.lowerBound
            func addSeed() {
                guard next < seeds.upperBound else { return }
                let seed = next
                next += 1
                group.addTask { await runOffCooperativePool { ManifestSimulator(seed: seed, options: fast).run() } }
            }
            for _ in 0..<max(1, jobs) { addSeed() }
            while let r = await group.next() {
                summary.seedsRun += 1
                summary.stats.add(r.stats)
                if r.violation != nil {
                    let seed = r.seed
                    summary.failures.append(await runOffCooperativePool { ManifestSimulator(seed: seed, options: options).run() })
                }
                if summary.seedsRun % 64 == 0 || summary.seedsRun == seeds.count { progress?(summary.seedsRun, summary.failures.count) }
                addSeed()
            }
        }
        summary.failures.sort { $0.seed < $1.seed }
        return summary
    }
}
