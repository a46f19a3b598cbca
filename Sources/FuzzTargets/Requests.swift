public import FlotillaProto
public import GRPCCore
import GRPCInProcessTransport
import SwiftProtobuf

/// Every RPC a client or agent can send a node (the peer service has its own target).
public enum RequestMethod: UInt8, CaseIterable, Sendable {
    case propose, read, status, transferLeadership, changeMembership
    case submit, getTask, listTasks, listAgents, act, awaitTasks
    case register, heartbeat, assignments, leave, report
}

/// How a node answered a request.
public enum RequestOutcome: Sendable, Hashable {
    /// The bytes are not a protobuf encoding of the method's request: nothing was sent.
    case undecodable
    case answered
    case refused(RPCError.Code, String)
}

extension InProcessCluster {
    /// Decodes `payload` as `method`'s request and sends it to node `node` (any number: taken
    /// modulo the size). Streams and long polls are cut off after `shortTimeout`.
    public func send(
        _ method: RequestMethod, payload: [UInt8], to node: Int, timeout: Duration = .seconds(3), shortTimeout: Duration = .milliseconds(50)
    ) async -> RequestOutcome {
        let grpc = client(node)
        let controlPlane = Flotilla_V1_ControlPlane.Client(wrapping: grpc)
        let tasks = Flotilla_V1_Tasks.Client(wrapping: grpc)
        let agents = Flotilla_V1_Agents.Client(wrapping: grpc)
        var options = CallOptions.defaults
        options.timeout = timeout
        var short = CallOptions.defaults
        short.timeout = shortTimeout
        func call<Request: SwiftProtobuf.Message>(
            _ type: Request.Type, _ body: (Request) async throws -> Void
        ) async -> RequestOutcome {
            let request: Request
            do {
                request = try Request(serializedBytes: payload)
            } catch {
                return .undecodable
            }
            do {
                try await body(request)
                return .answered
            } catch let error as RPCError {
                return .refused(error.code, error.message)
            } catch {
                return .refused(.unknown, "\(error)")
            }
        }
        switch method {
        case .propose: return await call(Flotilla_V1_ProposeRequest.self) { _ = try await controlPlane.propose($0, options: options) }
        case .read: return await call(Flotilla_V1_ReadRequest.self) { _ = try await controlPlane.read($0, options: options) }
        case .status: return await call(Flotilla_V1_StatusRequest.self) { _ = try await controlPlane.status($0, options: options) }
        case .transferLeadership:
            return await call(Flotilla_V1_TransferLeadershipRequest.self) { _ = try await controlPlane.transferLeadership($0, options: options) }
        case .changeMembership:
            return await call(Flotilla_V1_ChangeMembershipRequest.self) { _ = try await controlPlane.changeMembership($0, options: options) }
        case .submit: return await call(Flotilla_V1_SubmitRequest.self) { _ = try await tasks.submit($0, options: options) }
        case .getTask: return await call(Flotilla_V1_GetTaskRequest.self) { _ = try await tasks.getTask($0, options: options) }
        case .listTasks: return await call(Flotilla_V1_ListTasksRequest.self) { _ = try await tasks.listTasks($0, options: options) }
        case .listAgents: return await call(Flotilla_V1_ListAgentsRequest.self) { _ = try await tasks.listAgents($0, options: options) }
        case .act: return await call(Flotilla_V1_ActionRequest.self) { _ = try await tasks.act($0, options: options) }
        case .awaitTasks: return await call(Flotilla_V1_AwaitTasksRequest.self) { _ = try await tasks.awaitTasks($0, options: short) }
        case .register: return await call(Flotilla_V1_RegisterRequest.self) { _ = try await agents.register($0, options: options) }
        case .heartbeat: return await call(Flotilla_V1_AgentHeartbeatRequest.self) { _ = try await agents.heartbeat($0, options: options) }
        case .assignments:
            return await call(Flotilla_V1_AssignmentsRequest.self) { request in
                try await agents.assignments(request, options: short) { response in
                    for try await _ in response.messages {}
                }
            }
        case .leave: return await call(Flotilla_V1_LeaveRequest.self) { _ = try await agents.leave($0, options: options) }
        case .report: return await call(Flotilla_V1_ReportRequest.self) { _ = try await agents.report($0, options: options) }
        }
    }

    /// Sends the request and checks what must hold whatever a client sends: the answer is an
    /// answer or a deliberate refusal (never `UNKNOWN` or `INTERNAL`, the codes of an error no
    /// handler expected), every node still answers, and nothing malformed was ever applied.
    public func check(
        _ method: RequestMethod, payload: [UInt8], to node: Int, shortTimeout: Duration = .milliseconds(50)
    ) async throws(FuzzFinding) -> RequestOutcome {
        let outcome = await send(method, payload: payload, to: node, shortTimeout: shortTimeout)
        if case .refused(let code, let message) = outcome, code == .unknown || code == .internalError {
            throw FuzzFinding("\(method) answered \(code): \(message)")
        }
        guard await allNodesAnswer() else { throw FuzzFinding("after a \(method) request, a node no longer answers") }
        if let first = malformedCommandsApplied.first { throw FuzzFinding("a malformed command was applied: \(first)") }
        return outcome
    }
}

/// A property a fuzz target found broken (a trap is found by the crash itself).
public struct FuzzFinding: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
