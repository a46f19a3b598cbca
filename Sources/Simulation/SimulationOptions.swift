public import Raft

/// What one simulated run does. Everything not set here is drawn from the seed.
public struct SimulationOptions: Sendable, Hashable {
    /// Founding voters: 3, 5 or 7.
    public var nodes: Int = 5
    /// Extra nodes, started empty, that membership changes may add (and founding ones may be removed).
    public var spareNodes: Int = 2
    /// How long faults are injected, in simulated milliseconds.
    public var faultMilliseconds: UInt64 = 4_000
    /// After faults stop, a leader must emerge and a new proposal commit on every voter within this.
    public var livenessMilliseconds: UInt64 = 10_000
    /// Crashes, partitions, message loss and duplication.
    public var faults: Bool = true
    /// Membership changes and leadership transfers mixed into the faults.
    public var reconfiguration: Bool = true
    /// When set, nodes keep their logs with the real `FileLogStorage` in folders under this one
    /// (removed at the end of the run), and some crash in the middle of an fsync: the simulator
    /// then checks the store's recovery together with the protocol. Much slower (real fsyncs).
    public var durableDirectory: String?
    /// How many events the trace of a failing run shows.
    public var traceLength: Int = 200
    /// Deliberate protocol bugs, to show the checkers catch them.
    package var injectedBugs: Set<InjectedBug> = []

    public init(nodes: Int = 5) { self.nodes = nodes }

    public func validate() throws(SimulationError) {
        guard (1...9).contains(nodes) else { throw .invalidOption("--nodes must be between 1 and 9, got \(nodes)") }
        guard (0...4).contains(spareNodes) else { throw .invalidOption("spare nodes must be between 0 and 4, got \(spareNodes)") }
        guard faultMilliseconds <= 3_600_000 else { throw .invalidOption("fault time must be at most one simulated hour") }
        guard livenessMilliseconds >= 1_000 else { throw .invalidOption("liveness bound must be at least 1000 ms") }
    }
}

public enum SimulationError: Error, Sendable, CustomStringConvertible {
    case invalidOption(String)
    public var description: String {
        switch self { case .invalidOption(let s): return s }
    }
}

/// A broken property, with the simulated time it was seen at.
public struct Violation: Sendable, Hashable, CustomStringConvertible {
    public enum Property: String, Sendable, Hashable {
        case electionSafety = "election safety"
        case leaderAppendOnly = "leader append-only"
        case logMatching = "log matching"
        case leaderCompleteness = "leader completeness"
        case stateMachineSafety = "state-machine safety"
        case linearizableReads = "linearizable reads"
        case liveness = "liveness"
    }

    public var property: Property
    public var timeMicros: UInt64
    public var detail: String

    public var description: String {
        "\(property.rawValue) violated at t=\(formatMillis(timeMicros)): \(detail)"
    }
}

func formatMillis(_ micros: UInt64) -> String {
    let ms = micros / 1000
    let frac = (micros % 1000) / 100
    return "\(ms).\(frac)ms"
}

/// Counters of what a run did, to show the faults were real.
public struct SimulationStats: Sendable, Hashable {
    public var events = 0
    public var messagesSent = 0
    public var messagesDropped = 0
    public var messagesDuplicated = 0
    public var proposals = 0
    public var proposalsAcknowledged = 0
    public var readsServed = 0
    public var leadersElected = 0
    public var crashes = 0
    public var partitions = 0
    public var snapshotsInstalled = 0
    public var crashesDuringSync = 0
    public var configurationChanges = 0
    public var leadershipTransfers = 0
    public var maxTerm: Term = 0

    public mutating func add(_ o: SimulationStats) {
        events += o.events; messagesSent += o.messagesSent; messagesDropped += o.messagesDropped
        messagesDuplicated += o.messagesDuplicated; proposals += o.proposals
        proposalsAcknowledged += o.proposalsAcknowledged; readsServed += o.readsServed
        leadersElected += o.leadersElected; crashes += o.crashes; partitions += o.partitions
        snapshotsInstalled += o.snapshotsInstalled; crashesDuringSync += o.crashesDuringSync; configurationChanges += o.configurationChanges
        leadershipTransfers += o.leadershipTransfers; maxTerm = max(maxTerm, o.maxTerm)
    }
}

/// The outcome of one seed.
public struct SimulationResult: Sendable {
    public var seed: UInt64
    public var options: SimulationOptions
    /// The first violation found (a run stops there), or nil.
    public var violation: Violation?
    /// A digest of every event of the run: equal for two runs of the same seed.
    public var fingerprint: UInt64
    public var stats: SimulationStats
    /// The last events before the end of the run, oldest first.
    public var trace: [String]
}
