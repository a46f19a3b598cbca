@testable import Raft
import Testing

/// Leadership transfer (dissertation §3.10).
@Suite struct LeadershipTransferTests {
    @Test("§3.10 transfer: the lagging target catches up, then wins the next term; proposals are refused meanwhile")
    func transferToLaggingFollower() throws {
        // "The prior leader sends its log entries to the target server ... then sends it a
        // TimeoutNow request, causing it to start an election."
        let net = try TestNetwork(voters: 3)
        #expect(net.elect(1))
        let term = net[1].term
        net.cut(1, 2)
        for k in 0..<3 { try net.propose("x\(k)", on: 1) }
        net.deliver()
        net.heal()
        #expect(net[2].lastIndex < net[1].lastIndex)

        try net.on(1) { try $0.transferLeadership(to: 2) }
        #expect(throws: RaftError.transferInProgress(to: 2)) { try net.propose("refused", on: 1) }
        #expect(net.tick(until: { net[2].role == .leader }, maxTicks: net.electionTimeout) != nil)
        #expect(net[2].term == term + 1)
        #expect(net[1].role == .follower && net[1].leader == 2)
        #expect(commands(net.log(2)) == ["x0", "x1", "x2"])
    }

    @Test("§3.10 a transfer to a node that cannot catch up is aborted after an election timeout")
    func transferToUnreachableNodeIsAborted() throws {
        let net = try TestNetwork(voters: 3)
        #expect(net.elect(1))
        let term = net[1].term
        net.isolate(3)
        try net.propose("x", on: 1)
        try net.on(1) { try $0.transferLeadership(to: 3) }

        net.tick(times: net.electionTimeout - 1)
        #expect(net[1].leadTransferee == 3)
        #expect(throws: RaftError.transferInProgress(to: 3)) { try net.propose("refused", on: 1) }
        net.tick()
        #expect(net[1].leadTransferee == noNode)
        #expect(net[1].role == .leader && net[1].term == term)
        let accepted = try net.propose("accepted", on: 1)
        net.deliver()
        #expect(net.isApplied(accepted))
    }
}
