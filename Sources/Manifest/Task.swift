/// A task's id: assigned by the manifest in submission order, starting at 1.
public typealias TaskID = UInt64
/// An agent's id, chosen by whoever starts it (`flotilla agent --id a1`).
public typealias AgentID = String
/// Wall-clock time in milliseconds since 1970, stamped into a command by the node that proposes
/// it, so that applying the command is deterministic on every node.
public typealias Millis = UInt64

/// What a task computes. Only `matmul` exists today; pipeline stages come later.
public enum TaskKind: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case matmul = 1

    public var description: String { "matmul" }
    public init?(name: String) {
        guard name == "matmul" else { return nil }
        self = .matmul
    }
}

/// Floating-point precision of a matmul task: float32 runs `cblas_sgemm`, float64 `cblas_dgemm`.
public enum TaskPrecision: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case float32 = 1
    case float64 = 2

    public var description: String { self == .float32 ? "float32" : "float64" }
    public init?(name: String) {
        switch name {
        case "float32", "f32", "single": self = .float32
        case "float64", "f64", "double": self = .float64
        default: return nil
        }
    }
}

/// What to run, and the rules for running it.
public struct TaskSpec: Sendable, Hashable {
    public var kind: TaskKind = .matmul
    /// Matrix dimension n (the task multiplies two n×n matrices).
    public var size: UInt32
    public var precision: TaskPrecision = .float32
    /// Seeds the matrices, which the agent generates itself (no data is transferred).
    public var seed: UInt64 = 1
    /// BLAS threads on the agent; 0 leaves OpenBLAS's default.
    public var threads: UInt16 = 1
    /// The zone to prefer when placing the task ("" = any).
    public var zone: String = ""
    /// The job the task belongs to; a paused job's pending tasks are not placed.
    public var job: String = ""
    /// An attempt running longer than this is failed and re-queued (0 = the scheduler's default).
    public var timeoutMillis: UInt64 = 0
    /// After this many failed attempts the task is failed for good.
    public var maxAttempts: UInt8 = 3

    public static let maxSize: UInt32 = 65_536

    public init(size: UInt32) { self.size = size }

    /// Why this spec cannot be accepted, or nil.
    public var problem: String? {
        if size == 0 || size > Self.maxSize { return "size must be between 1 and \(Self.maxSize), not \(size)" }
        if maxAttempts == 0 { return "maxAttempts must be at least 1" }
        if threads > 1024 { return "threads must be at most 1024, not \(threads)" }
        if zone.utf8.count > 256 || job.utf8.count > 256 { return "zone and job names must be at most 256 bytes" }
        return nil
    }
}

/// Where a task is in its lifecycle: pending → assigned → running → succeeded | failed | cancelled.
/// A failed attempt sends the task back to pending until its attempts run out.
public enum TaskState: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case pending = 1
    case assigned = 2
    case running = 3
    case succeeded = 4
    case failed = 5
    case cancelled = 6

    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
    public var isActive: Bool { self == .assigned || self == .running }

    public var description: String {
        switch self {
        case .pending: "pending"
        case .assigned: "assigned"
        case .running: "running"
        case .succeeded: "succeeded"
        case .failed: "failed"
        case .cancelled: "cancelled"
        }
    }

    public init?(name: String) {
        guard let s = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = s
    }
}

/// What an agent measured and checked while running a matmul task.
public struct TaskResult: Sendable, Hashable {
    public var generationMicros: UInt64 = 0
    public var computeMicros: UInt64 = 0
    public var verificationMicros: UInt64 = 0
    public var gflops: Double = 0
    /// Freivalds' check of the product passed on the agent.
    public var verified: Bool = false
    /// xᵀ·C·y for vectors derived from the seed: a client recomputes it in O(n²) without the product.
    public var fingerprint: Double = 0
    /// The OpenBLAS kernel that ran (`openblas_get_corename`), e.g. "SkylakeX".
    public var kernel: String = ""
    /// BLAS threads actually used.
    public var threads: UInt16 = 0

    public init() {}
}

/// How one attempt ended.
public enum AttemptOutcome: Sendable, Hashable, CustomStringConvertible {
    /// Still assigned or running.
    case active
    case succeeded
    /// The agent reported a failure.
    case failed(String)
    /// The attempt was abandoned: its agent died or restarted, it timed out, or the task was cancelled.
    case abandoned(String)

    public var description: String {
        switch self {
        case .active: "active"
        case .succeeded: "succeeded"
        case .failed(let why): "failed: \(why)"
        case .abandoned(let why): "abandoned: \(why)"
        }
    }
}

/// One assignment of a task to an agent. Its number is the fencing token: a report naming any
/// other attempt than the task's current active one is refused.
public struct Attempt: Sendable, Hashable {
    public var number: UInt32
    public var agent: AgentID
    public var assignedAt: Millis
    public var startedAt: Millis?
    public var endedAt: Millis?
    public var outcome: AttemptOutcome
}

/// A task as the manifest records it.
public struct TaskRecord: Sendable, Hashable {
    public var id: TaskID
    /// The client's idempotency key ("" = none).
    public var key: String
    public var spec: TaskSpec
    public var state: TaskState
    public var submittedAt: Millis
    public var endedAt: Millis?
    public var attempts: [Attempt]
    /// Failed or abandoned attempts since submission or the last retry; at `spec.maxAttempts` the task fails.
    public var failures: UInt8
    public var result: TaskResult?
    /// Why the task failed or was cancelled.
    public var reason: String

    /// The attempt running now, if any.
    public var activeAttempt: Attempt? {
        guard let last = attempts.last, last.outcome == .active else { return nil }
        return last
    }
}

/// An agent as the manifest records it. Only transitions are replicated (joined, left, dead);
/// heartbeats stay in the leader's memory.
public struct AgentRecord: Sendable, Hashable {
    public enum State: UInt8, Sendable, Hashable, CustomStringConvertible {
        case live = 1
        case dead = 2
        case left = 3
        public var description: String { self == .live ? "live" : self == .dead ? "dead" : "left" }
    }
    public var id: AgentID
    public var zone: String
    public var slots: UInt16
    /// Changes each time the agent process starts: a new incarnation means the old one's work is gone.
    public var incarnation: UInt64
    public var state: State
    public var since: Millis
    /// Why the agent is dead or left.
    public var reason: String
    /// What the agent runs on (OpenBLAS kernel and threads), for operators.
    public var info: String
}
