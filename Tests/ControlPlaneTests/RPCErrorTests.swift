@testable import ControlPlane
import GRPCCore
import Raft
import Testing

/// How node errors reach clients: whether `ClusterClient` retries them elsewhere decides whether
/// an agent's report or a client's submission survives the node's death.
@Suite struct RPCErrorTests {
    let config = ClusterConfig(nodes: [
        ClusterConfig.Node(id: 1, host: "127.0.0.1", port: 7000, zone: "a", dataDirectory: "/tmp/n1"),
        ClusterConfig.Node(id: 2, host: "127.0.0.1", port: 7002, zone: "a", dataDirectory: "/tmp/n2"),
    ])

    /// A leader whose fsync failed exits; the request must be retried on the next leader. (It was
    /// INTERNAL, which the client does not retry: an agent dropped its report and the task stayed
    /// active until its timeout; the chaos suite's disk scenario found it.)
    @Test func aFailedStorageIsRetryableElsewhere() {
        #expect(rpcError(.storageFailed("sync failed"), config: config).code == .unavailable)
        #expect(rpcError(.stopped, config: config).code == .unavailable)
        #expect(rpcError(.timedOut, config: config).code == .unavailable)
        #expect(rpcError(.proposalLost, config: config).code == .unavailable)
    }

    @Test func aFollowerNamesTheLeader() {
        let error = rpcError(.notLeader(leader: 2), config: config)
        #expect(error.code == .failedPrecondition)
        #expect(error.metadata[stringValues: "leader-address"].first(where: { _ in true }) == "127.0.0.1:7002")
    }

    @Test func badInputIsNotRetried() {
        #expect(rpcError(.invalidRequest("bad"), config: config).code == .invalidArgument)
        #expect(rpcError(.staleSequence, config: config).code == .aborted)
        // A transfer to the leader itself, or a membership change that changes nothing.
        #expect(rpcError(.refused(.invalidTransferTarget(1)), config: config).code == .invalidArgument)
        #expect(rpcError(.refused(.invalidConfigurationChange("node 2 is already a voter")), config: config).code == .invalidArgument)
    }
}
