public import FlotillaProto
public import GRPCCore
public import Manifest
import Raft

/// Every limit a request to a node must respect, in one place. Each service handler validates its
/// whole request with the functions below before it allocates, proposes or indexes anything, so no
/// field value a client can send traps a node or reaches the replicated log unchecked.
///
/// A value out of range fails with `INVALID_ARGUMENT` naming the field, the limit and the value;
/// a request whose encoded size is over ``messageBytes`` is refused by the gRPC transport with
/// `RESOURCE_EXHAUSTED` naming the limit (``OversizedRequestGuard``). docs/operations.md lists them
/// all (`RequestLimitsTests` checks the table against ``table``).
public enum RequestLimits {
    /// The largest encoded request any node accepts.
    public static let messageBytes = 4 << 20
    /// Client ids (`client_id`): kept in the replicated session table and in every snapshot.
    public static let clientIDBytes = 256
    /// Idempotency keys of submissions (kept in the manifest).
    public static let keyBytes = 256
    /// Agent ids, zones and job names.
    public static let nameBytes = 256
    /// What an agent says about itself (`info`).
    public static let infoBytes = 1024
    /// A failure reason reported by an agent, and the kernel name in a result: longer ones are
    /// cut, not refused (refusing would drop the report).
    public static let reasonBytes = 4096
    public static let kernelBytes = 256
    /// Tasks one submission may create.
    public static let tasksPerSubmission = TaskManifest.maxTasksPerSubmission
    /// A task's own timeout (`spec.timeout_ms`): 7 days.
    public static let taskTimeoutMillis: UInt64 = 7 * 24 * 3_600_000
    /// Tasks one `ListTasks` answer may hold, and how many it holds when `limit` is 0. An answer
    /// also stops before its tasks pass ``listAnswerBytes`` (every client accepts 4 MiB answers):
    /// page with `after_id` set to the last id returned until a page comes back empty.
    public static let listPage: UInt32 = 100_000
    public static let listAnswerBytes = 3 << 20
    public static let defaultListPage: UInt32 = 1000
    /// Ids one `AwaitTasks` call may wait for.
    public static let awaitIDs = 100_000
    /// How long one `AwaitTasks` call may wait, and how long it waits when `timeout_ms` is 0.
    public static let awaitTimeoutMillis: UInt64 = 3_600_000
    public static let defaultAwaitTimeoutMillis: UInt64 = 60_000
    /// An agent's slots (0 only to drain a registered agent).
    public static let slots: UInt32 = 1024
    /// Running attempts one heartbeat may list (an agent runs at most ``slots`` at once).
    public static let heartbeatAttempts = Int(slots)
    /// A raw `Propose` command (a key-value command) and a raw `Read` query.
    public static let commandBytes = 1 << 20
    public static let queryBytes = 64 << 10
    /// Key-value keys (values take the rest of ``commandBytes``).
    public static let keyValueKeyBytes = 4096

    /// The table docs/operations.md shows: (field, limit, what happens beyond it).
    public static let table: [(field: String, limit: String)] = [
        ("any request", "\(messageBytes >> 20) MiB encoded"),
        ("client_id", "\(clientIDBytes) bytes"),
        ("key (idempotency)", "\(keyBytes) bytes"),
        ("agent_id, zone, job", "\(nameBytes) bytes"),
        ("info (agent)", "\(infoBytes) bytes"),
        ("failed (reason)", "\(reasonBytes) bytes (cut)"),
        ("completed.kernel", "\(kernelBytes) bytes (cut)"),
        ("count (submission)", "1 to \(tasksPerSubmission)"),
        ("spec.size", "1 to \(TaskSpec.maxSize)"),
        ("spec.threads", "0 to 1024"),
        ("spec.max_attempts", "0 to 100 (0 = 3)"),
        ("spec.timeout_ms", "0 to \(taskTimeoutMillis) (7 days; 0 = the cluster's default)"),
        ("limit (ListTasks)", "0 to \(listPage) (0 = \(defaultListPage)); an answer stops at \(listAnswerBytes >> 20) MiB of tasks"),
        ("ids (AwaitTasks)", "at most \(awaitIDs), each an existing task"),
        ("timeout_ms (AwaitTasks)", "0 to \(awaitTimeoutMillis) (1 hour; 0 = \(defaultAwaitTimeoutMillis / 1000) s)"),
        ("slots (Register)", "1 to \(slots) (0 to drain)"),
        ("running (Heartbeat)", "at most \(heartbeatAttempts) attempts"),
        ("command (Propose)", "\(commandBytes >> 20) MiB, a key-value command"),
        ("query (Read)", "\(queryBytes >> 10) KiB"),
        ("key (key-value)", "1 to \(keyValueKeyBytes) bytes"),
        ("add_voter (ChangeMembership)", "a node of cluster.yaml that is not a voter"),
    ]
}

/// `INVALID_ARGUMENT` naming the field and what it must be.
func invalid(_ field: String, _ why: String) -> RPCError {
    RPCError(code: .invalidArgument, message: "\(field): \(why)")
}

func checkBytes(_ value: String, _ field: String, max: Int, nonEmpty: Bool = false) throws(RPCError) {
    let n = value.utf8.count
    if nonEmpty && n == 0 { throw invalid(field, "must not be empty") }
    if n > max { throw invalid(field, "at most \(max) bytes, not \(n)") }
}

/// Text an agent produced (a failure reason, a kernel name), cut to `max` bytes rather than
/// refused: refusing would drop the report it belongs to.
func truncated(_ text: String, max: Int) -> String {
    text.utf8.count <= max ? text : String(decoding: text.utf8.prefix(max), as: UTF8.self)
}

// MARK: - Requests, one validation each

extension Flotilla_V1_ProposeRequest {
    /// The command, if it is a well-formed key-value command within the limits. Manifest commands
    /// go through the Tasks and Agents services, which build them from checked fields.
    func validatedCommand() throws(RPCError) -> [UInt8] {
        try checkBytes(clientID, "client_id", max: RequestLimits.clientIDBytes)
        if command.count > RequestLimits.commandBytes {
            throw invalid("command", "at most \(RequestLimits.commandBytes) bytes, not \(command.count)")
        }
        let bytes = [UInt8](command)
        if let problem = KeyValueStore.problem(bytes) { throw invalid("command", problem) }
        return bytes
    }
}

extension Flotilla_V1_ReadRequest {
    func validatedQuery() throws(RPCError) -> [UInt8] {
        if query.count > RequestLimits.queryBytes { throw invalid("query", "at most \(RequestLimits.queryBytes) bytes, not \(query.count)") }
        return [UInt8](query)
    }
}

extension Flotilla_V1_SubmitRequest {
    /// The spec and count a valid submission asks for.
    func validated() throws(RPCError) -> (spec: TaskSpec, count: UInt32) {
        try checkBytes(clientID, "client_id", max: RequestLimits.clientIDBytes)
        try checkBytes(key, "key", max: RequestLimits.keyBytes)
        guard count <= RequestLimits.tasksPerSubmission else {
            throw invalid("count", "at most \(RequestLimits.tasksPerSubmission) tasks per submission, not \(count)")
        }
        guard spec.timeoutMs <= RequestLimits.taskTimeoutMillis else {
            throw invalid("spec.timeout_ms", "at most \(RequestLimits.taskTimeoutMillis) (7 days), not \(spec.timeoutMs)")
        }
        try checkBytes(spec.zone, "spec.zone", max: RequestLimits.nameBytes)
        try checkBytes(spec.job, "spec.job", max: RequestLimits.nameBytes)
        do {
            return (try TaskSpec(spec), Swift.max(1, count))
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
    }
}

extension Flotilla_V1_ListTasksRequest {
    func validated() throws(RPCError) -> (state: TaskState?, limit: Int) {
        var state: TaskState?
        if !self.state.isEmpty {
            guard let s = TaskState(name: self.state) else {
                throw invalid(
                    "state",
                    "'\(self.state.prefix(64))' is not one of \(TaskState.allCases.map(\.description).joined(separator: ", "))")
            }
            state = s
        }
        guard limit <= RequestLimits.listPage else { throw invalid("limit", "at most \(RequestLimits.listPage), not \(limit)") }
        return (state, Int(limit == 0 ? RequestLimits.defaultListPage : limit))
    }
}

extension Flotilla_V1_AwaitTasksRequest {
    func validated() throws(RPCError) -> (ids: Set<TaskID>, timeout: Duration) {
        guard ids.count <= RequestLimits.awaitIDs else { throw invalid("ids", "at most \(RequestLimits.awaitIDs), not \(ids.count)") }
        guard timeoutMs <= RequestLimits.awaitTimeoutMillis else {
            throw invalid("timeout_ms", "at most \(RequestLimits.awaitTimeoutMillis) (1 hour), not \(timeoutMs)")
        }
        let millis = timeoutMs == 0 ? RequestLimits.defaultAwaitTimeoutMillis : timeoutMs
        return (Set(ids), .milliseconds(Int64(millis)))
    }
}

extension Flotilla_V1_ActionRequest {
    func validated(at now: Millis) throws(RPCError) -> ManifestCommand {
        try checkBytes(clientID, "client_id", max: RequestLimits.clientIDBytes)
        switch action {
        case .cancel(let id)?: return .cancel(task: id, reason: "cancelled by a client", at: now)
        case .retry(let id)?: return .retry(task: id, at: now)
        case .pauseJob(let job)?:
            try checkBytes(job, "pause_job", max: RequestLimits.nameBytes, nonEmpty: true)
            return .pauseJob(job: job, at: now)
        case .resumeJob(let job)?:
            try checkBytes(job, "resume_job", max: RequestLimits.nameBytes, nonEmpty: true)
            return .resumeJob(job: job, at: now)
        case nil: throw invalid("action", "set cancel, retry, pause_job or resume_job")
        }
    }
}

func checkAgentID(_ id: String) throws(RPCError) {
    try checkBytes(id, "agent_id", max: RequestLimits.nameBytes, nonEmpty: true)
}

extension Flotilla_V1_RegisterRequest {
    func validate() throws(RPCError) {
        try checkAgentID(agentID)
        try checkBytes(zone, "zone", max: RequestLimits.nameBytes)
        try checkBytes(info, "info", max: RequestLimits.infoBytes)
        // 0 only from a registered agent that drains (the manifest refuses it from a new one).
        guard slots <= RequestLimits.slots else {
            throw invalid("slots", "must be between 1 and \(RequestLimits.slots) (0 to drain), not \(slots)")
        }
    }
}

extension Flotilla_V1_AgentHeartbeatRequest {
    func validate() throws(RPCError) {
        try checkAgentID(agentID)
        guard running.count <= RequestLimits.heartbeatAttempts else {
            throw invalid("running", "at most \(RequestLimits.heartbeatAttempts) attempts, not \(running.count)")
        }
    }
}

extension Flotilla_V1_ReportRequest {
    func validatedCommand(at now: Millis) throws(RPCError) -> ManifestCommand {
        try checkAgentID(agentID)
        switch outcome {
        case .started?: return .started(task: taskID, attempt: attempt, agent: agentID, at: now)
        case .completed(let result)?:
            var r = TaskResult(result)
            r.kernel = truncated(r.kernel, max: RequestLimits.kernelBytes)
            return .complete(task: taskID, attempt: attempt, agent: agentID, result: r, at: now)
        case .failed(let why)?:
            return .fail(task: taskID, attempt: attempt, agent: agentID, reason: truncated(why, max: RequestLimits.reasonBytes), at: now)
        case nil: throw invalid("outcome", "set started, completed or failed")
        }
    }
}
