@testable import Raft
import Testing

/// Leader election, Raft paper §5.2 and §5.4.1.
@Suite struct ElectionTests {
    @Test("§5.2: a 3- and a 5-node cluster each elect exactly one leader, which all nodes follow", arguments: [3, 5])
    func electsExactlyOneLeader(size: Int) throws {
        let net = try TestNetwork(voters: size)
        #expect(net.tick(until: { !net.leaders.isEmpty }, maxTicks: 3 * net.electionTimeout) != nil)
        let leader = try #require(net.leaders.first)
        net.tick(times: 5 * net.electionTimeout)
        #expect(net.leaders == [leader])
        for id in net.running {
            #expect(net[id].leader == leader)
            #expect(net[id].term == net[leader].term)
        }
    }

    @Test("§5.2: a split vote (two candidates, each with half of the votes) resolves in a later term")
    func splitVoteResolvesInLaterTerm() throws {
        // "If many followers become candidates at the same time, votes could be split so that no
        // candidate obtains a majority ... each candidate will time out and start a new election."
        let net = try TestNetwork(voters: 4) { $0.preVote = false }
        let bothCampaigning = { net[1].role == .candidate && net[2].role == .candidate }
        #expect(net.tick(until: bothCampaigning, maxTicks: 2 * net.electionTimeout, ticking: [1, 2], delivering: { _ in false }) != nil)
        #expect(net[1].term == 1 && net[2].term == 1)
        // Node 3 hears from candidate 1 first, node 4 from candidate 2: two votes each, out of four.
        net.deliver(where: { $0.isBetween(1, 3) || $0.isBetween(2, 4) })
        net.deliver()
        #expect(net[3].vote == 1 && net[4].vote == 2)
        #expect(net.leaders.isEmpty)

        #expect(net.tick(until: { !net.leaders.isEmpty }, maxTicks: 3 * net.electionTimeout) != nil)
        #expect(net.leaders.count == 1)
        #expect(net.leaders.allSatisfy { net[$0].term > 1 })
    }

    @Test(
        "§5.4.1: a voter refuses a candidate whose log is less up-to-date than its own",
        arguments: [
            (3, 1, false),  // longer, but its last entry is of an older term
            (1, 2, false),  // same last term, shorter
            (2, 2, true),  // as up-to-date
            (1, 3, true),  // shorter, but its last entry is of a later term
        ] as [(Index, Term, Bool)])
    func upToDateRule(lastIndex: Index, lastTerm: Term, granted: Bool) throws {
        // "If the logs have last entries with different terms, then the log with the later term is
        // more up-to-date. If the logs end with the same term, then whichever log is longer is more
        // up-to-date." The voter's log is [1@1, 2@2].
        let voter = PersistentState(hardState: HardState(term: 2), entries: paperLog([1, 2]))
        let net = try TestNetwork(voters: 3, states: [1: voter])
        #expect(net.requestVote(from: 2, to: 1, term: 3, lastIndex: lastIndex, lastTerm: lastTerm) == granted)
    }

    @Test("§5.4.1: a candidate with a stale log loses; an up-to-date node is elected instead")
    func staleCandidateIsRefused() throws {
        let upToDate = PersistentState(hardState: HardState(term: 2), entries: paperLog([1, 2]))
        let stale = PersistentState(hardState: HardState(term: 2), entries: paperLog([1]))
        let net = try TestNetwork(voters: 3, states: [1: stale, 2: upToDate, 3: upToDate]) { $0.preVote = false }
        #expect(net.tick(until: { net[1].term == 3 }, maxTicks: 2 * net.electionTimeout, ticking: [1]) != nil)
        let answers = net.delivered.filter { $0.to == 1 }.compactMap(\.voteResponse)
        #expect(answers.count == 2 && answers.allSatisfy { !$0.granted })
        #expect(net[1].role != .leader)

        #expect(net.tick(until: { !net.leaders.isEmpty }, maxTicks: 4 * net.electionTimeout) != nil)
        #expect(net.leaders.count == 1 && !net.leaders.contains(1))
    }

    @Test("§5.2: a node votes for at most one candidate per term, even across a restart")
    func votesAtMostOncePerTerm() throws {
        // "Each server will vote for at most one candidate in a given term, on a first-come-first-served basis."
        let net = try TestNetwork(voters: 3)
        #expect(net.requestVote(from: 1, to: 3, term: 1) == true)
        #expect(net.requestVote(from: 2, to: 3, term: 1) == false)
        #expect(net.requestVote(from: 1, to: 3, term: 1) == true)  // the same candidate asking again
        net.crash(3)
        try net.restart(3)
        #expect(net.requestVote(from: 2, to: 3, term: 1) == false)
        #expect(net.requestVote(from: 2, to: 3, term: 2) == true)
    }

    @Test("injected voteTwicePerTerm: the voter grants a second candidate of the same term (the test above can fail)")
    func injectedDoubleVoteIsVisible() throws {
        let net = try TestNetwork(voters: 3) { $0.injectedBugs = [.voteTwicePerTerm] }
        #expect(net.requestVote(from: 1, to: 3, term: 1) == true)
        #expect(net.requestVote(from: 2, to: 3, term: 1) == true)
    }
}

extension TestNetwork {
    /// Hands `voter` a (non-pre-)vote request from `candidate` and returns its answer.
    func requestVote(from candidate: NodeID, to voter: NodeID, term: Term, lastIndex: Index = 0, lastTerm: Term = 0) -> Bool? {
        let request = VoteRequest(preVote: false, lastIndex: lastIndex, lastTerm: lastTerm, transfer: false)
        on(voter) { $0.step(Message(from: candidate, to: voter, term: term, payload: .voteRequest(request))) }
        return queue.last { $0.from == voter && $0.to == candidate }?.voteResponse?.granted
    }
}
