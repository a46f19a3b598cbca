@testable import Raft
import Testing

/// Linearizable reads without a log entry: ReadIndex (dissertation §6.4).
@Suite struct ReadIndexTests {
    @Test("§6.4 ReadIndex on the leader: the ReadState comes only after a majority acknowledged a heartbeat round")
    func leaderReadWaitsForMajorityHeartbeat() throws {
        // "The leader needs to make sure it hasn't been superseded ... it sends heartbeats and
        // waits for their acknowledgments from a majority of the cluster."
        let net = try TestNetwork(voters: 5)
        #expect(net.elect(1))
        try net.on(1) { try $0.readIndex(requestID: 42) }
        #expect(net.readStates[1, default: []].isEmpty)

        net.deliver(where: { $0.isBetween(1, 2) })  // leader and node 2: two of five
        #expect(net.readStates[1, default: []].isEmpty)

        net.deliver(where: { $0.isBetween(1, 3) })  // a majority
        #expect(net.readStates[1] == [ReadState(requestID: 42, index: net[1].commitIndex)])
    }

    @Test("§6.4 ReadIndex on a follower: the request is forwarded and the ReadState comes back")
    func followerReadIsForwarded() throws {
        let net = try TestNetwork(voters: 3)
        #expect(net.elect(1))
        try net.on(2) { try $0.readIndex(requestID: 7) }
        #expect(net.queue.contains { $0.from == 2 && $0.to == 1 && $0.payload == .readIndex(requestID: 7) })
        net.deliver()
        #expect(net.readStates[2] == [ReadState(requestID: 7, index: net[1].commitIndex)])
    }

    @Test("§6.4 a leader cut off from the majority never confirms a new read")
    func isolatedLeaderNeverConfirmsRead() throws {
        let net = try readOnIsolatedLeader()
        #expect(net.tick(until: { net[1].role != .leader }, maxTicks: 2 * net.electionTimeout) != nil)
        net.tick(times: net.electionTimeout)
        #expect(net.readStates[1, default: []].isEmpty)
    }

    @Test("injected readWithoutQuorum: the isolated leader answers the read (the test above can fail)")
    func injectedReadWithoutQuorumAnswers() throws {
        let net = try readOnIsolatedLeader(bugs: [.readWithoutQuorum])
        #expect(net.readStates[1]?.map(\.requestID) == [9])
    }

    /// Node 1 leads a 3-node cluster, is isolated, and is asked for a read.
    private func readOnIsolatedLeader(bugs: Set<InjectedBug> = []) throws -> TestNetwork {
        let net = try TestNetwork(voters: 3) { $0.injectedBugs = bugs }
        #expect(net.elect(1))
        net.isolate(1)
        try net.on(1) { try $0.readIndex(requestID: 9) }
        return net
    }
}
