import Foundation
public import FlotillaProto
public import GRPCCore
import Raft
import RaftTransport

/// The client-facing gRPC service of one node (`flotilla.v1.ControlPlane`).
///
/// A request a follower cannot serve fails with `FAILED_PRECONDITION` and the trailing metadata
/// `leader-id` / `leader-address`, so that clients retry on the leader. Retryable conditions
/// (leader change, timeout, node stopping) are `UNAVAILABLE`.
public struct ControlPlaneService: Flotilla_V1_ControlPlane.SimpleServiceProtocol {
    private let node: NodeRuntime
    private let config: ClusterConfig

    public init(node: NodeRuntime, config: ClusterConfig) {
        self.node = node
        self.config = config
    }

    public func propose(request: Flotilla_V1_ProposeRequest, context: ServerContext) async throws -> Flotilla_V1_ProposeResponse {
        let command = try request.validatedCommand()
        let r = try await mapErrors { try await node.propose(command, client: request.clientID, sequence: request.sequence) }
        return .with {
            $0.index = r.index
            $0.term = r.term
            $0.result = Data(r.result)
        }
    }

    public func read(request: Flotilla_V1_ReadRequest, context: ServerContext) async throws -> Flotilla_V1_ReadResponse {
        let query = try request.validatedQuery()
        let r = try await mapErrors { try await node.read(query) }
        return .with {
            $0.appliedIndex = r.appliedIndex
            $0.result = Data(r.result)
        }
    }

    public func status(request: Flotilla_V1_StatusRequest, context: ServerContext) async throws -> Flotilla_V1_NodeStatus {
        let s = try await mapErrors { try await node.status() }
        let me = config.node(s.id)
        return .with {
            $0.id = s.id
            $0.address = me?.address ?? ""
            $0.zone = me?.zone ?? ""
            $0.role = s.role.rawValue
            $0.term = s.term
            $0.leaderID = s.leader
            $0.commitIndex = s.commitIndex
            $0.appliedIndex = s.appliedIndex
            $0.lastIndex = s.lastIndex
            $0.snapshotIndex = s.snapshotIndex
            $0.configuration = Flotilla_V1_Configuration(s.configuration)
            $0.peers = s.peers.map { p in
                .with {
                    $0.id = p.id
                    $0.matchIndex = p.match
                    $0.nextIndex = p.next
                    $0.state = p.state
                    $0.recentActive = p.recentActive
                }
            }
        }
    }

    public func transferLeadership(
        request: Flotilla_V1_TransferLeadershipRequest, context: ServerContext
    ) async throws -> Flotilla_V1_TransferLeadershipResponse {
        try await mapErrors { try await node.transferLeadership(to: request.target) }
        return Flotilla_V1_TransferLeadershipResponse()
    }

    public func changeMembership(
        request: Flotilla_V1_ChangeMembershipRequest, context: ServerContext
    ) async throws -> Flotilla_V1_ChangeMembershipResponse {
        let change: ConfigurationChange
        switch request.change {
        case .addVoter(let id)?:
            // A voter must be reachable: its address comes from cluster.yaml, as for every node.
            guard id != noNode else { throw invalid("add_voter", "0 is not a node id") }
            guard config.node(id) != nil else {
                throw invalid(
                    "add_voter",
                    "node \(id) is not in cluster.yaml (nodes: \(config.nodes.map { String($0.id) }.joined(separator: ", "))): "
                        + "add its id and address there on every node first")
            }
            change = .addVoter(id)
        case .removeVoter(let id)?:
            guard id != noNode else { throw invalid("remove_voter", "0 is not a node id") }
            change = .removeVoter(id)
        case nil: throw invalid("change", "set add_voter or remove_voter")
        }
        let index = try await mapErrors { try await node.changeMembership(change) }
        return .with { $0.index = index }
    }

    private func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as NodeError {
            throw rpcError(error, config: config)
        }
    }
}

/// The gRPC status for a node error: clients retry `UNAVAILABLE`, follow the `leader-address`
/// metadata of `FAILED_PRECONDITION`, and give up on the others.
func rpcError(_ error: NodeError, config: ClusterConfig) -> RPCError {
    switch error {
    case .notLeader(let leader):
        var metadata = Metadata()
        if leader != noNode {
            metadata.addString(String(leader), forKey: "leader-id")
            if let address = config.node(leader)?.address { metadata.addString(address, forKey: "leader-address") }
        }
        return RPCError(code: .failedPrecondition, message: error.description, metadata: metadata)
    case .proposalLost, .timedOut, .stopped:
        return RPCError(code: .unavailable, message: error.description)
    case .staleSequence:
        return RPCError(code: .aborted, message: error.description)
    case .invalidRequest:
        return RPCError(code: .invalidArgument, message: error.description)
    case .refused(let raftError):
        switch raftError {
        case .proposalQueueFull: return RPCError(code: .resourceExhausted, message: error.description)
        case .configurationChangePending, .transferInProgress: return RPCError(code: .unavailable, message: error.description)
        // Asking again cannot help: not retried.
        case .invalidTransferTarget, .invalidConfigurationChange: return RPCError(code: .invalidArgument, message: error.description)
        default: return RPCError(code: .failedPrecondition, message: error.description)
        }
    case .storageFailed:
        // This node is gone (it exits); another takes over. Retrying elsewhere is safe: a
        // proposal carries its session and sequence number, a report its fencing token.
        return RPCError(code: .unavailable, message: error.description)
    }
}
