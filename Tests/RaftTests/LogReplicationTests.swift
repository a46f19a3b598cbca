@testable import Raft
import Testing

/// Log replication and the commitment rule, Raft paper §5.3 and §5.4.2.
@Suite struct LogReplicationTests {
    @Test("Figure 7: the leader of term 8 makes every follower's log identical to its own")
    func figure7FollowersConverge() throws {
        // "The leader handles inconsistencies by forcing the followers' logs to duplicate its own."
        let net = try figure7()
        let leaderLog = net.log(1)
        #expect(leaderLog.count == 11)  // the figure's ten entries and the new leader's empty one
        for id in 2...NodeID(7) {
            #expect(net.log(id) == leaderLog, "follower \(id)")
            #expect(net.applied[id] == leaderLog, "follower \(id)")
            // With the hint index/term a follower rejects at most one append: the leader skips a
            // whole term of conflicting entries per round trip, instead of one entry.
            #expect(net.rejectedAppends(by: id) <= 1, "follower \(id)")
        }
    }

    @Test("Figure 7 with injected skipLogMatchingCheck: follower (f) keeps entries of terms 2 and 3 (the test above can fail)")
    func figure7InjectedBugLeavesDivergentLog() throws {
        let net = try figure7(bugs: [.skipLogMatchingCheck])
        #expect(net[7].term(at: 10) == 3)
        #expect(net.log(7) != net.log(1))
    }

    /// Figure 7's logs: node 1 is the future leader, nodes 2…7 are followers (a)…(f). Node 1 is
    /// elected for term 8 and then sends one heartbeat round.
    private func figure7(bugs: Set<InjectedBug> = []) throws -> TestNetwork {
        let logs: [NodeID: [Term]] = [
            1: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
            2: [1, 1, 1, 4, 4, 5, 5, 6, 6],  // (a) missing one entry
            3: [1, 1, 1, 4],  // (b) missing many
            4: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  // (c) an extra uncommitted entry
            5: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  // (d) extra entries of term 7
            6: [1, 1, 1, 4, 4, 4, 4],  // (e) missing entries, extra ones of term 4
            7: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  // (f) extra entries of terms 2 and 3
        ]
        let states = logs.mapValues { PersistentState(hardState: HardState(term: 7), entries: paperLog($0)) }
        let net = try TestNetwork(voters: 7, states: states) { $0.injectedBugs = bugs }
        #expect(net.elect(1))
        #expect(net[1].term == 8)
        net.tick([1])  // tells the followers that were still probing the commit index
        return net
    }

    @Test("Figure 8 (c): a leader does not commit an entry of an earlier term by counting replicas")
    func figure8LeaderWaitsForEntryOfItsOwnTerm() throws {
        // "Raft never commits log entries from previous terms by counting replicas. Only log
        // entries from the leader's current term are committed by counting replicas."
        let net = try figure8c()
        #expect(net[1].status.peers.filter { $0.match >= 2 }.map(\.id) == [3, 4])  // S1, S3, S4: a majority
        #expect(net[1].commitIndex == 1)

        // (e): once S1's entry of term 4 is on a majority, it and the term-2 entry commit.
        net.deliver()
        #expect(net[1].commitIndex == 3)
        #expect(net.applied[1]?.map(\.term) == [1, 2, 4])
    }

    @Test("Figure 8 with injected commitPreviousTermEntries: the leader commits the term-2 entry (the test above can fail)")
    func figure8InjectedBugCommitsOldEntry() throws {
        let net = try figure8c(bugs: [.commitPreviousTermEntries])
        #expect(net[1].commitIndex == 2)
    }

    /// Figure 8 (c) as five nodes. S1 was leader of term 2 and replicated index 2 to S2 only; S5
    /// led term 3 (votes of S3, S4, S5) and put its own entry at index 2. Now S1 leads term 4
    /// (votes of S3, S4; its links to S2 and S5 are down) and has replicated its term-2 entry to S3
    /// and S4, while its own entry (index 3, term 4) is held back in flight.
    private func figure8c(bugs: Set<InjectedBug> = []) throws -> TestNetwork {
        func state(_ terms: [Term], vote: NodeID = noNode) -> PersistentState {
            PersistentState(hardState: HardState(term: 3, vote: vote, commit: 1), entries: paperLog(terms))
        }
        let net = try TestNetwork(
            voters: 5,
            states: [1: state([1, 2]), 2: state([1, 2]), 3: state([1], vote: 5), 4: state([1], vote: 5), 5: state([1, 3], vote: 5)]
        ) {
            $0.maxEntriesPerAppend = 1  // so that index 2 travels without index 3
            $0.injectedBugs = bugs
        }
        net.cut(1, 2)
        net.cut(1, 5)
        // An append with the term-4 entry is rejected by a follower that lacks index 2, so those
        // may pass; the ones that would store it stay queued.
        let holdTerm4Entry = { (m: Message) in
            !(m.appendRequest?.entries.contains { $0.term == 4 } == true && net[m.to].lastIndex >= 2)
        }
        #expect(net.elect(1, delivering: holdTerm4Entry))
        #expect(net[1].term == 4)
        return net
    }

    @Test("§5.3/§5.4: entries a crashed leader replicated to a minority are replaced by the new leader's log, also on the restarted node")
    func newLeaderLogWinsAfterLeaderCrash() throws {
        let net = try TestNetwork(voters: 5)
        #expect(net.elect(1))
        for id in 3...NodeID(5) { net.cut(1, id) }
        let lost = try ["lost-1", "lost-2", "lost-3"].map { try net.propose($0, on: 1) }
        net.deliver()
        #expect(net[2].lastIndex == lost.last!.index)  // only node 2 has them: not a majority
        #expect(net[1].commitIndex < lost[0].index)

        net.crash(1)
        net.isolate(2)  // so that one of 3…5, without the entries, wins
        #expect(net.tick(until: { !net.leaders.isEmpty }, maxTicks: 4 * net.electionTimeout) != nil)
        let leader = try #require(net.leaders.first)
        #expect([3, 4, 5].contains(leader))
        let kept = try net.propose("kept", on: leader)
        net.deliver()

        net.heal()
        try net.restart(1)
        let all = net.running
        let converged = { net.logsMatch(all) && all.allSatisfy { net[$0].commitIndex == kept.index } }
        #expect(net.tick(until: converged, maxTicks: 3 * net.electionTimeout) != nil)
        #expect(net.leaders == [leader])
        #expect(net.storage[1]?.entries == net.log(leader))
        #expect(lost.allSatisfy { !net.isApplied($0) })
        #expect(all.allSatisfy { commands(net.applied[$0] ?? []) == ["kept"] })
    }

    @Test("a follower cut off while the leader fills its in-flight window catches up once the partition heals")
    func followerCatchesUpAfterInflightWindowFilled() throws {
        // Message loss must not stall replication (Message: "Raft tolerates loss").
        let net = try TestNetwork(voters: 3) { $0.maxInflightAppends = 4 }
        #expect(net.elect(1))
        net.isolate(3)
        for k in 0..<6 { try net.propose("p\(k)", on: 1) }
        net.deliver()
        net.heal()
        #expect(net.tick(until: { net.logsMatch([1, 3]) }, maxTicks: 5 * net.electionTimeout) != nil)
    }
}
