@testable import Raft
import Testing

/// Single-server membership changes (dissertation §4.1).
@Suite struct MembershipTests {
    @Test("§4.1 a 4th voter added to a 3-node cluster catches up and counts toward the quorum of 3")
    func addedVoterCatchesUpAndCounts() throws {
        let net = try TestNetwork(voters: 3)
        #expect(net.elect(1))
        try net.propose("before", on: 1)
        try net.add(4)
        try net.on(1) { try $0.proposeConfigurationChange(.addVoter(4)) }
        net.deliver()
        let four = Configuration(voters: [1, 2, 3, 4])
        #expect(net[1].committedConfiguration == four)
        #expect(net.running.allSatisfy { net[$0].configuration == four })
        #expect(net.log(4) == net.log(1))

        // Without node 2, the leader needs node 4: {1, 3, 4} is a quorum of four, {1, 3} is not.
        net.isolate(2)
        let withFour = try net.propose("with 4", on: 1)
        net.deliver()
        #expect(net[1].commitIndex == withFour.index)
        net.isolate(4)
        let withoutFour = try net.propose("without 4", on: 1)
        net.deliver()
        #expect(net[1].commitIndex == withFour.index)
        #expect(net[3].lastIndex == withoutFour.index)
    }

    @Test("§4.1 a removed follower leaves the quorum and cannot disrupt the cluster")
    func removedFollowerLeavesQuorum() throws {
        let net = try TestNetwork(voters: 3)
        #expect(net.elect(1))
        let term = net[1].term
        try net.on(1) { try $0.proposeConfigurationChange(.removeVoter(3)) }
        net.deliver()
        let two = Configuration(voters: [1, 2])
        #expect(net[1].committedConfiguration == two && net[2].configuration == two)

        net.isolate(3)  // no longer needed: 1 and 2 are a quorum of two
        let ticket = try net.propose("x", on: 1)
        net.deliver()
        #expect(net[1].commitIndex == ticket.index)

        net.heal()  // node 3, which never learnt of its removal, times out again and again
        net.tick(times: 5 * net.electionTimeout)
        #expect(net.leaders == [1] && net[1].term == term && net[2].term == term)
    }

    @Test("§4.2.2 a leader that removes itself steps down once the removal commits; the others elect a new leader")
    func leaderRemovesItself() throws {
        let net = try TestNetwork(voters: 3)
        #expect(net.elect(1))
        let term = net[1].term
        try net.on(1) { try $0.proposeConfigurationChange(.removeVoter(1)) }
        net.deliver()
        #expect(net[1].role == .follower)
        #expect(net.tick(until: { !net.leaders.isEmpty }, maxTicks: 3 * net.electionTimeout) != nil)
        let leader = try #require(net.leaders.first)
        #expect([2, 3].contains(leader) && net[leader].term > term)
        #expect(net[leader].configuration == Configuration(voters: [2, 3]))

        // Node 1 is no longer a voter: it never campaigns, and the others commit without it.
        net.isolate(1)
        #expect(net.tick(until: { net[1].role != .follower }, maxTicks: 3 * net.electionTimeout) == nil)
        let ticket = try net.propose("x", on: leader)
        net.deliver()
        #expect(net[leader].commitIndex == ticket.index)
    }

    @Test("§4.1 a second change is refused while one is uncommitted, or before the leader committed an entry of its term")
    func secondChangeWhileOnePendingIsRefused() throws {
        let net = try TestNetwork(voters: 3)
        // Elected, but its empty entry of the new term is held back: not committed yet.
        #expect(net.elect(1, delivering: { $0.appendRequest == nil }))
        #expect(throws: RaftError.configurationChangePending) { try net.on(1) { try $0.proposeConfigurationChange(.addVoter(4)) } }
        net.deliver()

        try net.on(1) { try $0.proposeConfigurationChange(.addVoter(4)) }
        #expect(throws: RaftError.configurationChangePending) { try net.on(1) { try $0.proposeConfigurationChange(.removeVoter(3)) } }
        net.deliver()  // 1, 2 and 3 are a quorum of four: the change commits without node 4
        #expect(net[1].committedConfiguration == Configuration(voters: [1, 2, 3, 4]))
        try net.on(1) { try $0.proposeConfigurationChange(.removeVoter(4)) }
    }
}
