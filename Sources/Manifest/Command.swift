package import Raft

/// A change to the manifest, as it travels in a Raft log entry. Every command carries the time
/// its proposer stamped on it, so that applying it is deterministic.
public enum ManifestCommand: Sendable, Hashable {
    /// Submits `count` tasks with `spec` (seeds `spec.seed`, `spec.seed + 1`, ...). A non-empty
    /// `key` makes the submission idempotent: the same key returns the tasks it created first.
    case submit(key: String, spec: TaskSpec, count: UInt32, at: Millis)
    /// Assigns a pending task to a live agent with a free slot; `attempt` must be the task's next
    /// attempt number (the fencing token of the assignment).
    case assign(task: TaskID, attempt: UInt32, agent: AgentID, at: Millis)
    /// The agent started the attempt.
    case started(task: TaskID, attempt: UInt32, agent: AgentID, at: Millis)
    /// The agent finished the attempt with a result.
    case complete(task: TaskID, attempt: UInt32, agent: AgentID, result: TaskResult, at: Millis)
    /// The attempt failed (reported by its agent, or timed out according to the leader).
    case fail(task: TaskID, attempt: UInt32, agent: AgentID, reason: String, at: Millis)
    case cancel(task: TaskID, reason: String, at: Millis)
    /// Sends a failed or cancelled task back to pending with a fresh budget of attempts.
    case retry(task: TaskID, at: Millis)
    case agentJoined(agent: AgentID, zone: String, slots: UInt16, incarnation: UInt64, info: String, at: Millis)
    case agentLeft(agent: AgentID, at: Millis)
    case agentDead(agent: AgentID, reason: String, at: Millis)
    case pauseJob(job: String, at: Millis)
    case resumeJob(job: String, at: Millis)
}

/// The answer to a command, returned to whoever proposed it.
public enum ManifestReply: Sendable, Hashable {
    /// Tasks `first ..< first + count` exist; `existing` when an earlier submission with the same key made them.
    case submitted(first: TaskID, count: UInt32, existing: Bool)
    case done
    /// The command changed nothing, and why (a stale attempt, an unknown task, ...).
    case refused(String)
}

/// Manifest command bytes start at this tag value; lower tags belong to the key-value store.
public let manifestCommandTagBase: UInt8 = 0x10

extension ManifestCommand {
    private enum Tag: UInt8 {
        case submit = 0x10, assign, started, complete, fail, cancel, retry, agentJoined, agentLeft, agentDead, pauseJob, resumeJob
    }

    public var encoded: [UInt8] {
        var w = BinaryWriter(capacity: 64)
        switch self {
        case .submit(let key, let spec, let count, let at):
            w.write(Tag.submit.rawValue)
            w.write(string: key)
            spec.encode(into: &w)
            w.write(UInt64(count))
            w.write(at)
        case .assign(let task, let attempt, let agent, let at):
            w.write(Tag.assign.rawValue)
            w.write(task)
            w.write(attempt)
            w.write(string: agent)
            w.write(at)
        case .started(let task, let attempt, let agent, let at):
            w.write(Tag.started.rawValue)
            w.write(task)
            w.write(attempt)
            w.write(string: agent)
            w.write(at)
        case .complete(let task, let attempt, let agent, let result, let at):
            w.write(Tag.complete.rawValue)
            w.write(task)
            w.write(attempt)
            w.write(string: agent)
            result.encode(into: &w)
            w.write(at)
        case .fail(let task, let attempt, let agent, let reason, let at):
            w.write(Tag.fail.rawValue)
            w.write(task)
            w.write(attempt)
            w.write(string: agent)
            w.write(string: reason)
            w.write(at)
        case .cancel(let task, let reason, let at):
            w.write(Tag.cancel.rawValue)
            w.write(task)
            w.write(string: reason)
            w.write(at)
        case .retry(let task, let at):
            w.write(Tag.retry.rawValue)
            w.write(task)
            w.write(at)
        case .agentJoined(let agent, let zone, let slots, let incarnation, let info, let at):
            w.write(Tag.agentJoined.rawValue)
            w.write(string: agent)
            w.write(string: zone)
            w.write(UInt32(slots))
            w.write(incarnation)
            w.write(string: info)
            w.write(at)
        case .agentLeft(let agent, let at):
            w.write(Tag.agentLeft.rawValue)
            w.write(string: agent)
            w.write(at)
        case .agentDead(let agent, let reason, let at):
            w.write(Tag.agentDead.rawValue)
            w.write(string: agent)
            w.write(string: reason)
            w.write(at)
        case .pauseJob(let job, let at):
            w.write(Tag.pauseJob.rawValue)
            w.write(string: job)
            w.write(at)
        case .resumeJob(let job, let at):
            w.write(Tag.resumeJob.rawValue)
            w.write(string: job)
            w.write(at)
        }
        return w.bytes
    }

    package init(decoding bytes: [UInt8]) throws(MalformedData) {
        var r = BinaryReader(bytes[...])
        guard let tag = Tag(rawValue: try r.readUInt8()) else { throw r.failure("unknown manifest command tag \(bytes[0])") }
        switch tag {
        case .submit:
            let key = try r.readString()
            let spec = try TaskSpec(from: &r)
            let count = try r.readUInt64()
            guard count <= UInt64(UInt32.max) else { throw r.failure("task count \(count) too large") }
            self = .submit(key: key, spec: spec, count: UInt32(count), at: try r.readUInt64())
        case .assign:
            self = .assign(task: try r.readUInt64(), attempt: try r.readUInt32(), agent: try r.readString(), at: try r.readUInt64())
        case .started:
            self = .started(task: try r.readUInt64(), attempt: try r.readUInt32(), agent: try r.readString(), at: try r.readUInt64())
        case .complete:
            self = .complete(
                task: try r.readUInt64(), attempt: try r.readUInt32(), agent: try r.readString(),
                result: try TaskResult(from: &r), at: try r.readUInt64())
        case .fail:
            self = .fail(
                task: try r.readUInt64(), attempt: try r.readUInt32(), agent: try r.readString(), reason: try r.readString(),
                at: try r.readUInt64())
        case .cancel:
            self = .cancel(task: try r.readUInt64(), reason: try r.readString(), at: try r.readUInt64())
        case .retry:
            self = .retry(task: try r.readUInt64(), at: try r.readUInt64())
        case .agentJoined:
            let agent = try r.readString()
            let zone = try r.readString()
            let slots = try r.readUInt32()
            guard slots <= UInt32(UInt16.max) else { throw r.failure("\(slots) slots is too many") }
            self = .agentJoined(
                agent: agent, zone: zone, slots: UInt16(slots), incarnation: try r.readUInt64(), info: try r.readString(),
                at: try r.readUInt64())
        case .agentLeft:
            self = .agentLeft(agent: try r.readString(), at: try r.readUInt64())
        case .agentDead:
            self = .agentDead(agent: try r.readString(), reason: try r.readString(), at: try r.readUInt64())
        case .pauseJob:
            self = .pauseJob(job: try r.readString(), at: try r.readUInt64())
        case .resumeJob:
            self = .resumeJob(job: try r.readString(), at: try r.readUInt64())
        }
        try r.expectEnd("a manifest command")
    }
}

extension ManifestReply {
    public var encoded: [UInt8] {
        var w = BinaryWriter()
        switch self {
        case .submitted(let first, let count, let existing):
            w.write(UInt8(1))
            w.write(first)
            w.write(UInt64(count))
            w.write(UInt8(existing ? 1 : 0))
        case .done:
            w.write(UInt8(2))
        case .refused(let why):
            w.write(UInt8(3))
            w.write(string: why)
        }
        return w.bytes
    }

    package init(decoding bytes: [UInt8]) throws(MalformedData) {
        var r = BinaryReader(bytes[...])
        switch try r.readUInt8() {
        case 1:
            let first = try r.readUInt64()
            let count = try r.readUInt64()
            guard count <= UInt64(UInt32.max) else { throw r.failure("task count \(count) too large") }
            self = .submitted(first: first, count: UInt32(count), existing: try r.readUInt8() == 1)
        case 2: self = .done
        case 3: self = .refused(try r.readString())
        default: throw r.failure("unknown manifest reply")
        }
        try r.expectEnd("a manifest reply")
    }
}

// MARK: - Encodings of the value types (shared by commands and snapshots)

extension BinaryWriter {
    mutating func write(string: String) { write(lengthPrefixed: Array(string.utf8)) }
    mutating func write(double: Double) { write(double.bitPattern) }
    mutating func write(optional value: UInt64?) {
        write(UInt8(value == nil ? 0 : 1))
        if let value { write(value) }
    }
}

extension BinaryReader {
    mutating func readString() throws(MalformedData) -> String {
        let bytes = try readLengthPrefixed()
        guard let s = String(validating: bytes, as: UTF8.self) else { throw failure("a string is not valid UTF-8") }
        return s
    }
    mutating func readDouble() throws(MalformedData) -> Double { Double(bitPattern: try readUInt64()) }
    mutating func readOptional() throws(MalformedData) -> UInt64? {
        try readUInt8() == 0 ? nil : try readUInt64()
    }
}

extension TaskSpec {
    func encode(into w: inout BinaryWriter) {
        w.write(kind.rawValue)
        w.write(size)
        w.write(precision.rawValue)
        w.write(seed)
        w.write(UInt32(threads))
        w.write(string: zone)
        w.write(string: job)
        w.write(timeoutMillis)
        w.write(maxAttempts)
    }

    init(from r: inout BinaryReader) throws(MalformedData) {
        guard let kind = TaskKind(rawValue: try r.readUInt8()) else { throw r.failure("unknown task kind") }
        self.init(size: try r.readUInt32())
        self.kind = kind
        guard let precision = TaskPrecision(rawValue: try r.readUInt8()) else { throw r.failure("unknown precision") }
        self.precision = precision
        seed = try r.readUInt64()
        let threads = try r.readUInt32()
        guard threads <= UInt32(UInt16.max) else { throw r.failure("\(threads) threads is too many") }
        self.threads = UInt16(threads)
        zone = try r.readString()
        job = try r.readString()
        timeoutMillis = try r.readUInt64()
        maxAttempts = try r.readUInt8()
    }
}

extension TaskResult {
    func encode(into w: inout BinaryWriter) {
        w.write(generationMicros)
        w.write(computeMicros)
        w.write(verificationMicros)
        w.write(double: gflops)
        w.write(UInt8(verified ? 1 : 0))
        w.write(double: fingerprint)
        w.write(string: kernel)
        w.write(UInt32(threads))
    }

    init(from r: inout BinaryReader) throws(MalformedData) {
        self.init()
        generationMicros = try r.readUInt64()
        computeMicros = try r.readUInt64()
        verificationMicros = try r.readUInt64()
        gflops = try r.readDouble()
        verified = try r.readUInt8() == 1
        fingerprint = try r.readDouble()
        kernel = try r.readString()
        threads = UInt16(truncatingIfNeeded: try r.readUInt32())
    }
}
