package import Raft

extension TaskManifest {
    private static let snapshotVersion: UInt8 = 1

    /// The whole manifest as bytes: the same state gives the same bytes on every node (everything
    /// is written in sorted order).
    public func snapshot() -> [UInt8] {
        var w = BinaryWriter(capacity: 64 + tasks.count * 160)
        w.write(Self.snapshotVersion)
        w.write(nextTaskID)
        w.write(UInt64(tasks.count))
        for id in tasks.keys.sorted() { tasks[id]!.encode(into: &w) }
        w.write(UInt64(agents.count))
        for id in agents.keys.sorted() { agents[id]!.encode(into: &w) }
        w.write(UInt64(pausedJobs.count))
        for job in pausedJobs.sorted() { w.write(string: job) }
        w.write(UInt64(keys.count))
        for key in keys.keys.sorted() {
            w.write(string: key)
            w.write(keys[key]!.first)
            w.write(UInt64(keys[key]!.count))
        }
        return w.bytes
    }

    /// A manifest from ``snapshot()``'s bytes.
    package init(snapshot bytes: [UInt8]) throws(MalformedData) {
        self.init()
        var r = BinaryReader(bytes[...])
        let version = try r.readUInt8()
        guard version == Self.snapshotVersion else { throw r.failure("manifest snapshot version \(version) is not supported") }
        nextTaskID = try r.readUInt64()
        let taskCount = try r.readUInt64()
        for _ in 0..<taskCount {
            let t = try TaskRecord(from: &r)
            guard t.id < nextTaskID else { throw r.failure("task \(t.id) is not below the next id \(nextTaskID)") }
            tasks[t.id] = t
        }
        let agentCount = try r.readUInt64()
        for _ in 0..<agentCount {
            let a = try AgentRecord(from: &r)
            agents[a.id] = a
        }
        let jobCount = try r.readUInt64()
        for _ in 0..<jobCount { pausedJobs.insert(try r.readString()) }
        let keyCount = try r.readUInt64()
        for _ in 0..<keyCount {
            let key = try r.readString()
            let first = try r.readUInt64()
            keys[key] = (first, UInt32(truncatingIfNeeded: try r.readUInt64()))
        }
        try r.expectEnd("the manifest snapshot")
        rebuildIndexes()
    }
}

extension TaskRecord {
    func encode(into w: inout BinaryWriter) {
        w.write(id)
        w.write(string: key)
        spec.encode(into: &w)
        w.write(state.rawValue)
        w.write(submittedAt)
        w.write(optional: endedAt)
        w.write(UInt64(attempts.count))
        for a in attempts { a.encode(into: &w) }
        w.write(failures)
        w.write(UInt8(result == nil ? 0 : 1))
        result?.encode(into: &w)
        w.write(string: reason)
    }

    init(from r: inout BinaryReader) throws(MalformedData) {
        let id = try r.readUInt64()
        let key = try r.readString()
        let spec = try TaskSpec(from: &r)
        guard let state = TaskState(rawValue: try r.readUInt8()) else { throw r.failure("unknown task state") }
        let submittedAt = try r.readUInt64()
        let endedAt = try r.readOptional()
        let attemptCount = try r.readUInt64()
        var attempts: [Attempt] = []
        for _ in 0..<attemptCount { attempts.append(try Attempt(from: &r)) }
        let failures = try r.readUInt8()
        let result = try r.readUInt8() == 1 ? try TaskResult(from: &r) : nil
        self.init(
            id: id, key: key, spec: spec, state: state, submittedAt: submittedAt, endedAt: endedAt, attempts: attempts,
            failures: failures, result: result, reason: try r.readString())
    }
}

extension Attempt {
    func encode(into w: inout BinaryWriter) {
        w.write(number)
        w.write(string: agent)
        w.write(assignedAt)
        w.write(optional: startedAt)
        w.write(optional: endedAt)
        switch outcome {
        case .active: w.write(UInt8(0))
        case .succeeded: w.write(UInt8(1))
        case .failed(let why):
            w.write(UInt8(2))
            w.write(string: why)
        case .abandoned(let why):
            w.write(UInt8(3))
            w.write(string: why)
        }
    }

    init(from r: inout BinaryReader) throws(MalformedData) {
        number = try r.readUInt32()
        agent = try r.readString()
        assignedAt = try r.readUInt64()
        startedAt = try r.readOptional()
        endedAt = try r.readOptional()
        switch try r.readUInt8() {
        case 0: outcome = .active
        case 1: outcome = .succeeded
        case 2: outcome = .failed(try r.readString())
        case 3: outcome = .abandoned(try r.readString())
        default: throw r.failure("unknown attempt outcome")
        }
    }
}

extension AgentRecord {
    func encode(into w: inout BinaryWriter) {
        w.write(string: id)
        w.write(string: zone)
        w.write(UInt32(slots))
        w.write(incarnation)
        w.write(state.rawValue)
        w.write(since)
        w.write(string: reason)
        w.write(string: info)
    }

    init(from r: inout BinaryReader) throws(MalformedData) {
        id = try r.readString()
        zone = try r.readString()
        slots = UInt16(truncatingIfNeeded: try r.readUInt32())
        incarnation = try r.readUInt64()
        guard let state = State(rawValue: try r.readUInt8()) else { throw r.failure("unknown agent state") }
        self.state = state
        since = try r.readUInt64()
        reason = try r.readString()
        info = try r.readString()
    }
}
