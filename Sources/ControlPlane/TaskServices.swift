import Foundation
public import FlotillaProto
public import GRPCCore
import Manifest
import Raft

/// `flotilla.v1.Tasks`: submit tasks and read the manifest. Submissions and actions are
/// proposals (exactly-once through the client's session); reads are linearizable (a ReadIndex
/// round, then the local manifest), served by any node.
public struct TasksService: Flotilla_V1_Tasks.SimpleServiceProtocol {
    private let orchestrator: Orchestrator
    private let config: ClusterConfig

    public init(orchestrator: Orchestrator, config: ClusterConfig) {
        self.orchestrator = orchestrator
        self.config = config
    }

    private var node: NodeRuntime { orchestrator.node }
    private var store: ManifestStore { orchestrator.store }

    public func submit(request: Flotilla_V1_SubmitRequest, context: ServerContext) async throws -> Flotilla_V1_SubmitResponse {
        let (spec, count) = try request.validated()
        let command = ManifestCommand.submit(key: request.key, spec: spec, count: count, at: wallClockMillis())
        let (reply, index) = try await propose(command, client: request.clientID, sequence: request.sequence)
        switch reply {
        case .submitted(let first, let count, let existing):
            return .with {
                $0.firstID = first
                $0.count = count
                $0.existing = existing
                $0.index = index
            }
        case .refused(let why): throw RPCError(code: .invalidArgument, message: why)
        case .done: throw RPCError(code: .internalError, message: "unexpected reply to a submission")
        }
    }

    public func getTask(request: Flotilla_V1_GetTaskRequest, context: ServerContext) async throws -> Flotilla_V1_Task {
        try await barrier()
        guard let task = store.read({ $0[request.id] }) else {
            throw RPCError(code: .notFound, message: "no task \(request.id)")
        }
        return task.proto
    }

    public func listTasks(request: Flotilla_V1_ListTasksRequest, context: ServerContext) async throws -> Flotilla_V1_ListTasksResponse {
        let (state, limit) = try request.validated()
        let applied = try await barrier()
        let (tasks, counts) = store.read { m in (m.list(state: state, after: request.afterID, limit: limit), m.counts) }
        var protos: [Flotilla_V1_Task] = []
        protos.reserveCapacity(tasks.count)
        var bytes = 0
        for t in tasks {
            let p = t.proto
            bytes += (try? p.serializedBytes() as [UInt8])?.count ?? 0
            // The first task always goes out, so that paging by `after_id` always advances.
            if bytes > RequestLimits.listAnswerBytes && !protos.isEmpty { break }
            protos.append(p)
        }
        return .with {
            $0.tasks = protos
            for (s, n) in counts where n > 0 { $0.counts[s.description] = UInt64(n) }
            $0.appliedIndex = applied
        }
    }

    /// Served by the leader: it alone knows the agents' last heartbeats.
    public func listAgents(request: Flotilla_V1_ListAgentsRequest, context: ServerContext) async throws -> Flotilla_V1_ListAgentsResponse {
        do {
            try await orchestrator.requireLeader()
        } catch {
            throw rpcError(error, config: config)
        }
        try await barrier()
        let beats = orchestrator.heartbeats()
        let agents = store.read { m in m.agents.keys.sorted().map { (m.agents[$0]!, m.activeByAgent[$0]?.count ?? 0) } }
        return .with {
            $0.agents = agents.map { a, active in
                .with {
                    $0.id = a.id
                    $0.zone = a.zone
                    $0.slots = UInt32(a.slots)
                    $0.active = UInt32(active)
                    $0.state = a.state == .live && a.slots == 0 ? "draining" : a.state.description
                    $0.sinceMs = a.since
                    $0.reason = a.reason
                    $0.info = a.info
                    $0.incarnation = a.incarnation
                    $0.lastHeartbeatMs = beats[a.id].map { $0.incarnation == a.incarnation ? $0.at : 0 } ?? 0
                }
            }
        }
    }

    public func awaitTasks(request: Flotilla_V1_AwaitTasksRequest, context: ServerContext) async throws -> Flotilla_V1_AwaitTasksResponse {
        let (ids, timeout) = try request.validated()
        try await barrier()
        // Every id must name a task: waiting for one that does not exist would answer "complete"
        // with nothing to show (or wait for a task that no one will submit under that id).
        let unknown = store.read { m in ids.filter { m[$0] == nil } }
        if let first = unknown.min() {
            throw RPCError(
                code: .notFound, message: "ids: no task \(first)" + (unknown.count > 1 ? " (and \(unknown.count - 1) more unknown ids)" : ""))
        }
        let complete = await orchestrator.awaitTerminal(ids, timeout: timeout)
        let tasks = store.read { m in request.ids.map { m[$0]?.proto ?? Flotilla_V1_Task() } }
        return .with {
            $0.tasks = tasks
            $0.complete = complete
        }
    }

    public func act(request: Flotilla_V1_ActionRequest, context: ServerContext) async throws -> Flotilla_V1_ActionResponse {
        let command = try request.validated(at: wallClockMillis())
        let (reply, _) = try await propose(command, client: request.clientID, sequence: request.sequence)
        return .with {
            $0.changed = reply == .done
            if case .refused(let why) = reply { $0.message = why }
        }
    }

    private func propose(_ command: ManifestCommand, client: String, sequence: UInt64) async throws -> (ManifestReply, Index) {
        let result: ProposeResult
        do {
            result = try await node.propose(command.encoded, client: client, sequence: sequence)
        } catch {
            throw rpcError(error, config: config)
        }
        do {
            return (try ManifestReply(decoding: result.result), result.index)
        } catch {
            throw RPCError(code: .internalError, message: "undecodable manifest reply: \(error.reason)")
        }
    }

    /// Waits until this node has applied everything committed when the call arrived.
    @discardableResult
    private func barrier() async throws -> Index {
        do {
            return try await node.read([]).appliedIndex
        } catch {
            throw rpcError(error, config: config)
        }
    }
}

/// `flotilla.v1.Agents`: what agents call on the leader. A follower answers
/// `FAILED_PRECONDITION` with the leader's address.
public struct AgentsService: Flotilla_V1_Agents.SimpleServiceProtocol {
    private let orchestrator: Orchestrator
    private let config: ClusterConfig

    public init(orchestrator: Orchestrator, config: ClusterConfig) {
        self.orchestrator = orchestrator
        self.config = config
    }

    public func register(request: Flotilla_V1_RegisterRequest, context: ServerContext) async throws -> Flotilla_V1_RegisterResponse {
        try request.validate()
        do {
            try await orchestrator.register(
                agent: request.agentID, zone: request.zone, slots: UInt16(request.slots), incarnation: request.incarnation,
                info: request.info)
        } catch {
            throw rpcError(error, config: config)
        }
        return .with {
            $0.heartbeatIntervalMs = orchestrator.config.heartbeatInterval
            $0.deadAfterMs = orchestrator.config.deadAfter
        }
    }

    public func heartbeat(request: Flotilla_V1_AgentHeartbeatRequest, context: ServerContext) async throws -> Flotilla_V1_AgentHeartbeatResponse {
        try request.validate()
        let r: (reregister: Bool, abandon: [(TaskID, UInt32)])
        do {
            r = try await orchestrator.heartbeat(
                agent: request.agentID, incarnation: request.incarnation, running: request.running.map { ($0.taskID, $0.attempt) })
        } catch {
            throw rpcError(error, config: config)
        }
        return .with {
            $0.reregister = r.reregister
            $0.abandon = r.abandon.map { task, attempt in
                .with {
                    $0.taskID = task
                    $0.attempt = attempt
                }
            }
        }
    }

    public func assignments(
        request: Flotilla_V1_AssignmentsRequest, response: RPCWriter<Flotilla_V1_Assignment>, context: ServerContext
    ) async throws {
        try checkAgentID(request.agentID)
        let (stream, token): (AsyncStream<Flotilla_V1_Assignment>, UInt64)
        do {
            (stream, token) = try await orchestrator.openAssignments(agent: request.agentID, incarnation: request.incarnation)
        } catch {
            throw rpcError(error, config: config)
        }
        defer { orchestrator.closeAssignments(agent: request.agentID, token: token) }
        for await assignment in stream { try await response.write(assignment) }
        // The stream ends when this node stops leading (or the agent opened a newer one).
        do {
            try await orchestrator.requireLeader()
        } catch {
            throw rpcError(error, config: config)
        }
    }

    public func leave(request: Flotilla_V1_LeaveRequest, context: ServerContext) async throws -> Flotilla_V1_LeaveResponse {
        try checkAgentID(request.agentID)
        do {
            let (left, requeued) = try await orchestrator.leave(agent: request.agentID, incarnation: request.incarnation)
            return .with {
                $0.left = left
                $0.requeued = UInt32(requeued)
            }
        } catch {
            throw rpcError(error, config: config)
        }
    }

    public func report(request: Flotilla_V1_ReportRequest, context: ServerContext) async throws -> Flotilla_V1_ReportResponse {
        let command = try request.validatedCommand(at: wallClockMillis())
        let result: ProposeResult
        do {
            try await orchestrator.requireLeader()
            result = try await orchestrator.node.propose(command.encoded)
        } catch {
            throw rpcError(error, config: config)
        }
        let reply = try? ManifestReply(decoding: result.result)
        return .with {
            $0.recorded = reply == .done
            if case .refused(let why)? = reply { $0.message = why }
        }
    }
}
