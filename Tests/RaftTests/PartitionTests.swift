@testable import Raft
import Testing

/// Partitions: check-quorum (dissertation §6.2) and pre-vote (§9.6).
@Suite struct PartitionTests {
    @Test("§6.2 check-quorum: a partitioned leader steps down, the majority elects a newer one, and the old leader's entries are replaced")
    func staleLeaderStepsDownAndLosesItsEntries() throws {
        let net = try TestNetwork(voters: 5)
        let et = net.electionTimeout
        #expect(net.elect(1))
        let oldTerm = net[1].term
        net.isolate(1)
        let stale = try net.propose("stale", on: 1)

        // "A leader that has not heard from a majority within electionTimeout steps down."
        let ticks = try #require(net.tick(until: { net[1].role != .leader }, maxTicks: 2 * et))
        #expect(ticks >= et)
        #expect(throws: RaftError.notLeader(leader: noNode)) { try net.propose("late", on: 1) }

        #expect(net.tick(until: { net.leaders.contains { $0 != 1 } }, maxTicks: 3 * et) != nil)
        let leader = try #require(net.leaders.first)
        #expect(net[leader].term > oldTerm)
        #expect(net[1].term == oldTerm)
        let fresh = try net.propose("fresh", on: leader)
        net.deliver()

        net.heal()
        #expect(net.tick(until: { net.logsMatch(net.running) }, maxTicks: 2 * et) != nil)
        #expect(net[1].role == .follower && net[1].leader == leader && net[1].term == net[leader].term)
        #expect(net[1].entry(at: stale.index)?.term != stale.term)
        #expect(!net.isApplied(stale))
        #expect(net.isApplied(fresh))
    }

    @Test("§9.6 pre-vote: a node isolated for many election timeouts keeps its term and does not depose the leader when it rejoins")
    func preVoteKeepsRejoiningNodeFromDisrupting() throws {
        let (net, term) = try rejoinAfterLongIsolation { _ in }
        for id in net.running {
            #expect(net[id].leader == 1, "node \(id)")
            #expect(net[id].term == term, "node \(id)")
        }
    }

    @Test("§9.6 without pre-vote the rejoining node does depose the leader (the test above can fail)")
    func withoutPreVoteRejoiningNodeDisrupts() throws {
        let (net, term) = try rejoinAfterLongIsolation { $0.preVote = false }
        #expect(net.running.allSatisfy { net[$0].term > term })
    }

    /// Node 1 leads a 3-node cluster; node 3 is isolated for ten election timeouts, then rejoins
    /// for three more. Returns the network and the term before the isolation.
    private func rejoinAfterLongIsolation(
        _ configure: @escaping (inout RaftConfig) -> Void
    ) throws -> (TestNetwork, Term) {
        let net = try TestNetwork(voters: 3, configure: configure)
        #expect(net.elect(1))
        let term = net[1].term
        net.isolate(3)
        net.tick(times: 10 * net.electionTimeout)
        if net[3].config.preVote {
            #expect(net[3].term == term)  // every pre-vote failed
        }
        net.heal()
        net.tick(times: 3 * net.electionTimeout)
        return (net, term)
    }
}
